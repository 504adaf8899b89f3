"""The worker side of job tracking: record a tracked job's state and outcome at the moments
of its life (qrun.hooks), through the worker's outbox, so they travel with its next round
trip, ahead of the job's ack. Registered only on queues that keep results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import settings
from ..hooks import Entry, JobHooks, Outbox
from . import records

if TYPE_CHECKING:
    from ..queue import Queue


class TrackJobs(JobHooks):
    """Keeps the record and outcome of jobs whose task has a ``result_ttl``.

    It writes through the worker's outbox as a *source* (qrun.hooks.Outbox): per round trip,
    one ``finish_jobs.lua`` call records and acks every tracked job that succeeded since the
    last one, and a ``running`` record is written only for the job that runs while the worker
    talks to the server (a slow job, or one still running when acks go out mid-batch): the jobs
    of a fast batch get their start time with their outcome, not a write of their own.
    """

    def __init__(self, queue: Queue, outbox: Outbox, worker: str = "") -> None:
        self.queue = queue
        self.outbox = outbox
        self.worker = worker
        self._running: tuple[Entry, int] | None = None  # the tracked job running now, and since when
        self._start_owed = False  # its running record is not written yet
        self._finished: list[tuple[Entry, int, bytes, int, int]] = []
        outbox.add_source(self)

    # -- as an outbox source ------------------------------------------------------------------

    @property
    def owes(self) -> bool:
        return self._start_owed or bool(self._finished)

    def pending(self) -> list[tuple[Any, list[str], list[Any]]]:
        calls = []
        if self._start_owed and self._running is not None:
            entry, started_at = self._running
            calls.append(records.record_call(
                self.queue, entry[2], int(settings.JOB_RECORD_TTL_S * 1000),
                state="running", task=entry[3], attempt=entry[6], enqueued_at_ms=entry[7],
                started_at_ms=started_at, worker=self.worker, entry=entry[1],
            ))
        if self._finished:
            calls.extend(records.finish_jobs_calls(self.queue, self._finished))
        return calls

    def clear(self) -> None:
        self._start_owed = False
        self._finished = []

    # -- the moments --------------------------------------------------------------------------

    def _ttl(self, entry: Entry) -> int | None:
        task = self.queue.tasks.get(entry[3])
        return None if task is None or task.result_ttl_s is None else int(task.result_ttl_s * 1000)

    def _ended(self, entry: Entry) -> int:
        """When the job that just ended started; no running record is owed for it any more."""
        running = self._running
        self._start_owed = False
        self._running = None
        return running[1] if running is not None and running[0] is entry else records.now_ms()

    def started(self, queue_name: str, entry: Entry) -> None:
        if self._ttl(entry) is None:
            return
        self._running = (entry, records.now_ms())
        self._start_owed = True

    def succeeded(self, queue_name: str, entry: Entry, result: object) -> bool:
        """Record the result and ack the job with the next round trip, in one script with the
        others (``finish_jobs.lua``): the ack never lands without the result."""
        ttl = self._ttl(entry)
        if ttl is None:
            return False
        started_at = self._ended(entry)
        at = records.now_ms()
        outcome = records.succeeded_outcome(
            result if isinstance(result, bytes) else b"null", entry[6], at, entry[3], started_at, self.worker
        )
        self._finished.append((entry, ttl, outcome, at, started_at))
        return True

    def failed(self, queue_name: str, entry: Entry, error: BaseException) -> None:
        if self._ttl(entry) is None:
            return
        started_at = self._ended(entry)
        self.outbox.add(*records.record_call(
            self.queue, entry[2], int(settings.JOB_RECORD_TTL_S * 1000),
            task=entry[3], attempt=entry[6], started_at_ms=started_at, worker=self.worker,
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
        self._ended(entry)
        at = records.now_ms()
        outcome = records.dead_outcome(reason, records.error_fields(error), entry[6], at)
        self.outbox.add(*records.record_call(
            self.queue, entry[2], ttl, outcome, state="dead", task=entry[3], attempt=entry[6], finished_at_ms=at,
        ))
