"""What callers hold on to: the handle of an enqueued job, and the job a worker is running."""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import settings
from .checks import seconds_setting

if TYPE_CHECKING:
    from .queue import Queue


@dataclass(frozen=True)
class EnqueuedJob:
    """Returned by ``enqueue``: enough to find the job again in logs and streams.

    ``duplicate`` is True when the task is unique and an equal job was already waiting or
    running: ``id`` is then that job's id and nothing was enqueued (``due_at_ms`` is None).
    """

    id: str
    task: str
    queue: str
    due_at_ms: int | None = None
    duplicate: bool = False


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
            pipe.zadd(queue.keys.leases, {self.entry_id: until_ms}, gt=True)
            pipe.xclaim(queue.keys.stream, settings.CONSUMER_GROUP, _consumer, 0, [self.entry_id], justid=True)
            pipe.execute()


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
