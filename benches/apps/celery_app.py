"""Celery's side of the benchmark: broker $BENCH_URL, no result backend, results ignored.

Everything else is at Celery's defaults. ``build(url)`` makes an app with both tasks
registered; the module-level ``app`` is what ``celery -A benches.apps.celery_app worker`` runs,
and the enqueue side (benches.systems.celery) builds its own with its URL. The tasks have
explicit names, so both apps agree on them.
"""

from __future__ import annotations

import os

from celery import Celery

from benches import marks

QUEUE = "bench"


def build(url: str) -> Celery:
    app = Celery("bench", broker=url, set_as_current=False)
    app.conf.update(
        result_backend=None,
        task_ignore_result=True,
        task_default_queue=QUEUE,
        broker_connection_retry_on_startup=True,  # silences a deprecation warning; the default behaviour
    )

    @app.task(name="bench.noop", shared=False)
    def noop() -> None:
        marks.mark()

    @app.task(name="bench.probe", shared=False)
    def probe(sent_at: float) -> None:
        marks.mark_latency(sent_at)

    return app


app = build(os.environ.get("BENCH_URL", "redis://127.0.0.1:6379/0"))
