"""Dead letters: list, show, requeue and delete the entries of a queue's dead stream.

Each dead letter is a ``dict`` of text: ``dead_id`` (its entry id in ``{prefix:queue}:dead``)
and the entry's fields as stored (the job's fields plus ``dead_reason``, ``dead_error_type``,
``dead_error``, ``dead_traceback``, ``dead_at``, ``dead_entry_id``; see docs/wire-format.md).

Requeue and delete take their entries by id (a dead entry id or a job id), by task, or all of
them. Bulk operations walk the dead stream in batches of :data:`settings.DEAD_BATCH_SIZE`
(XRANGE from the oldest, up to the newest entry there was when the walk began, so jobs that
die again meanwhile are not walked twice). Each requeue batch is one ``requeue.lua`` call:
the entries it moves leave the dead stream in the same step, so stopping between batches
(Ctrl+C) loses nothing and a second run finishes the rest. Unique tasks: see :func:`requeue`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from . import codec, scripts, settings
from .errors import ConfigurationError, DeadLetterNotFound
from .unique import default_digest, unique_digest

if TYPE_CHECKING:
    from .queue import Queue

#: One dead letter: ``dead_id`` plus the entry's fields, as text.
DeadLetter = dict[str, str]

#: A raw entry as redis-py reads it: (entry id, {field: value}).
RawEntry = tuple[bytes, dict[bytes, bytes]]

#: Called after each batch with the number of dead entries it looked at and the result so
#: far (a progress bar; a tally to report if the operator interrupts).
OnBatch = Callable[[int, "BulkResult"], None]

_ENTRY_ID = re.compile(r"\d+(-\d+)?")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _letter(entry_id: bytes | str, fields: dict[bytes, bytes]) -> DeadLetter:
    dead_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return {"dead_id": dead_id, **{k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}}


# -- reading ---------------------------------------------------------------------------------


def list_dead(queue: Queue, *, task: str | None = None, since_s: float | None = None, limit: int = 20) -> list[DeadLetter]:
    """The newest ``limit`` dead letters, newest first; only those of ``task``, and only those
    dead-lettered in the last ``since_s`` seconds, when given."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(f"limit must be an integer >= 1, got {limit!r}")
    low = "-" if since_s is None else str(max(0, _now_ms() - int(since_s * 1000)))
    wanted = None if task is None else task.encode()
    count = limit if wanted is None else max(limit, settings.DEAD_BATCH_SIZE)
    found: list[DeadLetter] = []
    high = "+"
    while True:
        entries: list[RawEntry] = queue.redis.xrevrange(queue.keys.dead, high, low, count=count)  # type: ignore[assignment]
        for entry_id, fields in entries:
            if wanted is None or fields.get(b"task") == wanted:
                found.append(_letter(entry_id, fields))
                if len(found) == limit:
                    return found
        if len(entries) < count:
            return found
        high = "(" + entries[-1][0].decode()


def _find_dead_id(queue: Queue, ident: str) -> str | None:
    """The dead entry id ``ident`` names: itself if it is one, else the entry holding job ``ident``."""
    if _ENTRY_ID.fullmatch(ident):
        try:
            if queue.redis.xrange(queue.keys.dead, ident, ident):
                return ident if "-" in ident else None  # "123" alone is a range, not one entry
        except ResponseError:
            pass
    start = "-"
    while True:  # the dead stream is ordered by entry id, not job id: look through it
        found, _fields, last = scripts.FIND_ENTRY(queue.redis, [queue.keys.dead], [ident, start, 2_000])
        if found:
            return str(found.decode())
        if not last:
            return None
        start = "(" + last.decode()


def show(queue: Queue, ident: str) -> DeadLetter:
    """The dead letter ``ident`` names (its dead entry id, or its job's id), traceback included.
    Raises :class:`qrun.errors.DeadLetterNotFound`."""
    dead_id = _find_dead_id(queue, ident)
    entries: list[RawEntry] = queue.redis.xrange(queue.keys.dead, dead_id, dead_id) if dead_id else []  # type: ignore[assignment]
    if not entries:
        raise DeadLetterNotFound(f"no dead letter {ident!r} in queue {queue.name!r} (prefix {queue.prefix!r})")
    return _letter(*entries[0])


# -- changing ----------------------------------------------------------------------------------


