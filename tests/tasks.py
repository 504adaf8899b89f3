"""Importable tasks for tests: forked and subprocess workers find them by module name.

The queue reads its URL from QRUN_URL at import, which the fixtures set. Tasks that leave
a trace append to files under $QRUN_TEST_OUT so a test can see what ran, and how often.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import qrun

queue = qrun.Queue("tests", retries=2, backoff_base=0.05, backoff_cap=0.2)


def _out(name: str) -> Path:
    return Path(os.environ.get("QRUN_TEST_OUT", "/tmp")) / name


@queue.task
def noop() -> None:
    """Does nothing: measures the machinery."""


@queue.task
def record(n: int) -> None:
    """Appends n to ran.txt (one line per run, so duplicates show)."""
    with _out("ran.txt").open("a") as out:
        out.write(f"{n}\n")


@queue.task
def sleep_then_record(seconds: float, n: int) -> None:
    """A slow job: marks its start, sleeps, then records n."""
    with _out("started.txt").open("a") as out:
        out.write(f"{n}\n")
    time.sleep(seconds)
    record(n)


@queue.task
def always_fails(message: str) -> None:
    raise RuntimeError(message)
