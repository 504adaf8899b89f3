"""What callers hold on to: the handle of an enqueued job, and the job a worker is running."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


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


#: (queue name, decoded entry) of the running job; the Job is built only when asked for, so
#: the hot path pays for a tuple, not a dataclass.
_current: ContextVar[tuple[str, tuple[Any, ...]] | None] = ContextVar("qrun_current_job", default=None)


def current_job() -> Job | None:
    """The job the calling code runs inside, or None outside a worker."""
    running = _current.get()
    if running is None:
        return None
    queue_name, (_stream, *fields) = running
    return Job(queue_name, *fields)
