"""Fixtures of the chaos tier: supervisors as real subprocesses, and a report of what each
test measured (jobs, kills, lost, duplicates, seconds), printed at the end of the run.

Every process a test starts is stopped by pid when it ends, the supervisor's workers too
(they run in process groups of their own).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import psutil
import pytest

from tests.chaos import chaos_tasks


class Supervisors:
    """Starts `qrun run` subprocesses and cleans up after them."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []
        self._workers_seen: set[int] = set()

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"supervisor-{len(self.started)}.log").open("wb")
        self._logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "qrun", "run", *args, "tests.chaos.chaos_tasks:queue"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.started.append(process)
        return process

    def workers(self, process: subprocess.Popen[bytes]) -> list[psutil.Process]:
        """The supervisor's live worker processes (remembered for cleanup)."""
        try:
            children = psutil.Process(process.pid).children()
        except psutil.NoSuchProcess:
            return []
        self._workers_seen.update(child.pid for child in children)
        return children

    def wait_for_workers(self, process: subprocess.Popen[bytes], count: int, timeout_s: float = 20) -> list[psutil.Process]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            children = self.workers(process)
            if len(children) >= count:
                return children
            time.sleep(0.05)
        raise AssertionError(f"supervisor {process.pid} did not start {count} workers in {timeout_s}s")

    def stop_all(self) -> None:
        for process in self.started:
            self.workers(process)
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        for pid in self._workers_seen:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for log in self._logs:
            log.close()

    def log(self, index: int = 0) -> str:
        """What supervisor ``index`` logged so far."""
        return (self.log_dir / f"supervisor-{index}.log").read_text()


@pytest.fixture
def supervisors(subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Supervisors]:
    chaos_tasks.queue.close()
    started = Supervisors(subprocess_env, tmp_path)
    yield started
    started.stop_all()
    chaos_tasks.queue.close()


@pytest.fixture
def lines(tmp_path: Path) -> Callable[[str], list[str]]:
    """The lines the chaos tasks wrote to a file under the test's output directory."""

    def read(name: str) -> list[str]:
        path = tmp_path / name
        return path.read_text().split("\n")[:-1] if path.exists() else []

    return read


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.05) -> float:
    """Poll ``condition`` until true; returns the seconds it took, fails the test on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record a test's figures for the summary table printed at the end of the run."""

    def add(**figures: object) -> None:
        rows = request.config.stash.setdefault(CHAOS_ROWS, [])
        rows.append((request.node.name, figures))

    return add


CHAOS_ROWS = pytest.StashKey[list]()
