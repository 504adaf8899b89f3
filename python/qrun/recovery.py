"""Getting the jobs of dead workers moving again, and keeping live workers' jobs hidden.

Used by the supervisor's maintenance thread. Every function here is safe to run from many
supervisors on many hosts at once: the decisions are made inside Lua scripts or by commands
that are atomic on the server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.exceptions import ResponseError

from . import scripts, settings
from .connection import redact
from .queue import Queue

log = logging.getLogger(__name__)


@dataclass
class Reclaimed:
    """What one reclaim pass did."""

    looked_at: int = 0
    redelivered: int = 0
    dead_lettered: int = 0
    #: (job id, task, attempt, reason) of each job dead-lettered, for lifecycle events
    dead_jobs: list[tuple[str, str, int, str]] = field(default_factory=list)
    #: (entry id, job id, task, attempt) of each job cancelled while held: left pending, for
    #: the caller to settle as cancelled (qrun.settle.settle_cancelled_entry)
    cancelled_jobs: list[tuple[str, str, str, int]] = field(default_factory=list)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def reclaim(
    queue: Queue,
    *,
    min_idle_ms: int | None = None,
    consumer: str = "",
    batch_size: int = settings.CLAIM_BATCH_SIZE,
    max_batches: int = 50,
    alive: Sequence[str] = (),
    max_seconds: float | None = None,
    charge_only: str | None = None,
) -> Reclaimed:
    """Redeliver (or dead-letter, past max deliveries) pending entries idle longer than the
    queue's visibility timeout; ``consumer`` limits the pass to one (dead) worker's entries;
    entries of the consumers in ``alive`` are never taken, whatever their idle time.

    Every entry taken is charged a delivery, unless ``charge_only`` names the one entry that
    was running when its (dead) worker died: then only that one is, and the others go back
    uncharged (``""``: none is; the worker died between jobs).

    Bounded: at most ``max_batches`` script calls, each holding the server for one batch, and
    no new batch after ``max_seconds`` (a pass slowed down by a stalling server stops rather
    than claim on extensions that have grown old meanwhile).
    """
    started = time.monotonic()
    idle_ms = int(queue.visibility_timeout_s * 1000) if min_idle_ms is None else min_idle_ms
    keys = [queue.keys.stream, queue.keys.dead, queue.keys.stats, queue.keys.leases, queue.keys.cancelled]
    total = Reclaimed()
    start = "-"
    for _ in range(max_batches):
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            break
        try:
            last, looked, redelivered, dead, dead_jobs, cancelled_jobs = scripts.RECLAIM(
                queue.redis,
                keys,
                [
                    settings.CONSUMER_GROUP, idle_ms, start, batch_size, queue.max_deliveries, _now_ms(), consumer,
                    "*" if charge_only is None else charge_only, *alive,
                ],
            )
        except ResponseError as error:
            if "NOGROUP" in str(error):  # no worker ever started: nothing can be pending
                return total
            raise
        total.looked_at += looked
        total.redelivered += redelivered
        total.dead_lettered += dead
        for index in range(0, len(dead_jobs), 4):
            job_id, task, attempt, reason = (part.decode("utf-8", "replace") for part in dead_jobs[index : index + 4])
            total.dead_jobs.append((job_id, task, int(attempt) if attempt.isdigit() else 0, reason))
        for index in range(0, len(cancelled_jobs), 4):
            entry_id, job_id, task, attempt = (part.decode("utf-8", "replace") for part in cancelled_jobs[index : index + 4])
            total.cancelled_jobs.append((entry_id, job_id, task, int(attempt) if attempt.isdigit() else 0))
        if looked < batch_size:
            break
        start = "(" + last.decode()
    return total


def trim_cancel_marks(queue: Queue) -> int:
    """Drop cancel marks older than CANCEL_MARK_TTL_S: their job settled before the cancel
    reached it, or nobody serves the queue any more. Returns how many marks went."""
    cutoff = _now_ms() - int(settings.CANCEL_MARK_TTL_S * 1000)
    with queue.redis.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(queue.keys.cancelled, "-inf", cutoff)
        pipe.zremrangebyscore(queue.keys.cancel_entries, "-inf", cutoff)
        jobs, entries = pipe.execute()
    return int(jobs) + int(entries)


def extend_visibility(queue: Queue, consumers: list[str]) -> int:
    """Reset the idle time of every entry the given live workers hold, so the claimer never
    takes a job from a worker that is still on it (or still has to ack it); one pipelined
    round trip. Returns how many entries were extended."""
    if not consumers:
        return 0
    replies = scripts.run_pipelined(queue.redis, [
        (scripts.EXTEND, [queue.keys.stream], [settings.CONSUMER_GROUP, consumer, settings.EXTEND_BATCH_SIZE])
        for consumer in consumers
    ])
    extended = 0
    for reply in replies:
        if isinstance(reply, int):
            extended += reply
        elif isinstance(reply, ResponseError) and "NOGROUP" not in str(reply):  # NOGROUP: purged
            raise reply
    return extended


def forget_consumer(queue: Queue, consumer: str) -> bool:
    """Remove a dead worker's consumer from the group once nothing is pending under it
    (XGROUP DELCONSUMER would drop pending entries, so it waits for the claimer)."""
    try:
        pending = queue.redis.xpending_range(
            queue.keys.stream, settings.CONSUMER_GROUP, "-", "+", 1, consumername=consumer
        )
        if pending:
            return False
        queue.redis.xgroup_delconsumer(queue.keys.stream, settings.CONSUMER_GROUP, consumer)
    except ResponseError as error:
        if "NOGROUP" not in str(error):
            raise
    return True


def forget_idle_consumers(queue: Queue, idle_s: float = settings.FORGET_CONSUMER_AFTER_S) -> int:
    """Remove consumers with nothing pending that have not read for ``idle_s`` (workers of
    supervisors that died without cleaning up); a live worker reads every second."""
    try:
        consumers = queue.redis.xinfo_consumers(queue.keys.stream, settings.CONSUMER_GROUP)
    except ResponseError as error:
        if "NOGROUP" in str(error) or "no such key" in str(error):
            return 0
        raise
    removed = 0
    for info in consumers:
        if int(info["pending"]) == 0 and int(info["idle"]) > idle_s * 1000:
            name = info["name"]
            removed += forget_consumer(queue, name.decode() if isinstance(name, bytes) else name)
    return removed


def trim_dead(queue: Queue) -> int:
    """Drop dead letters older than the queue's retention; returns how many went."""
    if queue.dead_retention_s is None:
        return 0
    oldest_kept_ms = _now_ms() - int(queue.dead_retention_s * 1000)
    return int(queue.redis.xtrim(queue.keys.dead, minid=oldest_kept_ms, approximate=False))


def recreate_lost_groups(queues: Sequence[Queue], why: str) -> int:
    """After the server lost its data (it restarted without persistence): recreate each
    queue's consumer group so workers and enqueues go on. Whoever creates a group (one
    process of the fleet: XGROUP CREATE succeeds once) says, once and loudly, what was lost.
    Returns how many groups this call recreated."""
    lost = [queue for queue in queues if queue.ensure_group()]
    if lost:
        log.error(
            "the server at %s came back WITHOUT the data of queue(s) %s (%s): jobs that were "
            "ready, delayed or in flight before, and their stats, are lost unless another copy "
            "exists; consumer groups recreated, workers go on with new jobs. Turn on persistence "
            "(appendonly yes) to keep jobs across restarts: docs/operations.md",
            redact(lost[0].url), ", ".join(f"{queue.prefix}:{queue.name}" for queue in lost), why,
        )
    return len(lost)
