"""The worker side of job tracking: record a tracked job's state and outcome at the moments
of its life (qrun.hooks), through the worker's outbox, so they travel with its next round
trip, ahead of the job's ack. Registered only on queues that keep results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import settings
from ..hooks import Entry, JobHooks, Outbox
from . import records

if TYPE_CHECKING:
    from ..queue import Queue


class TrackJobs(JobHooks):
    """Keeps the record and outcome of jobs whose task has a ``result_ttl``."""

    def __init__(self, queue: Queue, outbox: Outbox, worker: str = "") -> None:
        self.queue = queue
        self.outbox = outbox
        self.worker = worker

    def _ttl(self, entry: Entry) -> int | None:
        task = self.queue.tasks.get(entry[3])
        return None if task is None or task.result_ttl_s is None else int(task.result_ttl_s * 1000)

    def started(self, queue_name: str, entry: Entry) -> None:
        if self._ttl(entry) is None:
            return
        self.outbox.add(*records.record_call(
            self.queue, entry[2], int(settings.JOB_RECORD_TTL_S * 1000),
            state="running", task=entry[3], attempt=entry[6], enqueued_at_ms=entry[7],
            started_at_ms=records.now_ms(), worker=self.worker, entry=entry[1],
        ))

    def succeeded(self, queue_name: str, entry: Entry, result: object) -> bool:
        """Record the result and ack the job in one script (``finish_job.lua``): the ack never
        lands without the result."""
        ttl = self._ttl(entry)
        if ttl is None:
            return False
        at = records.now_ms()
        outcome = records.succeeded_outcome(result if isinstance(result, bytes) else b"null", entry[6], at)
        self.outbox.add(*records.finish_call(self.queue, entry, ttl, outcome, at))
        return True

    def failed(self, queue_name: str, entry: Entry, error: BaseException) -> None:
        if self._ttl(entry) is None:
            return
        self.outbox.add(*records.record_call(
            self.queue, entry[2], int(settings.JOB_RECORD_TTL_S * 1000),
            last_error=f"{type(error).__name__}: {error}"[:1000],
        ))

    def retrying(self, queue_name: str, entry: Entry, delay_s: float) -> None:
        if self._ttl(entry) is None:
            return
        self.outbox.add(*records.record_call(
            self.queue, entry[2], int(settings.JOB_RECORD_TTL_S * 1000),
            state="retrying", next_attempt_at_ms=records.now_ms() + int(delay_s * 1000),
        ))

    def dead(self, queue_name: str, entry: Entry, reason: str, error: BaseException | None) -> None:
        ttl = self._ttl(entry)
        if ttl is None:
            return
        at = records.now_ms()
        outcome = records.dead_outcome(reason, records.error_fields(error), entry[6], at)
        self.outbox.add(*records.record_call(
            self.queue, entry[2], ttl, outcome, state="dead", task=entry[3], attempt=entry[6], finished_at_ms=at,
        ))
