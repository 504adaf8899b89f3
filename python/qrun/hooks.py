"""The moments of a job's life in a worker, as hooks a feature can act on.

A feature that must act when a job starts, succeeds, fails, is retried or is dead-lettered
subclasses :class:`JobHooks`, overrides the few hooks it needs (each is a no-op here), and is
registered on a worker only when it is on (:func:`hooks_for`). A worker with no feature on
iterates over an empty tuple, so an unused feature costs nothing on the hot path; features
never add branches to :mod:`qrun.worker` or :mod:`qrun.settle`.

Hooks run on the worker's main thread, in registration order, and must be quick (no round
trip of their own: gather, and let the worker's next round trip carry it, as events do). A
hook that raises is logged and does not fail the job or the worker.

``entry`` is the decoded delivery: ``(stream, entry_id, job_id, task, args, kwargs,
attempt, enqueued_at)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .events import EventBatch, error_text

log = logging.getLogger(__name__)

Entry = tuple[Any, ...]


class JobHooks:
    """Every moment of a job's life a feature may act on; each a no-op by default."""

    def started(self, queue_name: str, entry: Entry) -> None:
        """The job is about to run (its slot and the supervisor know it)."""

    def succeeded(self, queue_name: str, entry: Entry) -> None:
        """The job returned; its ack is owed (sent within ACK_WINDOW_S)."""

    def failed(self, queue_name: str, entry: Entry, error: BaseException) -> None:
        """An attempt raised; ``retrying`` or ``dead`` follows."""

    def retrying(self, queue_name: str, entry: Entry, delay_s: float) -> None:
        """The next attempt is scheduled ``delay_s`` from now."""

    def dead(self, queue_name: str, entry: Entry, reason: str, error: BaseException | None) -> None:
        """The job is in the dead-letter stream, with ``reason``."""


class PublishEvents(JobHooks):
    """Lifecycle events (``Queue(..., events=True)``): gathered in an :class:`EventBatch`,
    published with the worker's next round trip."""

    def __init__(self, batch: EventBatch) -> None:
        self.batch = batch

    def started(self, queue_name: str, entry: Entry) -> None:
        self.batch.add("started", queue_name, entry[2], entry[3], entry[6])

    def succeeded(self, queue_name: str, entry: Entry) -> None:
        self.batch.add("succeeded", queue_name, entry[2], entry[3], entry[6])

    def failed(self, queue_name: str, entry: Entry, error: BaseException) -> None:
        self.batch.add("failed", queue_name, entry[2], entry[3], entry[6], error=error_text(error))

    def retrying(self, queue_name: str, entry: Entry, delay_s: float) -> None:
        self.batch.add("retrying", queue_name, entry[2], entry[3], entry[6], delay_s=round(delay_s, 3))

    def dead(self, queue_name: str, entry: Entry, reason: str, error: BaseException | None) -> None:
        self.batch.add("dead", queue_name, entry[2], entry[3], entry[6], reason=reason,
                       error=error_text(error) if error else None)


Hooks = Sequence[JobHooks]


def call(hooks: Hooks, moment: str, *args: Any) -> None:
    """Run one hook of every registered feature; a hook that raises is logged, not raised."""
    for hook in hooks:
        try:
            getattr(hook, moment)(*args)
        except Exception:
            log.exception("hook %s.%s failed; the job goes on", type(hook).__name__, moment)


def hooks_for(events: EventBatch | None) -> tuple[JobHooks, ...]:
    """The hooks a queue's jobs run with: one per feature that is on (none: an empty tuple)."""
    return (PublishEvents(events),) if events is not None else ()
