"""A queue whose one task does nothing at all, for `python -m benches.ab` (no marks: the
run is timed from outside, until the burst supervisor exits)."""

from __future__ import annotations

import qrun

queue = qrun.Queue("bench")


@queue.task(name="bench.nothing")
def nothing() -> None:
    pass
