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

from .base import System


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

    def close(self) -> None:
        self._broker.close()
