"""Tasks for the job-lifecycle tests (results, status, cancel, progress): queue "life",
whose tasks keep results unless they say otherwise."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import qrun

queue = qrun.Queue("life", retries=1, backoff_base=0.05, backoff_cap=0.1, result_ttl=60, max_result_bytes=10_000)


def _out(name: str) -> Path:
    return Path(os.environ.get("QRUN_TEST_OUT", "/tmp")) / name


def _mark(name: str, text: str) -> None:
    with _out(name).open("a") as out:
        out.write(f"{text}\n")


@queue.task
def echo(value: Any) -> Any:
    """Returns its argument: results of every JSON type."""
    return value


@queue.task(retries=0)
def boom(message: str) -> None:
    raise ValueError(message)


@queue.task
def unencodable() -> Any:
    return {1, 2}


@queue.task
def too_big() -> str:
    return "x" * 20_000


@queue.task(result_ttl=0)
def no_result(n: int) -> int:
    _mark("no_result.txt", str(n))
    return n


@queue.task
def mark(n: int) -> int:
    """Records that it ran (one line per run)."""
    _mark("ran.txt", str(n))
    return n


@queue.task(retries=0)
def sleeper(seconds: float, n: int) -> int:
    """Marks its start, sleeps (interruptible), marks its end."""
    _mark("started.txt", str(n))
    time.sleep(seconds)
    _mark("ran.txt", str(n))
    return n


@queue.task(retries=0)
def stubborn(seconds: float) -> None:
    """Ignores JobCancelled: its worker must be killed after the grace period."""
    _mark("started.txt", "stubborn")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(0.05)
        except qrun.JobCancelled:
            _mark("ignored.txt", "cancel")


@queue.task(retries=0)
def reports(steps: int, pause: float) -> str:
    """Reports progress each step (a heartbeat); records each run."""
    _mark("started.txt", "reports")
    job = qrun.current_job()
    assert job is not None
    for step in range(steps):
        job.progress((step + 1) / steps, note=f"step {step + 1}/{steps}", step=step + 1)
        time.sleep(pause)
    _mark("ran.txt", "reports")
    return "reported"


@queue.task
def tight_progress(calls: int) -> int:
    """Calls progress() in a tight loop: it must not flood the server."""
    job = qrun.current_job()
    assert job is not None
    written = sum(job.progress(i / calls) for i in range(calls))
    return written


#: A queue that publishes lifecycle events, for the cancelled event.
evented = qrun.Queue("life-events", events=True, result_ttl=60)


@evented.task
def evented_mark(n: int) -> int:
    return n


@queue.task(result_ttl=1)
def short_lived(n: int) -> int:
    """Its result expires a second after it settles."""
    return n


@queue.task(result_ttl=0)
def warm() -> None:
    """Does nothing, keeps nothing: grows a worker's prefetch."""


@queue.task(retries=3)
def retry_later(seconds: float) -> None:
    raise qrun.Retry(delay=seconds, reason="not yet")


@queue.task(result_ttl=0)
def cancel_then_signal(job_id: str) -> None:
    """Cancels another job of the queue, then does what a supervisor does: signals this
    worker (in-process tests: the test process) with CANCEL_SIGNAL."""
    import signal as signals

    from qrun.batch import CANCEL_SIGNAL

    _mark("started.txt", "canceller")
    queue.job(job_id).cancel()
    signals.raise_signal(CANCEL_SIGNAL)
    _ = signals  # the handler ran during raise_signal
    _mark("ran.txt", "canceller")


@queue.task(unique=True)
def unique_mark(n: int) -> int:
    return n


@queue.task(result_ttl=0, retries=0)
def untracked_boom() -> None:
    raise RuntimeError("nobody keeps this")
