"""Tasks for the queue-admin tests: a queue whose code says one thing and the server another."""

from __future__ import annotations

import os
from pathlib import Path

import qrun

queue = qrun.Queue("admin", retries=0, visibility_timeout=30)


@queue.task
def note(n: int) -> None:
    with (Path(os.environ.get("QRUN_TEST_OUT", "/tmp")) / "noted.txt").open("a") as out:
        out.write(f"{n}\n")


@queue.task
def fails(n: int) -> None:
    with (Path(os.environ.get("QRUN_TEST_OUT", "/tmp")) / "fails.txt").open("a") as out:
        out.write(f"{n}\n")
    raise RuntimeError(f"fails {n}")
