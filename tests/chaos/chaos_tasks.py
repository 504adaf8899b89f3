"""Tasks for the chaos tier: each run leaves one line in a file under $QRUN_TEST_OUT, so a
test counts what ran, and how often, across processes that were killed mid-job.

The queue hides a delivered job for 2 s (not 30), so the claimer's work shows within a
test's time; everything else is qrun's defaults.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import qrun

queue = qrun.Queue("chaos", visibility_timeout=2.0, max_deliveries=5, retries=0)

_files: dict[str, int] = {}


def _append(name: str, line: str) -> None:
    """One O_APPEND write per line: atomic across processes, and no buffer a kill could lose."""
    fd = _files.get(name)
    if fd is None:
        path = Path(os.environ.get("QRUN_TEST_OUT", "/tmp")) / name
        fd = _files[name] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"{line}\n".encode())


@queue.task
def mark(n: int, pause_s: float = 0.0) -> None:
    """A short job: optionally pause, then record n as done."""
    if pause_s:
        time.sleep(pause_s)
    _append("done.txt", str(n))


@queue.task
def kill_own_worker() -> None:
    """Records that it was delivered, then SIGKILLs the worker running it, every time."""
    _append("kill_deliveries.txt", str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)


@queue.task
def long_job(n: int, seconds: float) -> None:
    """Marks its start, runs for ``seconds``, marks its end."""
    _append("long_started.txt", f"{n} {os.getpid()}")
    time.sleep(seconds)
    _append("long_done.txt", f"{n} {os.getpid()}")


#: A queue whose jobs are dead-lettered after 3 deliveries, for a poison job among innocent ones.
poison_queue = qrun.Queue("poison", visibility_timeout=2.0, max_deliveries=3, retries=0)


@poison_queue.task
def innocent(n: int) -> None:
    """A no-op job: records that it ran, and in which worker."""
    _append("innocent.txt", f"{n} {os.getpid()} {time.time():.6f}")


@poison_queue.task
def poison() -> None:
    """SIGKILLs the worker running it, every time (an OOM, a segfault in C code)."""
    _append("poison_deliveries.txt", f"{os.getpid()} {time.time():.6f}")
    os.kill(os.getpid(), signal.SIGKILL)
