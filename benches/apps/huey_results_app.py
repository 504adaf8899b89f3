"""Huey with results: RedisHuey with ``results=True`` (Huey's default) and
``notify_result=True``, the option Huey documents for low-latency result fetching (the
consumer LPUSHes a notification key that a blocking ``get`` BLPOPs; without it the caller
polls with backoff). Its own name (``bench-results``) and module, so the results-off app
(benches.apps.huey_app) is unchanged.

The consumer (``huey_consumer benches.apps.huey_results_app.huey``) always notifies; the
enqueue side (benches.systems.huey) builds one huey with notify_result=True and one without,
whose ``result.get(blocking=True)`` polls: Huey's default waiting.
"""

from __future__ import annotations

import os

from huey import RedisHuey

QUEUE = "bench-results"


def build(url: str, notify_result: bool = True):  # -> (RedisHuey, echo task)
    huey = RedisHuey(QUEUE, url=url, results=True, notify_result=notify_result)

    @huey.task()
    def echo(value: int) -> int:
        return value

    return huey, echo


huey, echo = build(os.environ.get("BENCH_URL", "redis://127.0.0.1:6379/0"))
