"""The benchmark's qrun app: one no-op task and one latency probe, every default on."""

from __future__ import annotations

import qrun
from benches import marks

queue = qrun.Queue("bench")


@queue.task(name="bench.noop")
def noop() -> None:
    marks.mark()


@queue.task(name="bench.probe")
def probe(sent_at: float) -> None:
    marks.mark_latency(sent_at)
