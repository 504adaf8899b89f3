"""Dramatiq with results, as its docs set them up for Redis: a RedisBroker with the
``Results`` middleware on a ``RedisBackend``, and an actor declared with
``store_results=True``; everything else at Dramatiq's defaults. Its own queue
(``bench-results``) and module, so the results-off app (benches.apps.dramatiq_app) is unchanged.

``build(url)`` makes the broker, the backend and the actor; the module-level ``broker`` is
what ``dramatiq benches.apps.dramatiq_results_app`` runs.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

QUEUE = "bench-results"


def build(url: str):  # -> (RedisBroker, RedisBackend, echo actor)
    broker = RedisBroker(url=url)
    backend = RedisBackend(url=url)
    broker.add_middleware(Results(backend=backend))

    @dramatiq.actor(broker=broker, queue_name=QUEUE, actor_name="echo", store_results=True)
    def echo(value: int) -> int:
        return value

    return broker, backend, echo


broker, backend, echo = build(os.environ.get("BENCH_URL", "redis://127.0.0.1:6379/0"))
dramatiq.set_broker(broker)
