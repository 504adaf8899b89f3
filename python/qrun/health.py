"""``qrun health``: one answer for liveness and readiness probes, as an exit code.

Checks, each reported on its own line: the server answers; each queue has its consumer group
(a worker started on it); a supervisor serving each queue is alive (its presence record,
refreshed every PRESENCE_INTERVAL_S); and, with ``max_lag_s``, the oldest job waiting to be
delivered is younger than that.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.exceptions import RedisError, ResponseError

from . import settings
from .admin import oldest_ready_age_s
from .presence import alive
from .queue import Queue


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check(queues: list[Queue], max_lag_s: float | None = None, *, need_workers: bool = True) -> list[Check]:
    """Every check for ``queues`` (all on one server and prefix); never raises for a server
    that does not answer: that is a failed check."""
    client = queues[0].redis
    try:
        client.ping()
    except RedisError as error:
        return [Check("server", False, f"no answer: {error}")]
    checks = [Check("server", True, "answers")]
    serving: set[str] = set()
    if need_workers:
        for record in alive(client, queues[0].prefix):
            serving.update(str(name) for name in record.get("queues") or [])
    for queue in queues:
        try:
            groups = [g.get("name") for g in client.xinfo_groups(queue.keys.stream)]
            has_group = any(name in (settings.CONSUMER_GROUP, settings.CONSUMER_GROUP.encode()) for name in groups)
        except ResponseError:
            has_group = False
        checks.append(Check(f"{queue.name}: group", has_group,
                            "exists" if has_group else "missing: no worker ever started on this queue"))
        if need_workers:
            up = queue.name in serving
            checks.append(Check(f"{queue.name}: workers", up, "a supervisor serves it" if up else "no live supervisor serves it"))
        if max_lag_s is not None:
            age = oldest_ready_age_s(queue)
            fresh = age is None or age <= max_lag_s
            shown = "nothing waiting" if age is None else f"oldest ready job waited {age:.1f}s"
            checks.append(Check(f"{queue.name}: lag", fresh, f"{shown} (max {max_lag_s:g}s)"))
    return checks
