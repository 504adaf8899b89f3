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


# -- the supervisor's limits, recycling and signals (tests/integration/test_supervisor.py) --

limits_queue = qrun.Queue("limits", retries=1, backoff_base=0.05, backoff_cap=0.1)


def _append_line(name: str, line: str) -> None:
    """One O_APPEND write: whole lines even from processes killed mid-job."""
    fd = os.open(_out(name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


@limits_queue.task(soft_time_limit=0.3, retries=0)
def soft_limited(seconds: float) -> None:
    """Sleeps past its soft limit; records that it caught TimeLimitExceeded, then lets it fail the job."""
    try:
        time.sleep(seconds)
    except qrun.TimeLimitExceeded as error:
        _append_line("soft_caught.txt", f"{type(error).__name__}: {error}")
        raise
    _append_line("soft_finished.txt", "slept through")


@limits_queue.task(time_limit=0.5)
def hard_limited(seconds: float) -> None:
    """Sleeps past its hard limit (no soft one): only the supervisor's kill ends it."""
    job = qrun.current_job()
    _append_line("hard_started.txt", f"{job.attempt if job else 0} {os.getpid()}")
    time.sleep(seconds)
    _append_line("hard_finished.txt", str(os.getpid()))


@limits_queue.task
def whoami(n: int, seconds: float = 0.0) -> None:
    """Records n and the pid of the worker that ran it (after an optional pause)."""
    if seconds:
        _append_line("whoami_started.txt", f"{n} {os.getpid()}")
        time.sleep(seconds)
    _append_line("whoami.txt", f"{n} {os.getpid()}")


#: Jobs hidden for 1 s only, so a visibility problem shows within a test.
short_visibility_queue = qrun.Queue("short-visibility", visibility_timeout=1.0, retries=0)


@short_visibility_queue.task
def visible_mark(n: int, seconds: float = 0.0) -> None:
    """Records n (one line per run, so a second run shows) after an optional pause."""
    if seconds:
        time.sleep(seconds)
    _append_line("visible.txt", str(n))


_hoard: list[bytes] = []


@limits_queue.task
def hoard_memory(mib: int) -> None:
    """Keeps ``mib`` MiB of touched memory for the rest of the worker's life."""
    _hoard.append(b"\x01" * (mib << 20))
    _append_line("hoarded.txt", str(os.getpid()))


@limits_queue.task
def run_child(seconds: float) -> None:
    """Runs a child program for ``seconds`` and records how it ended (0: it was left to finish)."""
    import subprocess

    _append_line("child_started.txt", str(os.getpid()))
    finished = subprocess.run(["sleep", str(seconds)], check=False)
    _append_line("child_exit.txt", str(finished.returncode))
