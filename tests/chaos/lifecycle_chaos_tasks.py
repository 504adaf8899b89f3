"""Tasks for the lifecycle chaos tests: a queue with a short visibility timeout, so a job
whose worker died (or stopped heartbeating) is claimed back within seconds."""

from __future__ import annotations

import os
import time
from pathlib import Path

import qrun

queue = qrun.Queue("life-chaos", retries=0, visibility_timeout=2, result_ttl=120)


def _mark(name: str, text: str) -> None:
    with (Path(os.environ.get("QRUN_TEST_OUT", "/tmp")) / name).open("a") as out:
        out.write(f"{text}\n")


@queue.task
def mark(n: int) -> int:
    _mark("ran.txt", str(n))
    return n


@queue.task
def noop() -> None:
    """Warms a worker's prefetch up."""


@queue.task
def hold(seconds: float) -> None:
    """Marks its start, then keeps its worker busy."""
    _mark("held.txt", str(os.getpid()))
    time.sleep(seconds)


@queue.task
def heartbeat(seconds: int, report: bool) -> str:
    """Runs ``seconds`` (longer than the visibility timeout), reporting progress each second if
    ``report``; records each run."""
    _mark("started.txt", str(seconds))
    job = qrun.current_job()
    assert job is not None
    for second in range(seconds):
        if report:
            job.progress((second + 1) / seconds, note=f"{second + 1}s")
        time.sleep(1)
    _mark("ran.txt", "heartbeat")
    return "done"
