"""Plumbing shared by every scenario: the server, mark folders, worker processes, statistics.

Every loop here is bounded by a count and a deadline; every process is started by us and
stopped by its process group id.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis


ROOT = Path(__file__).resolve().parent.parent


def flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    client.flushall()
    client.script_flush()
    client.close()


@contextmanager
def mark_dir() -> Iterator[str]:
    """A fresh tmpfs folder (when /dev/shm exists) for one measurement's marks."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    path = tempfile.mkdtemp(prefix="qrun-bench-", dir=base)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def worker_env(url: str, directory: str) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "BENCH_MARK_DIR": directory, "BENCH_URL": url, "QRUN_URL": url}


class Workers:
    """A worker command running in its own process group, stopped by that group's id."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: str) -> None:
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.log_path = log_path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, grace_s: float = 10.0) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        try:  # anything the system left in its group (e.g. forked children)
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()

    def tail(self, lines: int = 15) -> str:
        return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])


def wait_until(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return False


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Figure:
    """One scenario × system: a value per repetition, summarised by its median."""

    scenario: str
    system: str
    unit: str
    values: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def spread(self) -> str:
        if len(self.values) < 2:
            return ""
        return f"{fmt(min(self.values))}–{fmt(max(self.values))}"


def fmt(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def python_and_machine() -> str:
    cpu = psutil.cpu_count(logical=True)
    memory_gib = psutil.virtual_memory().total / 2**30
    return f"Python {sys.version.split()[0]}, {cpu} CPUs, {memory_gib:.0f} GiB RAM, {os.uname().sysname} {os.uname().release}"
