"""The benchmark's qrun app with results on: its own queue (``bench-results``), so the
results-off app (benches.apps.qrun_app) and its rows do not change.

``result_ttl`` is set on the queue, so every task keeps its return value (the way the docs
show results: ``Queue(..., result_ttl=SECONDS)``); every other setting is at its default.
``noop`` is the end-to-end job (the mark, returns None: ``null`` is kept); ``echo(n)`` returns
its argument, for the result round trip. The queue's URL is ``$QRUN_URL`` in the workers;
the enqueue side (benches.systems.qrun) calls ``build(url)`` with its own.
"""

from __future__ import annotations

import qrun
from benches import marks

QUEUE = "bench-results"
RESULT_TTL_S = 600.0


def build(url: str | None):  # -> (qrun.Queue, noop task, echo task)
    queue = qrun.Queue(QUEUE, url, result_ttl=RESULT_TTL_S)

    @queue.task(name="bench.noop")
    def noop() -> None:
        marks.mark()

    @queue.task(name="bench.echo")
    def echo(value: int) -> int:
        return value

    return queue, noop, echo


queue, noop, echo = build(None)
