"""Tasks for the dead-letter tests: a queue of its own with a unique task, importable by
`qrun dead requeue --app tests.dead_tasks:queue` in a subprocess."""

from __future__ import annotations

import os
from pathlib import Path

import qrun

queue = qrun.Queue("dead-ops", retries=0)


@queue.task(unique=True, unique_for=600)
def unique_mail(to: str) -> None:
    """Appends `to` to mailed.txt (one line per run, so a second run shows)."""
    with (Path(os.environ.get("QRUN_TEST_OUT", "/tmp")) / "mailed.txt").open("a") as out:
        out.write(f"{to}\n")
