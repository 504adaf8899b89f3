"""Dramatiq: ``actor.send()`` per job (Dramatiq has no bulk enqueue), and the ``dramatiq`` CLI
with ``--processes N --threads 1`` for the workers.

Dramatiq's default is 8 threads per process; one thread per process makes ``workers`` mean N
jobs at a time, as it does for every other system here. Default middleware (Retries on);
no Results middleware, so no result backend.
"""

from __future__ import annotations

import sys
from importlib.metadata import version

from benches.apps import dramatiq_app

from .base import ResultClient, System


class Dramatiq(System):
    name = "dramatiq"
    has_bulk = False

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._broker, self._noop, self._probe = dramatiq_app.build(url)

    def version(self) -> str:
        return version("dramatiq")

    def enqueue_one(self) -> None:
        self._noop.send()

    def enqueue_probe(self, sent_at: float) -> None:
        self._probe.send(sent_at)

    def worker_command(self, workers: int) -> list[str]:
        return [
            sys.executable, "-m", "dramatiq", "benches.apps.dramatiq_app",
            "--processes", str(workers),
            "--threads", "1",
            "--queues", dramatiq_app.QUEUE,
        ]  # fmt: skip

    def result_clients(self) -> list[ResultClient]:
        return [DramatiqResults(self.url)]

    def close(self) -> None:
        self._broker.close()


class DramatiqResults(ResultClient):
    """Dramatiq with results (benches.apps.dramatiq_results_app: the Results middleware on a
    RedisBackend): ``message = echo.send(n); message.get_result(backend=..., block=True,
    timeout=ms)`` (a BRPOPLPUSH on the message's result key). The same worker command."""

    name = "dramatiq"

    def __init__(self, url: str) -> None:
        from benches.apps import dramatiq_results_app

        self._broker, self._backend, self._echo = dramatiq_results_app.build(url)

    def worker_command(self, workers: int) -> list[str]:
        from benches.apps import dramatiq_results_app

        return [
            sys.executable, "-m", "dramatiq", "benches.apps.dramatiq_results_app",
            "--processes", str(workers),
            "--threads", "1",
            "--queues", dramatiq_results_app.QUEUE,
        ]  # fmt: skip

    def round_trip(self, value: int, timeout_s: float) -> object:
        message = self._echo.send(value)
        return message.get_result(backend=self._backend, block=True, timeout=int(timeout_s * 1000))

    def close(self) -> None:
        self._broker.close()
