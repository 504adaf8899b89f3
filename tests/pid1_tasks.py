"""Tasks for tests/integration/test_pid1.py, run by a supervisor that is PID 1 of a new PID
namespace (as in a container): a job that leaves an orphan behind, a snapshot of the
namespace's /proc, and a slow job to drain on SIGTERM.

Each appends a line to a file under $QRUN_TEST_OUT (the test's tmp_path).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import qrun

if os.environ.get("QRUN_TEST_IMPORT_DELAY_S"):  # an app that is slow to import (Django's setup, say)
    (Path(os.environ.get("QRUN_TEST_OUT", "/tmp")) / "importing.txt").write_text(f"{os.getpid()}\n")
    time.sleep(float(os.environ["QRUN_TEST_IMPORT_DELAY_S"]))

queue = qrun.Queue("pid1", retries=0)


def _append(name: str, line: str) -> None:
    with (Path(os.environ.get("QRUN_TEST_OUT", "/tmp")) / name).open("a") as out:
        out.write(line + "\n")


def _stat(pid: str) -> tuple[str, str, str] | None:
    """(command name, state, parent pid) of a process, from /proc/PID/stat; None once gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    _pid, _, rest = text.partition(" (")
    comm, _, fields = rest.rpartition(") ")
    state, ppid = fields.split()[:2]
    return comm, state, ppid


@queue.task
def leave_orphan(n: int) -> None:
    """What a job's shell script does with `cmd &`: the shell exits (and is waited for), its
    background `sleep` lives on, an orphan the kernel hands to the namespace's PID 1.
    Records the orphan's pid and its parent once the shell is gone."""
    shell = subprocess.run(
        ["sh", "-c", "sleep 0.3 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True, check=True, timeout=10
    )
    orphan = shell.stdout.strip()
    stat = _stat(orphan)
    _append("orphans.txt", f"{n} {orphan} {stat[2] if stat else 'gone'}")


@queue.task
def snapshot(n: int) -> None:
    """Every process of the namespace: 'pid comm state ppid', one line each, in a file of its own."""
    rows = []
    for entry in sorted(Path("/proc").iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1):
        if entry.name.isdigit() and (stat := _stat(entry.name)) is not None:
            rows.append(f"{entry.name} {stat[0]} {stat[1]} {stat[2]}")
    out = Path(os.environ.get("QRUN_TEST_OUT", "/tmp")) / f"snapshot-{n}.txt"
    out.with_suffix(".tmp").write_text("\n".join(rows) + "\n")
    os.replace(out.with_suffix(".tmp"), out)  # whole, or not there yet


@queue.task
def slow(seconds: float, n: int) -> None:
    """Marks its start, sleeps, marks its end: a job a graceful stop must let finish."""
    _append("slow_started.txt", str(n))
    time.sleep(seconds)
    _append("slow_finished.txt", str(n))
