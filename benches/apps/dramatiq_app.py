"""Dramatiq's side of the benchmark: a RedisBroker on $BENCH_URL with the default middleware
(Retries on at its defaults; no Results middleware, so no result backend).

``build(url)`` makes a broker with both actors declared on it; the module-level ``broker`` (also
installed as the global broker) is what ``dramatiq benches.apps.dramatiq_app`` runs. The
enqueue side (benches.systems.dramatiq) calls ``build`` with its own URL.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from benches import marks

QUEUE = "bench"


def build(url: str) -> tuple[RedisBroker, dramatiq.Actor, dramatiq.Actor]:
    broker = RedisBroker(url=url)

    @dramatiq.actor(broker=broker, queue_name=QUEUE, actor_name="noop")
    def noop() -> None:
        marks.mark()

    @dramatiq.actor(broker=broker, queue_name=QUEUE, actor_name="probe")
    def probe(sent_at: float) -> None:
        marks.mark_latency(sent_at)

    return broker, noop, probe


broker, noop, probe = build(os.environ.get("BENCH_URL", "redis://127.0.0.1:6379/0"))
dramatiq.set_broker(broker)
