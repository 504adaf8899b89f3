"""The moments of a job's life in a worker, as hooks a feature can act on.

A feature that must act when a job starts, succeeds, fails, is retried or is dead-lettered
subclasses :class:`JobHooks`, overrides the few hooks it needs (each is a no-op here), and is
registered on a worker only when it is on (:func:`hooks_for`). A worker with no feature on
iterates over an empty tuple, so an unused feature costs nothing on the hot path; features
never add branches to :mod:`qrun.worker` or :mod:`qrun.settle`.

Hooks run on the worker's main thread, in registration order, and must be quick (no round
trip of their own: gather, and let the worker's next round trip carry it, as events do). A
hook that raises is logged and does not fail the job or the worker.

A hook that must write to the server adds a script call to the worker's :class:`Outbox`:
the worker sends it with its next round trip, ahead of the acks of the same jobs, and sends
it again with them if the connection fails; so a job's ack never reaches the server
without what its hooks wrote before it.

``entry`` is the decoded delivery: ``(stream, entry_id, job_id, task, args, kwargs,
attempt, enqueued_at)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .events import EventBatch, error_text

if TYPE_CHECKING:
    import redis

    from .metrics.counts import CountWriter
    from .queue import Queue
    from .scripts import Script

log = logging.getLogger(__name__)

Entry = tuple[Any, ...]


class JobHooks:
    """Every moment of a job's life a feature may act on; each a no-op by default."""

    #: False: the hook acts only on failures (``failed``, ``retrying``, ``dead``,
    #: ``cancelled``), so the worker does not call it when each job starts and succeeds (the
    #: metrics hook: it counts those per batch, qrun.metrics.counts.BatchCounter).
    every_job = True

    def started(self, queue_name: str, entry: Entry) -> None:
        """The job is about to run (its slot and the supervisor know it)."""

    def succeeded(self, queue_name: str, entry: Entry, result: object) -> bool | None:
        """The job returned ``result`` (its JSON bytes when the task keeps results, else
        None); its ack follows (sent within ACK_WINDOW_S, after what hooks wrote). A hook
        that returns True settles the job itself: it added an outbox call that acks the
        entry (and the worker sends no ack of its own)."""

    def failed(self, queue_name: str, entry: Entry, error: BaseException) -> None:
        """An attempt raised; ``retrying`` or ``dead`` follows."""

    def retrying(self, queue_name: str, entry: Entry, delay_s: float) -> None:
        """The next attempt is scheduled ``delay_s`` from now."""

    def dead(self, queue_name: str, entry: Entry, reason: str, error: BaseException | None) -> None:
        """The job is in the dead-letter stream, with ``reason``."""

    def cancelled(self, queue_name: str, entry: Entry, interrupted: bool) -> None:
        """The job was cancelled while a worker held it: before it started, or ``interrupted``."""


class PublishEvents(JobHooks):
    """Lifecycle events (``Queue(..., events=True)``): gathered in an :class:`EventBatch`,
    published with the worker's next round trip."""

    def __init__(self, batch: EventBatch) -> None:
        self.batch = batch

    def started(self, queue_name: str, entry: Entry) -> None:
        self.batch.add("started", queue_name, entry[2], entry[3], entry[6])

    def succeeded(self, queue_name: str, entry: Entry, result: object) -> None:
        self.batch.add("succeeded", queue_name, entry[2], entry[3], entry[6])

    def failed(self, queue_name: str, entry: Entry, error: BaseException) -> None:
        self.batch.add("failed", queue_name, entry[2], entry[3], entry[6], error=error_text(error))

    def retrying(self, queue_name: str, entry: Entry, delay_s: float) -> None:
        self.batch.add("retrying", queue_name, entry[2], entry[3], entry[6], delay_s=round(delay_s, 3))

    def dead(self, queue_name: str, entry: Entry, reason: str, error: BaseException | None) -> None:
        self.batch.add("dead", queue_name, entry[2], entry[3], entry[6], reason=reason,
                       error=error_text(error) if error else None)


    def cancelled(self, queue_name: str, entry: Entry, interrupted: bool) -> None:
        self.batch.add("cancelled", queue_name, entry[2], entry[3], entry[6], interrupted=interrupted)