@dataclass
class BulkResult:
    """What a requeue or delete did: ``done`` entries, the ones ``skipped`` (dead id, why),
    ``gone`` (removed by someone else between the read and the change) and the ids given
    that match no dead letter (``unknown``)."""

    verb: str
    done: int = 0
    looked: int = 0
    gone: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when something was done and nothing asked for was left undone."""
        return self.done > 0 and not self.skipped and not self.unknown

    def summary(self, shown: int = 5) -> str:
        """``requeued 1000 job(s), skipped 2: 17-0 (unique claim held by job ab12…), …``"""
        parts = [f"{self.verb} {self.done} job(s)"]
        if self.skipped:
            details = ", ".join(f"{dead_id} ({why})" for dead_id, why in self.skipped[:shown])
            more = f", and {len(self.skipped) - shown} more" if len(self.skipped) > shown else ""
            parts.append(f"skipped {len(self.skipped)}: {details}{more}")
        if self.unknown:
            more = f", and {len(self.unknown) - shown} more" if len(self.unknown) > shown else ""
            parts.append(f"no dead letter with id {', '.join(self.unknown[:shown])}{more}")
        if self.gone:
            parts.append(f"{self.gone} already gone (requeued or deleted meanwhile)")
        return "; ".join(parts)


def _selection(ids: Sequence[str], task: str | None, everything: bool) -> None:
    chosen = sum((bool(ids), task is not None, everything))
    if chosen != 1:
        raise ConfigurationError("name the dead letters: ids, task=... or everything=True (exactly one)")


def _walk(queue: Queue, batch_size: int) -> Iterator[list[RawEntry]]:
    """The dead stream oldest first, a batch at a time, up to its newest entry as of now."""
    newest: list[RawEntry] = queue.redis.xrevrange(queue.keys.dead, count=1)  # type: ignore[assignment]
    if not newest:
        return
    end = newest[0][0].decode()
    start = "-"
    while True:
        entries: list[RawEntry] = queue.redis.xrange(queue.keys.dead, start, end, count=batch_size)  # type: ignore[assignment]
        if entries:
            yield entries
        if len(entries) < batch_size:
            return
        start = "(" + entries[-1][0].decode()


def _by_ids(queue: Queue, ids: Sequence[str], result: BulkResult, batch_size: int) -> Iterator[tuple[int, list[RawEntry]]]:
    """The entries ``ids`` name, a batch at a time; ids naming none go to ``result.unknown``."""
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        dead_ids = []
        for ident in chunk:
            dead_id = _find_dead_id(queue, ident)
            if dead_id is None:
                result.unknown.append(ident)
            else:
                dead_ids.append(dead_id)
        with queue.redis.pipeline(transaction=False) as pipe:
            for dead_id in dict.fromkeys(dead_ids):  # the same entry named twice is done once
                pipe.xrange(queue.keys.dead, dead_id, dead_id)
            replies = pipe.execute()
        yield len(chunk), [reply[0] for reply in replies if reply]


def _batches(
    queue: Queue, ids: Sequence[str], task: str | None, everything: bool, result: BulkResult, batch_size: int
) -> Iterator[tuple[int, list[RawEntry]]]:
    """(entries looked at, the selected ones) per batch."""
    _selection(ids, task, everything)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if ids:
        yield from _by_ids(queue, list(ids), result, batch_size)
        return
    wanted = None if task is None else task.encode()
    for entries in _walk(queue, batch_size):
        yield len(entries), [entry for entry in entries if wanted is None or entry[1].get(b"task") == wanted]


def requeue(
    queue: Queue,
    ids: Sequence[str] = (),
    *,
    task: str | None = None,
    everything: bool = False,
    keep_attempts: bool = False,
    batch_size: int = settings.DEAD_BATCH_SIZE,
    on_batch: OnBatch | None = None,
) -> BulkResult:
    """Move dead letters back onto the work stream: those ``ids`` name (dead entry ids or job
    ids), those of ``task``, or ``everything``.

    Each job goes back with its id, task, arguments and ``enqueued_at``, at attempt 1 (a fresh
    set of retries) unless ``keep_attempts``; the ``dead_*`` fields and its delivery count are
    dropped, and its dead outcome and record (``job.result()``) are deleted. An entry that is
    not a job (malformed, ``fields_dropped``) is skipped and reported.

    Unique jobs: if the queue object knows the task (the app's queue, with its tasks) and the
    task is unique, the job is requeued only if no other job holds its claim, and then takes
    the claim for ``unique_for``. If the task is unknown here (a bare ``Queue(name)``, as the
    CLI has without ``--app``), the claim a unique task without ``unique_key`` would have is
    still respected (another job holding it skips the entry) but none is taken.

    ``on_batch(n, result)`` is called after each batch with the entries it looked at; an exception it
    raises (KeyboardInterrupt) stops the walk between two batches, with nothing half done.
    """
    result = BulkResult("requeued")
    for looked, entries in _batches(queue, ids, task, everything, result, batch_size):
        result.looked += looked
        if entries:
            _requeue_batch(queue, entries, keep_attempts, result)
        if on_batch is not None:
            on_batch(looked, result)
    return result


def _requeue_batch(queue: Queue, entries: list[RawEntry], keep_attempts: bool, result: BulkResult) -> None:
    """One requeue.lua call for the jobs among ``entries``; the others are reported skipped."""
    flat = [[entry_id, [part for pair in fields.items() for part in pair]] for entry_id, fields in entries]
    jobs, malformed = codec.decode_read_reply([[queue.keys.dead.encode(), flat]])
    for _stream, dead_id, reason, _raw in malformed:
        result.skipped.append((dead_id, f"not a job: {reason}"))
    raw = {entry_id.decode(): fields for entry_id, fields in entries}
    keys: list[str] = [queue.keys.dead, queue.keys.stream, queue.keys.stats]
    args: list[Any] = []
    sent: list[str] = []
    for _stream, dead_id, job_id, task_name, job_args, job_kwargs, attempt, enqueued_at in jobs:
        try:
            claim = _claim(queue, task_name, job_args, job_kwargs)
        except Exception as error:  # a unique_key that fails on these arguments
            result.skipped.append((dead_id, f"its unique_key failed: {type(error).__name__}: {error}"))
            continue
        fields = raw[dead_id]  # the JSON exactly as stored, not re-encoded
        keys += [queue.keys.done(job_id), queue.keys.job(job_id)]
        if claim is not None:
            keys.append(claim[0])
        args += [
            dead_id, job_id, task_name, fields.get(b"args", b"[]"), fields.get(b"kwargs", b"{}"),
            attempt if keep_attempts else 1, enqueued_at,
            "0" if claim is None else "1", "0" if claim is None else claim[1],
        ]
        sent.append(dead_id)
    if not sent:
        return
    _requeued, outcomes = scripts.REQUEUE(queue.redis, keys, args)
    for index, dead_id in enumerate(sent):
        outcome, holder = outcomes[2 * index].decode(), outcomes[2 * index + 1].decode()
        if outcome == "requeued":
            result.done += 1
        elif outcome == "gone":
            result.gone += 1
        else:
            result.skipped.append((dead_id, f"unique claim held by job {holder}"))


def _claim(queue: Queue, task_name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[str, int] | None:
    """(claim key, ttl in ms to take it for; 0: respect it, take none) of a job, or None."""
    task = queue.tasks.get(task_name)
    if task is None:  # unknown here: respect the claim a plain unique task would hold
        return queue.keys.unique(default_digest(task_name, args, kwargs)), 0
    if task.unique is None:
        return None
    return queue.keys.unique(unique_digest(task, args, kwargs)), max(1, int(task.unique.ttl_s * 1000))


def delete(
    queue: Queue,
    ids: Sequence[str] = (),
    *,
    task: str | None = None,
    everything: bool = False,
    batch_size: int = settings.DEAD_BATCH_SIZE,
    on_batch: OnBatch | None = None,
) -> BulkResult:
    """Delete dead letters for good: those ``ids`` name, those of ``task``, or ``everything``
    (in batches; a unique claim a deleted job still holds expires with its ``unique_for``)."""
    result = BulkResult("deleted")
    for looked, entries in _batches(queue, ids, task, everything, result, batch_size):
        result.looked += looked
        if entries:
            deleted = int(queue.redis.xdel(queue.keys.dead, *(entry_id for entry_id, _ in entries)))
            result.done += deleted
            result.gone += len(entries) - deleted
        if on_batch is not None:
            on_batch(looked, result)
    return result
