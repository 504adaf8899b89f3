"""Celery with results, as its docs set them up for Redis: the redis result backend
(``backend=<redis url>``), results kept (``task_ignore_result=False``, the default); everything
else at Celery's defaults. Its own queue (``bench-results``) and module, so the results-off app
(benches.apps.celery_app) is unchanged.

``build(url)`` makes an app with the task registered; the module-level ``app`` is what
``celery -A benches.apps.celery_results_app worker`` runs.
"""

from __future__ import annotations

import os

from celery import Celery

QUEUE = "bench-results"


def build(url: str) -> Celery:
    app = Celery("bench-results", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_ignore_result=False,
        task_default_queue=QUEUE,
        broker_connection_retry_on_startup=True,  # silences a deprecation warning; the default behaviour
    )

    @app.task(name="bench.echo", shared=False)
    def echo(value: int) -> int:
        return value

    return app


app = build(os.environ.get("BENCH_URL", "redis://127.0.0.1:6379/0"))
