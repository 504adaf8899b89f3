"""What callers hold on to: the handle of an enqueued job, and the job a worker is running."""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import settings
from .checks import seconds_setting

if TYPE_CHECKING:
    from .lifecycle import CancelResult, JobStatus
    from .queue import Queue


@dataclass(frozen=True)
class EnqueuedJob:
    """Returned by ``enqueue``: enough to find the job again in logs and streams.

    ``duplicate`` is True when the task is unique and an equal job was already waiting or
    running: ``id`` is then that job's id and nothing was enqueued (``due_at_ms`` is None).
    """

    id: str
    task: str | None  #: None for a handle made from an id alone (``queue.job(id)``)
    queue: str
    due_at_ms: int | None = None
    duplicate: bool = False
    _queue: Queue | None = field(default=None, repr=False, compare=False)

    def _owner(self) -> Queue:
        if self._queue is None:
            raise RuntimeError("this EnqueuedJob has no queue: get handles from enqueue() or queue.job(id)")
        return self._queue

    def status(self) -> JobStatus:
        """Where the job is now: ``state`` is one of queued, scheduled, running, retrying,
        succeeded, dead, cancelled, with attempts, timestamps, worker and progress (see
        :class:`qrun.JobStatus`). Raises :class:`qrun.JobNotFound` for an id the queue does not
        know (never existed, or settled and its record expired)."""
        from .lifecycle import status

        return status(self._owner(), self.id)

    def result(self, timeout: float | None = None) -> Any:
        """Block until the job settles (``timeout`` seconds at most; None: no limit) and return
        its return value. Raises :class:`qrun.JobFailed` if it ended dead,
        :class:`qrun.JobCancelled` if cancelled, :class:`qrun.JobTimeout` after ``timeout``,
        :class:`qrun.JobNotFound` if a server that restarted mid-wait lost the job. The task
        must keep results (``result_ttl``). A lost connection is retried until ``timeout``."""
        from .lifecycle import wait_result

        return wait_result(self._owner(), self.id, timeout, task_name=self.task)

    def cancel(self) -> CancelResult:
        """Cancel the job: a queued or delayed one never runs; a running one gets
        :class:`qrun.JobCancelled` raised inside it (killed after the grace period if it
        ignores it). Says what it did, or that the job had already settled."""
        from .lifecycle import cancel

        return cancel(self._owner(), self.id)


@dataclass(frozen=True, slots=True)
class Job:
    """One delivery of a job to a worker, as decoded from its stream entry."""

    queue: str
    entry_id: str
    id: str
    task: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    enqueued_at_ms: int = 0
    _queue: Queue | None = field(default=None, repr=False, compare=False)

    def extend(self, seconds: float) -> None:
        """Keep this job from being redelivered for at least ``seconds`` from now.

        A supervisor already keeps its live workers' jobs hidden; this is for a job that
        knows it will run long and must stay hidden even if its supervisor (or host) stops
        extending it. A lease left after the job settled is harmless (the claimer only looks at
        pending entries) and is dropped once it expires.
        """
        seconds = seconds_setting("extend(seconds)", seconds, minimum=0.0)
        if self._queue is None or _consumer is None:
            raise RuntimeError("Job.extend() works only inside a job a qrun worker is running")
        queue = self._queue
        until_ms = time.time_ns() // 1_000_000 + int(seconds * 1000)
        with queue.redis.pipeline(transaction=True) as pipe:
            hold(pipe, queue, self.entry_id, _consumer, until_ms)
            pipe.execute()

    def progress(self, fraction: float | None = None, note: str | None = None, **fields: Any) -> bool:
        """Report how far this job got: ``fraction`` from 0 to 1, a short ``note`` and any
        JSON ``fields``. Stored with the job's status, published as a ``progress`` event, and
        a heartbeat: it renews the job's lease, so a job that keeps reporting is never
        redelivered while it lives. At most one write per PROGRESS_INTERVAL_S (0.25 s) per
        job: a call sooner than that after the last write is dropped and returns False, so a
        tight loop cannot flood the server. True if this call wrote.
        """
        from .lifecycle.progress import report

        if self._queue is None or _consumer is None:
            raise RuntimeError("Job.progress() works only inside a job a qrun worker is running")
        return report(self._queue, self, _consumer, fraction, note, fields)


def hold(pipe: Any, queue: Queue, entry_id: str, consumer: str, until_ms: int) -> None:
    """Add to ``pipe`` what keeps a pending entry hidden until ``until_ms``: a lease the
    claimer respects, and an idle reset (XCLAIM to its owner ``consumer``, JUSTID: neither the
    owner nor the delivery count changes). Used by ``extend``, ``progress`` and ``qrun extend``."""
    pipe.zadd(queue.keys.leases, {entry_id: until_ms}, gt=True)
    pipe.xclaim(queue.keys.stream, settings.CONSUMER_GROUP, consumer, 0, [entry_id], justid=True)


#: (queue, decoded entry) of the running job; the Job is built only when asked for, so the
#: hot path pays for a tuple, not a dataclass.
_current: ContextVar[tuple[Queue, tuple[Any, ...]] | None] = ContextVar("qrun_current_job", default=None)

#: The consumer name this process's worker reads as (set at boot).
_consumer: str | None = None


def _set_consumer(name: str) -> None:
    global _consumer
    _consumer = name


def current_job() -> Job | None:
    """The job the calling code runs inside, or None outside a worker."""
    running = _current.get()
    if running is None:
        return None
    queue, (_stream, entry_id, job_id, task, args, kwargs, attempt, enqueued_at) = running
    return Job(queue.name, entry_id, job_id, task, args, kwargs, attempt, enqueued_at, _queue=queue)
