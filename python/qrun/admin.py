"""Operating a queue by hand, from Python or ``qrun queue`` / ``push`` / ``pop`` / ``ack`` /
``extend``: what the Valkey queue module qrun replaces offered operators.

Hand-processing uses the same consumer group, leases and scripts as workers, so it keeps the
delivery guarantee: a popped job is hidden for its visibility timeout (a lease in
``:leases``), then the claimer redelivers it unless it was acked.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import ResponseError

from . import codec, queue_settings, scripts, settings
from .errors import ConfigurationError, QrunError
from .connection import text as _text
from .job import hold
from .lifecycle.status import queue_names
from .queue import Queue


class ReceiptNotPending(QrunError, LookupError):
    """A receipt (a popped job's entry id) that is not pending any more: acked already, or
    redelivered after its visibility timeout."""


def exists(queue: Queue) -> bool:
    """True if the server has a stream, delayed set, dead stream, counters or settings of the queue."""
    keys = queue.keys
    return bool(queue.redis.exists(keys.stream, keys.delayed, keys.dead, keys.stats, queue_settings.key(queue)))


def existing_queues(queue: Queue) -> list[str]:
    """Names of the queues under the queue's prefix that have keys on its server."""
    return queue_names(queue.redis, queue.prefix)


def create(queue: Queue, values: dict[str, Any]) -> int:
    """Store the queue's settings (a record must not exist yet) and its stream and consumer
    group; returns the settings version."""
    version = queue_settings.write(queue, values, create=True)
    queue.ensure_group()
    return version


def update(queue: Queue, values: dict[str, Any]) -> int:
    """Change stored settings; running supervisors and workers apply them within seconds."""
    if not values:
        raise ConfigurationError("nothing to update: name at least one setting")
    return queue_settings.write(queue, values, create=False)


def info(queue: Queue) -> dict[str, Any]:
    """Settings in effect (and where each comes from), counts, consumers, the oldest ready job's age."""
    version, stored = queue_settings.read(queue)
    effective = {}
    for name in queue_settings.SETTINGS:
        source = "server" if name in stored else "code"
        value = stored.get(name, queue.code_settings[name])
        effective[name] = {"value": value, "source": source}
    try:
        consumers = len(queue.redis.xinfo_consumers(queue.keys.stream, settings.CONSUMER_GROUP))
    except ResponseError:  # no group yet
        consumers = 0
    return {
        "queue": queue.name, "prefix": queue.prefix, "settings_version": version, "settings": effective,
        "counts": queue.stats(), "consumers": consumers, "oldest_ready_age_s": oldest_ready_age_s(queue),
    }


def oldest_ready_age_s(queue: Queue) -> float | None:
    """Seconds the oldest job not yet delivered has waited (None: nothing waits)."""
    try:
        groups = queue.redis.xinfo_groups(queue.keys.stream)
    except ResponseError:
        return None
    last_delivered = next((g.get("last-delivered-id") for g in groups if _text(g.get("name")) == settings.CONSUMER_GROUP), None)
    start = "(" + _text(last_delivered) if last_delivered not in (None, b"0-0", "0-0") else "-"
    entries = queue.redis.xrange(queue.keys.stream, start, "+", count=1)
    if not entries:
        return None
    entry_id = _text(entries[0][0])
    return max(0.0, time.time() - int(entry_id.split("-")[0]) / 1000)


def delete(queue: Queue) -> int:
    """Delete every key of the queue: jobs, dead letters, counters, settings, job records and
    marks, unique claims (held locks too). Returns how many keys went."""
    removed = 0
    batch: list[Any] = []
    for key in queue.redis.scan_iter(match=f"{_escaped(queue.keys.tag)}:*", count=1000):
        batch.append(key)
        if len(batch) == 1000:
            removed += queue.redis.delete(*batch)
            batch = []
    if batch:
        removed += queue.redis.delete(*batch)
    return removed


def _escaped(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


# -- by hand -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Popped:
    """A job taken by hand: ack it with ``receipt`` before ``hidden_until_ms``, or extend it."""

    receipt: str  #: its entry id: what ack and extend take
    id: str
    task: str
    args: Any
    kwargs: Any
    attempt: int
    enqueued_at_ms: int
    hidden_until_ms: int
    deliveries: int = 1
    raw: dict[str, str] = field(default_factory=dict)


def consumer_for_cli() -> str:
    """A consumer name for hand work: host and pid, like a worker's, marked as a person's."""
    return f"cli-{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"


def pop(queue: Queue, count: int = 1, visibility_timeout_s: float | None = None, consumer: str | None = None) -> list[Popped]:
    """Take up to ``count`` ready jobs as a worker would (the same group), hidden for
    ``visibility_timeout_s`` (default: the queue's) unless acked or extended."""
    if count < 1:
        raise ConfigurationError(f"count must be >= 1, got {count!r}")
    hidden_s = queue.visibility_timeout_s if visibility_timeout_s is None else visibility_timeout_s
    if not hidden_s >= 1:
        raise ConfigurationError(f"visibility timeout must be >= 1 second, got {hidden_s!r}")
    # The claimer takes back entries idle past the queue's timeout: a shorter one cannot hide less.
    hidden_s = max(hidden_s, queue.visibility_timeout_s)
    queue.ensure_group()
    reply: Any = queue.redis.xreadgroup(
        settings.CONSUMER_GROUP, consumer or consumer_for_cli(), {queue.keys.stream: ">"}, count=count
    )
    popped = []
    until_ms = int(time.time() * 1000 + hidden_s * 1000)
    for _stream, entries in reply or []:
        for entry_id, fields in entries:
            text = {_text(k): _text(v) for k, v in (fields or {}).items()}
            popped.append(Popped(
                receipt=_text(entry_id), id=text.get("id", ""), task=text.get("task", ""),
                args=_json(text.get("args", "[]")), kwargs=_json(text.get("kwargs", "{}")),
                attempt=int(text.get("attempt", "1") or 1), enqueued_at_ms=int(text.get("enqueued_at", "0") or 0),
                hidden_until_ms=until_ms, deliveries=int(text.get("deliveries", "0") or 0) + 1, raw=text,
            ))
    if popped:
        # the lease keeps the claimer away until then (it may be longer than the queue's timeout)
        queue.redis.zadd(queue.keys.leases, {job.receipt: until_ms for job in popped}, gt=True)
    return popped


def ack(queue: Queue, receipt: str) -> None:
    """Acknowledge a popped job: it is done (counted as succeeded) and deleted."""
    if not scripts.ACK(queue.redis, [queue.keys.stream, queue.keys.stats], [settings.CONSUMER_GROUP, receipt]):
        raise ReceiptNotPending(_not_pending(queue, receipt))
    queue.redis.zrem(queue.keys.leases, receipt)


def extend(queue: Queue, receipt: str, seconds: float) -> int:
    """Keep a popped (or running) job hidden ``seconds`` from now; returns until when (ms)."""
    if not seconds >= 1:
        raise ConfigurationError(f"extend by at least 1 second, got {seconds!r}")
    try:
        pending = queue.redis.xpending_range(queue.keys.stream, settings.CONSUMER_GROUP, receipt, receipt, 1)
    except ResponseError as error:
        raise ReceiptNotPending(_not_pending(queue, receipt)) from error
    if not pending:
        raise ReceiptNotPending(_not_pending(queue, receipt))
    until_ms = int(time.time() * 1000 + seconds * 1000)
    owner = _text(pending[0]["consumer"])
    with queue.redis.pipeline(transaction=True) as pipe:
        hold(pipe, queue, receipt, owner, until_ms)
        pipe.execute()
    return until_ms


def _not_pending(queue: Queue, receipt: str) -> str:
    return (f"receipt {receipt} is not pending in queue {queue.name!r}: acked already, or redelivered "
            "after its visibility timeout (pop it again)")


def _json(text: str) -> Any:
    try:
        return codec.load_json(text.encode())
    except (ValueError, TypeError):
        return text

