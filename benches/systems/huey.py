"""Huey: calling the task enqueues it (Huey has no bulk enqueue), and ``huey_consumer`` with
``-w N -k process`` for the workers.

RedisHuey with ``results=False``; everything else at Huey's defaults (blocking dequeue, the
consumer's default polling and health check). The consumer runs with ``-q`` (it logs two INFO
lines per task otherwise), like the Celery workers at WARNING.
"""

from __future__ import annotations

import sys
from importlib.metadata import version

from benches.apps import huey_app

from .base import ResultClient, System


class Huey(System):
    name = "huey"
    has_bulk = False

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._huey, self._noop, self._probe = huey_app.build(url)

    def version(self) -> str:
        return version("huey")

    def enqueue_one(self) -> None:
        self._noop()

    def enqueue_probe(self, sent_at: float) -> None:
        self._probe(sent_at)

    def worker_command(self, workers: int) -> list[str]:
        return [
            sys.executable, "-m", "huey.bin.huey_consumer", "benches.apps.huey_app.huey",
            "--workers", str(workers),
            "--worker-type", "process",
            "--quiet",
        ]  # fmt: skip

    def result_clients(self) -> list[ResultClient]:
        return [HueyResults(self.url, notify_result=True), HueyResults(self.url, notify_result=False)]

    def close(self) -> None:
        self._huey.storage.conn.close()


class HueyResults(ResultClient):
    """Huey with results (benches.apps.huey_results_app: ``results=True``): ``echo(n)`` then
    ``result.get(blocking=True, timeout=...)``. With ``notify_result=True`` (Huey's documented
    low-latency option) the wait is a BLPOP; without it (Huey's default) it polls, 50 ms
    first, then ×1.15 per try. The consumer is the same for both (it always notifies)."""

    name = "huey"

    def __init__(self, url: str, notify_result: bool) -> None:
        from benches.apps import huey_results_app

        self.note = "notify_result=True" if notify_result else "default: polling get"
        self._huey, self._echo = huey_results_app.build(url, notify_result=notify_result)

    def worker_command(self, workers: int) -> list[str]:
        return [
            sys.executable, "-m", "huey.bin.huey_consumer", "benches.apps.huey_results_app.huey",
            "--workers", str(workers),
            "--worker-type", "process",
            "--quiet",
        ]  # fmt: skip

    def round_trip(self, value: int, timeout_s: float) -> object:
        return self._echo(value).get(blocking=True, timeout=timeout_s)

    def close(self) -> None:
        self._huey.storage.conn.close()