Hooks = Sequence[JobHooks]


class Outbox:
    """Script calls hooks gathered for the worker's next round trip: ``(script, keys, args)``.

    ``calls`` are appended one by one; a hook that gathers many writes into one call (one
    script call per round trip, not per job) registers as a *source*: its ``pending()`` calls are
    taken with the others and then ``clear()``-ed. Appending and taking are each atomic under
    the GIL (the long-job handler may send a copy, ``peek()``, while the main thread appends)."""

    __slots__ = ("calls", "sources")

    def __init__(self) -> None:
        self.calls: list[tuple[Script, list[str], list[Any]]] = []
        self.sources: list[Any] = []  # objects with pending() -> calls and clear()

    def add(self, script: Script, keys: list[str], args: list[Any]) -> None:
        self.calls.append((script, keys, args))

    def add_source(self, source: Any) -> None:
        self.sources.append(source)

    @property
    def owed(self) -> bool:
        return bool(self.calls) or any(source.owes for source in self.sources)

    def peek(self) -> list[tuple[Script, list[str], list[Any]]]:
        return [*self.calls, *(call for source in self.sources for call in source.pending())]

    def take(self) -> list[tuple[Script, list[str], list[Any]]]:
        calls, self.calls = self.calls, []
        for source in self.sources:
            calls.extend(source.pending())
            source.clear()
        return calls

    def give_back(self, calls: list[tuple[Script, list[str], list[Any]]]) -> None:
        self.calls[:0] = calls

    def send(self, client: redis.Redis) -> None:
        """Send what was gathered now, in one pipeline (off the worker's hot path: the
        supervisor settling a job it killed, the maintenance thread)."""
        from . import scripts

        calls = self.take()
        if not calls:
            return
        for reply in scripts.run_pipelined(client, calls):
            if isinstance(reply, Exception):
                self.give_back(calls)
                raise reply


def succeeded(hooks: Hooks, queue_name: str, entry: Entry, result: object) -> bool:
    """Run every hook's ``succeeded``; True if one of them settles (acks) the job itself."""
    settled = False
    for hook in hooks:
        try:
            settled = bool(hook.succeeded(queue_name, entry, result)) or settled
        except Exception:
            log.exception("hook %s.succeeded failed; the job goes on", type(hook).__name__)
    return settled


def call(hooks: Hooks, moment: str, *args: Any) -> None:
    """Run one hook of every registered feature; a hook that raises is logged, not raised."""
    for hook in hooks:
        try:
            getattr(hook, moment)(*args)
        except Exception:
            log.exception("hook %s.%s failed; the job goes on", type(hook).__name__, moment)


def hooks_for(
    queue: Queue, events: EventBatch | None, outbox: Outbox, worker: str = "", counts: CountWriter | None = None
) -> tuple[JobHooks, ...]:
    """The hooks a queue's jobs run with: one per feature that is on (none: an empty tuple).

    - metrics, when the supervisor serves them (``--metrics-port``): ``counts`` is this
      process's region of the shared count table (:mod:`qrun.metrics.counts`);
    - lifecycle events, when the queue publishes them (``events=True``);
    - job tracking (records and results), when the queue or one of its tasks keeps results.
    """
    hooks: list[JobHooks] = []
    if counts is not None:
        counting = counts.hook(queue)
        if counting is not None:
            hooks.append(counting)
    if events is not None:
        hooks.append(PublishEvents(events))
    if queue.keeps_results:
        from .lifecycle.hooks import TrackJobs

        hooks.append(TrackJobs(queue, outbox, worker))
    return tuple(hooks)
