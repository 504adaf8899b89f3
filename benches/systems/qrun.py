"""qrun, exactly as a user runs it: `qrun --workers N app:queue`, every default on."""

from __future__ import annotations

import sys

import qrun
from qrun import codec

from .base import ResultClient, System


class Qrun(System):
    name = "qrun"
    has_bulk = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        from benches.apps import qrun_app

        self.queue = qrun.Queue("bench", url)
        self.noop = qrun_app.noop.name
        self.probe = qrun_app.probe.name

    def version(self) -> str:
        return f"{qrun.__version__} ({'Rust' if codec.NATIVE else 'reference'} codec)"

    def enqueue_one(self) -> None:
        self.queue.enqueue(self.noop)

    def enqueue_bulk(self, count: int) -> None:
        self.queue.enqueue_many(self.noop, [()] * count)

    def enqueue_probe(self, sent_at: float) -> None:
        self.queue.enqueue(self.probe, sent_at)

    def worker_command(self, workers: int) -> list[str]:
        return [sys.executable, "-m", "qrun", "--log-level", "WARNING", "--workers", str(workers), "benches.apps.qrun_app:queue"]

    def result_clients(self) -> list[ResultClient]:
        return [QrunResults(self.url)]

    def close(self) -> None:
        self.queue.close()


class QrunResults(ResultClient):
    """qrun with results on (benches.apps.qrun_results_app: ``Queue(..., result_ttl=600)``):
    ``job = echo.enqueue(n); job.result(timeout=...)``, and the no-op job for end to end."""

    name = "qrun"

    def __init__(self, url: str) -> None:
        from benches.apps import qrun_results_app

        self.queue, self.noop, self.echo = qrun_results_app.build(url)

    def worker_command(self, workers: int) -> list[str]:
        return [sys.executable, "-m", "qrun", "--log-level", "WARNING", "--workers", str(workers),
                "benches.apps.qrun_results_app:queue"]

    def round_trip(self, value: int, timeout_s: float) -> object:
        job = self.echo.enqueue(value)
        return job.result(timeout=timeout_s)

    def fill(self, count: int) -> None:
        """``count`` no-op jobs of the result-keeping queue, as the results-off fill does."""
        self.queue.enqueue_many(self.noop, [()] * count)

    def close(self) -> None:
        self.queue.close()
