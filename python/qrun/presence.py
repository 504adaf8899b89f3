"""Who is alive right now: each supervisor keeps a record of itself and its workers, with a TTL.

Keys (under the deployment's prefix; they belong to no queue, so they carry no hash tag)::

    <prefix>:presence:<host>:<pid>   string: the supervisor's JSON record, SET with PX = 3 heartbeats
    <prefix>:presence                sorted set: member = a record's key, score = its expiry (ms)

A record that misses three heartbeats expires on its own, so a host that vanished (power
loss, network split, SIGKILL) drops out without anyone cleaning up. The index only says
where to look: :func:`alive` reads every member and keeps the records that still exist,
and each heartbeat trims members whose expiry has passed.

A beat is one pipelined round trip without MULTI (the two keys may live on different
cluster nodes). Reading (:func:`alive`, ``qrun workers``) touches one key per supervisor:
it is an operator command, not something to call per job.

The record::

    {"host": "web-1", "pid": 4242, "queues": ["emails"], "started_at_ms": …, "heartbeat_at_ms": …,
     "workers": [{"pid": 4250, "started_at_ms": …, "jobs_done": 1523, "job_id": "6f1c…",
                  "task": "app.send_email", "queue": "emails", "job_started_at_ms": …}]}

A supervisor serving Prometheus metrics (``--metrics-port``) adds ``"metrics": {"address":
"0.0.0.0", "port": 9191}`` (the address it listens on), which ``qrun top`` scrapes.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis

from . import settings
from .checks import seconds_setting
from .keys import validate_name

log = logging.getLogger(__name__)

#: A record lives this many heartbeat periods after its last beat.
TTL_HEARTBEATS = 3


def index_key(prefix: str) -> str:
    """The sorted set of presence record keys (score: expiry in ms since the epoch)."""
    return f"{prefix}:presence"


def record_key(prefix: str, host: str, pid: int) -> str:
    """The key of one supervisor's presence record."""
    return f"{prefix}:presence:{host}:{pid}"


@dataclass(frozen=True)
class WorkerInfo:
    """One worker process as its supervisor sees it; ``job_*``, ``task`` and ``queue`` are None when idle."""

    pid: int
    started_at_ms: int
    jobs_done: int
    job_id: str | None = None
    task: str | None = None
    queue: str | None = None
    job_started_at_ms: int | None = None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Presence:
    """One supervisor's presence record, refreshed by :meth:`beat` every ``interval_s``.

    Call :meth:`beat` at least every ``interval_s`` seconds (the record expires after
    ``3 × interval_s``) and :meth:`leave` on a clean exit. Not thread-safe; one thread beats.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        host: str,
        pid: int,
        queues: list[str],
        started_at_ms: int,
        interval_s: float = settings.PRESENCE_INTERVAL_S,
        metrics: tuple[str, int] | None = None,
    ) -> None:
        self.client = client
        self.prefix = validate_name("prefix", prefix)
        self.host = host
        self.pid = pid
        self.queues = list(queues)
        self.started_at_ms = started_at_ms
        self.interval_s = seconds_setting("presence interval", interval_s, minimum=0.001)
        self.ttl_ms = max(1, round(TTL_HEARTBEATS * self.interval_s * 1000))
        self.metrics = metrics
        self.key = record_key(self.prefix, host, pid)
        self.index = index_key(self.prefix)

    def record(self, workers: list[WorkerInfo], now_ms: int | None = None) -> dict[str, Any]:
        """The record a beat at ``now_ms`` writes."""
        record = {
            "host": self.host,
            "pid": self.pid,
            "queues": self.queues,
            "started_at_ms": self.started_at_ms,
            "heartbeat_at_ms": _now_ms() if now_ms is None else now_ms,
            "workers": [asdict(worker) for worker in workers],
        }
        if self.metrics is not None:
            record["metrics"] = {"address": self.metrics[0], "port": self.metrics[1]}
        return record

    def beat(self, workers: list[WorkerInfo]) -> None:
        """Write the record with a fresh TTL, index it, and trim expired index members: one round trip.

        Raises what redis-py raises (``redis.RedisError``); the caller logs it and beats again
        next period (three missed periods and the record expires).
        """
        now_ms = _now_ms()
        payload = json.dumps(self.record(workers, now_ms), separators=(",", ":"), ensure_ascii=False)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.set(self.key, payload, px=self.ttl_ms)
            pipe.zadd(self.index, {self.key: now_ms + self.ttl_ms})
            pipe.zremrangebyscore(self.index, "-inf", f"({now_ms}")
            pipe.execute()

    def leave(self) -> None:
        """Remove the record now (a clean exit); best effort: a failure only logs, the TTL cleans up."""
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.delete(self.key)
                pipe.zrem(self.index, self.key)
                pipe.execute()
        except redis.RedisError as error:
            log.warning("could not remove presence record %s (%s); it expires by itself", self.key, error)


def alive(client: redis.Redis, prefix: str) -> list[dict[str, Any]]:
    """The records of every supervisor whose TTL has not run out, sorted by host and pid.

    Reads the whole index (not by score, so clocks that disagree between hosts cannot hide
    a live supervisor) and GETs each record in one pipeline; records that expired, or that
    are not valid JSON objects, are left out.
    """
    prefix = validate_name("prefix", prefix)
    members: list[bytes] = client.zrange(index_key(prefix), 0, -1)  # type: ignore[assignment]
    if not members:
        return []
    with client.pipeline(transaction=False) as pipe:
        for member in members:
            pipe.get(member)
        payloads = pipe.execute()
    records = []
    for member, payload in zip(members, payloads):
        if payload is None:
            continue
        try:
            record = json.loads(payload)
        except ValueError:
            log.warning("presence record %r is not JSON; skipped", member)
            continue
        if isinstance(record, dict):
            records.append(record)
    records.sort(key=lambda record: (str(record.get("host", "")), _int(record.get("pid"))))
    return records


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
