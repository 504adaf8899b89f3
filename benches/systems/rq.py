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

from .base import System


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

    def close(self) -> None:
        self._connection.close()
