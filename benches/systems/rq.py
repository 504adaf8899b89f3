"""RQ: ``queue.enqueue`` for one job, ``Queue.enqueue_many`` + ``Queue.prepare_data`` for bulk
(one pipeline), and ``rq worker-pool -n N`` for the workers.

The pool runs N default ``rq.Worker`` processes, each forking a work horse per job: RQ's
production default. Results are off the only way RQ allows: ``result_ttl=0`` (the result is
not kept). RQ has no retries unless a ``Retry`` is passed, so none. Workers log at WARNING
(RQ logs two INFO lines per job otherwise), like the Celery workers.
"""

from __future__ import annotations

import sys
from importlib.metadata import version

import redis
from rq import Queue

from benches.apps import rq_app

from .base import ResultClient, System


class RQ(System):
    name = "rq"
    has_bulk = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._connection = redis.Redis.from_url(url)
        self._queue = Queue(rq_app.QUEUE, connection=self._connection)

    def version(self) -> str:
        return version("rq")

    def enqueue_one(self) -> None:
        self._queue.enqueue(rq_app.noop, result_ttl=0)

    def enqueue_bulk(self, count: int) -> None:
        data = [Queue.prepare_data(rq_app.noop, result_ttl=0) for _ in range(count)]
        self._queue.enqueue_many(data)

    def enqueue_probe(self, sent_at: float) -> None:
        self._queue.enqueue(rq_app.probe, args=(sent_at,), result_ttl=0)

    def worker_command(self, workers: int) -> list[str]:
        return [
            sys.executable, "-m", "rq.cli", "worker-pool",
            "--num-workers", str(workers),
            "--url", self.url,
            "--logging-level", "WARNING",
            rq_app.QUEUE,
        ]  # fmt: skip

    def result_clients(self) -> list[ResultClient]:
        return [RQResults(self.url)]

    def close(self) -> None:
        self._connection.close()


class RQResults(ResultClient):
    """RQ with results: ``queue.enqueue(echo, n)`` at RQ's default ``result_ttl`` (500 s) on its
    own queue, then ``job.latest_result(timeout=...)``, RQ 2+'s blocking wait (an XREAD BLOCK
    on the job's result stream). The same ``rq worker-pool``, serving that queue."""

    name = "rq"

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection = redis.Redis.from_url(url)
        self._queue = Queue(rq_app.RESULTS_QUEUE, connection=self._connection)

    def worker_command(self, workers: int) -> list[str]:
        return [
            sys.executable, "-m", "rq.cli", "worker-pool",
            "--num-workers", str(workers),
            "--url", self.url,
            "--logging-level", "WARNING",
            rq_app.RESULTS_QUEUE,
        ]  # fmt: skip

    def round_trip(self, value: int, timeout_s: float) -> object:
        from rq.results import Result

        job = self._queue.enqueue(rq_app.echo, value)
        result = job.latest_result(timeout=max(1, int(timeout_s)))  # whole seconds (XREAD BLOCK ms)
        if result is None:
            raise TimeoutError(f"rq: no result for job {job.id} within {timeout_s}s")
        if result.type != Result.Type.SUCCESSFUL:
            raise RuntimeError(f"rq: job {job.id} ended {result.type}: {result.exc_string}")
        return result.return_value

    def close(self) -> None:
        self._connection.close()
