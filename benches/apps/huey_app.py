"""Huey's side of the benchmark: RedisHuey on $BENCH_URL with results off (results=False).

Everything else at Huey's defaults (blocking dequeue, retries=0 as huey's default). ``build(url)``
makes a huey with both tasks registered; the module-level ``huey`` is what
``huey_consumer benches.apps.huey_app.huey`` runs, and the enqueue side
(benches.systems.huey) builds its own with its URL. Both register the tasks under the same
names (module + function name), so the consumer finds them.
"""

from __future__ import annotations

import os

from huey import RedisHuey

from benches import marks

QUEUE = "bench"


def build(url: str):  # -> (RedisHuey, noop task, probe task)
    huey = RedisHuey(QUEUE, url=url, results=False)

    @huey.task()
    def noop() -> None:
        marks.mark()

    @huey.task()
    def probe(sent_at: float) -> None:
        marks.mark_latency(sent_at)

    return huey, noop, probe


huey, noop, probe = build(os.environ.get("BENCH_URL", "redis://127.0.0.1:6379/0"))
