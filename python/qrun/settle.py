"""Settling a failed delivery: another attempt later, or the dead-letter stream with the reason.

Shared by workers (a job raised) and the supervisor (it killed a worker whose job ran past
its hard time limit), so both record a failure the same way. Each path is one atomic script
that also takes the entry out of the pending list.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

from . import codec, scripts, settings
from .backoff import retry_delay_s
from .errors import JobCancelled, ResultError, Retry
from .events import publish_one
from .hooks import Hooks, call
from .lifecycle.records import settle_cancelled_call
from .queue import Queue
from .task import Task

log = logging.getLogger(__name__)

#: Raw fields of a malformed entry kept in its dead letter at most (Lua's unpack limit is ~8000).
MAX_DEAD_FIELDS = 7_000

#: (stream, entry_id, job_id, task, args, kwargs, attempt, enqueued_at), as the codec decodes it
Entry = tuple[Any, ...]


def fail_attempt(queue: Queue, task: Task[..., Any], entry: Entry, error: BaseException, hooks: Hooks = ()) -> None:
    """Schedule the next attempt with backoff, or dead-letter the job once its retries are used."""
    _stream, entry_id, job_id, task_name, args, kwargs, attempt, enqueued_at = entry
    if isinstance(error, JobCancelled):  # cancelled while it ran: never retried
        settle_cancelled(queue, entry, hooks, interrupted=True)
        return
    if hooks:
        call(hooks, "failed", queue.name, entry, error)
    if isinstance(error, ResultError):  # the same return value again would fail the same way
        dead_letter(queue, entry, f"its result cannot be kept: {error}", error, hooks)
        return
    if attempt > task.policy.retries:
        dead_letter(queue, entry, f"failed {attempt} time{'s' if attempt != 1 else ''}; no retries left", error, hooks)
        return
    if isinstance(error, Retry) and error.delay is not None:
        delay_s = error.delay
    else:
        delay_s = retry_delay_s(attempt, task.policy.backoff_base_s, task.policy.backoff_cap_s)
    args_json, kwargs_json = reencode(args, kwargs)
    member = codec.encode_delayed_member(job_id, task_name, args_json, kwargs_json, attempt + 1, enqueued_at)
    due_ms = time.time_ns() // 1_000_000 + int(delay_s * 1000)
    keys = [queue.keys.stream, queue.keys.delayed, queue.keys.stats, queue.keys.cancelled]
    retried = scripts.RETRY(queue.redis, keys, [settings.CONSUMER_GROUP, entry_id, due_ms, member, job_id])
    if retried == 2:  # cancelled while it ran: not retried
        settle_cancelled(queue, entry, hooks, interrupted=True)
        return
    if not retried:
        log.warning("job %s (%s): its entry was settled elsewhere meanwhile; not retried here", job_id, task_name)
        return
    if hooks:
        call(hooks, "retrying", queue.name, entry, delay_s)
    log.warning(
        "job %s (%s) attempt %d failed: %s: %s; retrying in %.2fs",
        job_id, task_name, attempt, type(error).__name__, error, delay_s,
    )


def settle_cancelled(queue: Queue, entry: Entry, hooks: Hooks = (), *, interrupted: bool) -> bool:
    """A cancelled job stopped (interrupted, or before it started): out of the pending list and
    recorded cancelled in one step, never retried; its unique claim, if any, is freed. False if
    its entry was settled elsewhere meanwhile."""
    _stream, entry_id, job_id, task_name, args, kwargs, attempt, _enqueued_at = entry
    script, keys, arguments = settle_cancelled_call(queue, entry_id, job_id, task_name, attempt, interrupted)
    if not script(queue.redis, keys, arguments):
        log.warning("job %s (%s): its entry was settled elsewhere meanwhile; not cancelled here", job_id, task_name)
        return False
    if hooks:
        call(hooks, "cancelled", queue.name, entry, interrupted)
    if not queue.events:  # cancels are rare: their event goes out even on a queue without events=True
        publish_one(queue.redis, queue.prefix, "cancelled", queue.name, job_id, task_name, attempt, interrupted=interrupted)
    if (task := queue.tasks.get(task_name)) is not None and task.unique is not None:
        task.release_unique(job_id, args, kwargs)
    log.warning("job %s (%s) attempt %d cancelled%s", job_id, task_name, attempt,
                " while running" if interrupted else " before it started")
    return True


def settle_cancelled_entry(queue: Queue, entry_id: str, hooks: Hooks = ()) -> bool:
    """A cancelled job found pending under a worker that is gone (the claimer leaves it
    pending for this): settle it as cancelled. A malformed entry is dead-lettered as such."""
    jobs, malformed = read_entry(queue, entry_id)
    if malformed:
        _stream, _entry_id, reason, raw_fields = malformed[0]
        dead_letter_malformed(queue, entry_id, reason, raw_fields)
        return False
    return bool(jobs) and settle_cancelled(queue, jobs[0], hooks, interrupted=True)


def dead_letter(queue: Queue, entry: Entry, reason: str, error: BaseException | None, hooks: Hooks = ()) -> None:
    """Move a decoded job to the dead stream with ``reason`` (and the error, if one)."""
    _stream, entry_id, job_id, task_name, args, kwargs, attempt, enqueued_at = entry
    args_json, kwargs_json = reencode(args, kwargs)
    fields: list[Any] = [
        b"id", job_id, b"task", task_name, b"args", args_json, b"kwargs", kwargs_json,
        b"attempt", attempt, b"enqueued_at", enqueued_at,
    ]
    if not move_to_dead(queue, entry_id, fields, reason, error):
        log.warning("job %s (%s): its entry was settled elsewhere meanwhile; not dead-lettered here", job_id, task_name)
        return
    if hooks:
        call(hooks, "dead", queue.name, entry, reason, error)
    if (task := queue.tasks.get(task_name)) is not None and task.unique is not None:
        task.release_unique(job_id, args, kwargs)
    log.error("job %s (%s) dead-lettered: %s", job_id, task_name, reason, exc_info=error)


def dead_letter_malformed(queue: Queue, entry_id: str, reason: str, raw_fields: list[Any]) -> None:
    """Move an entry that is not a valid job to the dead stream, its raw fields kept as they were."""
    if len(raw_fields) > MAX_DEAD_FIELDS:  # more than one script call can carry
        raw_fields = [b"fields_dropped", str(len(raw_fields) // 2)]
    move_to_dead(queue, entry_id, list(raw_fields), f"malformed entry: {reason}", None)
    log.error("entry %s of queue %s dead-lettered: malformed entry: %s", entry_id, queue.name, reason)


def move_to_dead(queue: Queue, entry_id: str, fields: list[Any], reason: str, error: BaseException | None) -> bool:
    """True if the entry was pending and is now in the dead stream (False: settled elsewhere)."""
    fields += [
        b"dead_reason", reason,
        b"dead_error_type", type(error).__name__ if error else "",
        b"dead_error", str(error) if error else "",
        b"dead_traceback", "".join(traceback.format_exception(error)) if error else "",
        b"dead_at", time.time_ns() // 1_000_000,
        b"dead_entry_id", entry_id,
    ]
    keys = [queue.keys.stream, queue.keys.dead, queue.keys.stats]
    return bool(scripts.DEAD(queue.redis, keys, [settings.CONSUMER_GROUP, entry_id, *fields]))


def reencode(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bytes, bytes]:
    """JSON of arguments that came from JSON; repr() stands in for the odd value JSON refuses."""
    try:
        return codec.encode_payload(args, kwargs)
    except ValueError:
        return repr(args).encode(), repr(kwargs).encode()


def read_entry(queue: Queue, entry_id: str) -> tuple[list[Entry], list[Entry]]:
    """Fetch and decode one entry of the queue's stream (jobs, malformed), as a read would."""
    entries = queue.redis.xrange(queue.keys.stream, entry_id, entry_id)
    if not entries:
        return [], []
    raw_id, fields = entries[0]  # redis-py hands fields back as a dict: flatten it again
    flat = [part for pair in (fields or {}).items() for part in pair]
    return codec.decode_read_reply([[queue.keys.stream.encode(), [[raw_id, flat]]]])
