"""Supervisors as real `qrun run` subprocesses, for the integration and chaos tiers.

Each runs in a session of its own. When a test ends, each supervisor is frozen (so no fork
slips past), its workers (in process groups of their own) are collected, and all are killed
by pid through psutil, which checks the pid still names the same process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import psutil
import qrun

ROOT = Path(__file__).resolve().parents[1]


def lines(path: Path) -> list[str]:
    """The lines a task wrote to ``path`` (none if it was never written)."""
    return path.read_text().splitlines() if path.exists() else []


def wait_until(
    condition: Callable[[], bool], timeout_s: float, what: str, log: Callable[[], str] = str, poll_s: float = 0.05
) -> float:
    """Poll ``condition`` until true; returns the seconds it took, fails the test on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}\n{log()}")


class Supervisors:
    """`qrun run` subprocesses of one test, their logs, and every worker seen under them."""

    def __init__(self, env: dict[str, str], out: Path, target: str) -> None:
        self.env = env
        self.out = out
        self.target = target
        self.started: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []
        self._workers_seen: dict[int, psutil.Process] = {}

    def start(
        self, *args: str, target: str | None = None, cwd: Path = ROOT, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.out / f"supervisor-{len(self.started)}.log").open("wb")
        self._logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "qrun", "run", *args, target or self.target],
            cwd=cwd, env=env or self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.started.append(process)
        return process

    def log(self, index: int = 0) -> str:
        return (self.out / f"supervisor-{index}.log").read_text()

    def workers(self, process: subprocess.Popen[bytes]) -> list[psutil.Process]:
        """The supervisor's live (not zombie) worker processes, remembered for cleanup."""
        try:
            children = psutil.Process(process.pid).children()
        except psutil.NoSuchProcess:
            return []
        alive = []
        for child in children:
            self._workers_seen.setdefault(child.pid, child)
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    alive.append(child)
            except psutil.NoSuchProcess:
                pass
        return alive

    def worker_pids(self, process: subprocess.Popen[bytes]) -> set[int]:
        return {child.pid for child in self.workers(process)}

    def wait_for_workers(
        self, process: subprocess.Popen[bytes], condition: Callable[[set[int]], bool], timeout_s: float, what: str
    ) -> set[int]:
        """Poll the supervisor's workers until ``condition(pids)``; returns those pids."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the supervisor exited ({process.returncode}):\n{self.log()}"
            pids = self.worker_pids(process)
            if condition(pids):
                return pids
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; workers {pids}\n{self.log()}")

    def wait_for_count(self, process: subprocess.Popen[bytes], count: int, timeout_s: float = 20) -> list[psutil.Process]:
        """Wait until the supervisor runs at least ``count`` workers; returns them."""
        self.wait_for_workers(process, lambda pids: len(pids) >= count, timeout_s, f"{count} workers")
        return self.workers(process)

    def wait_exit(self, process: subprocess.Popen[bytes], timeout_s: float) -> int:
        """Wait for a (burst) supervisor to exit, remembering its workers on the way."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.workers(process)
            if process.poll() is not None:
                return process.returncode
            time.sleep(0.05)
        raise AssertionError(f"supervisor {process.pid} still running after {timeout_s}s\n{self.log()}")

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                try:
                    os.kill(process.pid, signal.SIGSTOP)  # no fork can slip past the snapshot below
                except ProcessLookupError:
                    pass
                self.workers(process)
                process.kill()
            process.wait(timeout=10)
        for worker in self._workers_seen.values():
            try:
                worker.kill()  # psutil checks the pid still names the same process
            except psutil.NoSuchProcess:
                pass
        for log in self._logs:
            log.close()


@contextmanager
def supervisors_of(queue: qrun.Queue, env: dict[str, str], out: Path, target: str) -> Iterator[Supervisors]:
    """Supervisors of one test serving ``target``; the test-side queue's connection is closed
    before and after (a fixture body: ``with supervisors_of(...) as runs: yield runs``)."""
    queue.close()
    started = Supervisors(env, out, target)
    try:
        yield started
    finally:
        started.stop_all()
        queue.close()


def run_cli(env: dict[str, str], *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """``qrun ARGS`` as a user types it (no terminal on stdin), its output captured as text."""
    return subprocess.run([sys.executable, "-m", "qrun", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
