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

from .base import System


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

    def close(self) -> None:
        self._huey.storage.conn.close()
