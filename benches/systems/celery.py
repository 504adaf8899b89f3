"""Celery: ``task.delay()`` per job (Celery has no one-round-trip bulk enqueue), and a prefork
worker with ``--concurrency N`` (Celery's production default pool).

Broker only, no result backend, ``task_ignore_result=True``; everything else at its defaults.
``--without-gossip --without-mingle --without-heartbeat`` are the usual production hardening
flags (no worker-to-worker chatter); the worker logs at WARNING.
"""

from __future__ import annotations

import sys
from importlib.metadata import version

from benches.apps import celery_app

from .base import ResultClient, System


class Celery(System):
    name = "celery"
    has_bulk = False

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._app = celery_app.build(url)
        self._noop = self._app.tasks["bench.noop"]
        self._probe = self._app.tasks["bench.probe"]

    def version(self) -> str:
        return version("celery")

    def enqueue_one(self) -> None:
        self._noop.delay()

    def enqueue_probe(self, sent_at: float) -> None:
        self._probe.delay(sent_at)

    def worker_command(self, workers: int) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "benches.apps.celery_app", "worker",
            "--pool", "prefork",
            "--concurrency", str(workers),
            "--queues", celery_app.QUEUE,
            "--loglevel", "WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip

    def result_clients(self) -> list[ResultClient]:
        return [CeleryResults(self.url)]

    def close(self) -> None:
        self._app.close()


class CeleryResults(ResultClient):
    """Celery with results (benches.apps.celery_results_app: the redis result backend):
    ``echo.delay(n).get(timeout=...)`` (the redis backend waits on pub/sub, no polling).
    The same prefork worker, serving the results queue."""

    name = "celery"

    def __init__(self, url: str) -> None:
        from benches.apps import celery_results_app

        self._app = celery_results_app.build(url)
        self._echo = self._app.tasks["bench.echo"]

    def worker_command(self, workers: int) -> list[str]:
        from benches.apps import celery_results_app

        return [
            sys.executable, "-m", "celery", "-A", "benches.apps.celery_results_app", "worker",
            "--pool", "prefork",
            "--concurrency", str(workers),
            "--queues", celery_results_app.QUEUE,
            "--loglevel", "WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip

    def round_trip(self, value: int, timeout_s: float) -> object:
        return self._echo.delay(value).get(timeout=timeout_s)

    def close(self) -> None:
        self._app.close()
