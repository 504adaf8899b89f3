"""RQ's side of the benchmark: plain module-level functions, which RQ imports by dotted path.

The queue and its connection are made by benches.systems.rq (enqueue side) and by
``rq worker-pool --url $BENCH_URL`` (worker side), so nothing here reads the environment.
"""

from __future__ import annotations

from benches import marks

QUEUE = "bench"


def noop() -> None:
    marks.mark()


def probe(sent_at: float) -> None:
    marks.mark_latency(sent_at)


RESULTS_QUEUE = "bench-results"


def echo(value: int) -> int:
    """The result round trip's job (enqueued with RQ's default result_ttl on RESULTS_QUEUE)."""
    return value
