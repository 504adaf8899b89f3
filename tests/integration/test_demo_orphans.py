"""Issue 8, defect 5: nothing ``qrun demo`` starts outlives it, whatever ends it.

Each test runs a real ``python -m qrun demo`` that starts its own embedded valkey-server
(QRUN_URL points at a closed loopback port), forks a supervisor and two workers, and is
then cut off: its stdout reader goes away (``| head -2``), or it is SIGKILLed, SIGTERMed or
interrupted. Every process it started carries a marker in its environment (inherited
through fork and exec), so even one reparented away from the demo is found; the test fails
if any is still there ~15 s later, and kills it by pid.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from qrun.embedded import free_port

MARK = "QRUN_TEST_DEMO_RUN"
JOBS = 200_000  # long enough (seconds) for the workers to be busy when the demo is cut off
SETTLE_S = 15.0  # how long everything the demo started gets to go away
START_TIMEOUT_S = 120.0


class Demo:
    """A ``qrun demo`` subprocess and every process it started."""

    def __init__(self, *, stderr: int) -> None:
        self.mark = uuid.uuid4().hex
        env = {**os.environ, "QRUN_URL": f"redis://127.0.0.1:{free_port()}/0", MARK: self.mark}
        env.pop("PYTHONWARNINGS", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "qrun", "demo", "--jobs", str(JOBS), "--workers", "2"],
            stdout=subprocess.PIPE, stderr=stderr, env=env,
        )
        self.seen: dict[int, str] = {}  # every process of this run ever found: pid -> name
        self._known: dict[int, psutil.Process] = {}
        self.stderr = ""
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        if stderr == subprocess.PIPE:
            self._drain.start()

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr += line.decode(errors="replace")

    def descendants(self) -> list[psutil.Process]:
        """Live (not zombie) processes of this run other than the demo itself: its children
        while it lives, and anything carrying the marker (valkey-server overwrites its
        environment with its process title: it is found as a child of the demo)."""
        try:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self._remember(child)
        except psutil.Error:
            pass
        for proc in psutil.process_iter():
            if proc.pid in (self.process.pid, os.getpid()) or proc.pid in self._known:
                continue
            try:
                if proc.environ().get(MARK) == self.mark:
                    self._remember(proc)
            except psutil.Error:
                continue
        alive = []
        for proc in self._known.values():
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except psutil.Error:
                continue
        return alive

    def _remember(self, proc: psutil.Process) -> None:
        if proc.pid not in self._known:
            try:
                self.seen[proc.pid] = proc.name()
            except psutil.Error:
                return
            self._known[proc.pid] = proc  # is_running() also checks it is the same process

    def names(self, procs: list[psutil.Process]) -> list[tuple[int, str]]:
        return [(proc.pid, self.seen.get(proc.pid, "?")) for proc in procs]

    def wait_for_workers(self) -> None:
        """Until the server, the supervisor and both workers run (the jobs still going)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            names = [name for _pid, name in self.names(self.descendants())]
            if sum("valkey" not in name for name in names) >= 3 and any("valkey" in name for name in names):
                return
            assert self.process.poll() is None, f"the demo ended before its workers ran: {self.stderr}"
            time.sleep(0.05)
        pytest.fail(f"no supervisor and 2 workers after {START_TIMEOUT_S}s: {self.seen}")

    def read_lines(self, count: int) -> list[bytes]:
        """``count`` lines of its stdout, within START_TIMEOUT_S (read on a thread: bounded)."""
        lines: list[bytes] = []
        done = threading.Event()

        def read() -> None:
            assert self.process.stdout is not None
            for _ in range(count):
                lines.append(self.process.stdout.readline())
            done.set()

        threading.Thread(target=read, daemon=True).start()
        assert done.wait(START_TIMEOUT_S), f"fewer than {count} lines in {START_TIMEOUT_S}s: {lines}"
        return lines

    def survivors_after(self, timeout_s: float) -> list[psutil.Process]:
        """What of this run is still alive once the demo ended and ``timeout_s`` passed."""
        deadline = time.monotonic() + timeout_s
        self.process.wait(timeout=timeout_s)
        while True:
            alive = self.descendants()
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.1)

    def full_stderr(self) -> str:
        """Its stderr to the end (EOF once the demo and every process sharing it ended)."""
        self._drain.join(timeout=5)
        return self.stderr

    def data_dir(self) -> Path | None:
        found = re.search(r"data in (\S+?), removed on exit", self.stderr)
        return Path(found.group(1)) if found else None

    def kill_everything(self) -> list[str]:
        """Kill (by pid) whatever of this run is left; return what that was."""
        left = []
        for proc in self.descendants():
            left.append(f"{proc.pid} {self.seen.get(proc.pid, '?')}")
            try:
                proc.kill()
            except psutil.Error:
                pass
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if self._drain.is_alive():
            self._drain.join(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass
        return left


@pytest.fixture
def demos() -> Iterator[list[Demo]]:
    started: list[Demo] = []
    yield started
    leftovers = [line for demo in started for line in demo.kill_everything()]
    assert not leftovers, f"killed processes the demo left behind: {leftovers}"


def _demo(demos: list[Demo], *, stderr: int = subprocess.PIPE) -> Demo:
    demo = Demo(stderr=stderr)
    demos.append(demo)
    return demo


def test_head_2_on_stdout_leaves_nothing_running_and_no_traceback(demos: list[Demo]) -> None:
    """``qrun demo | head -2``: the reader takes two lines and goes away."""
    demo = _demo(demos)
    lines = demo.read_lines(2)
    assert lines[0].startswith(b"enqueue_many:"), lines
    assert demo.seen or demo.descendants(), "the demo started nothing"
    assert demo.process.stdout is not None
    demo.process.stdout.close()

    alive = demo.survivors_after(SETTLE_S)

    assert not alive, f"still running {SETTLE_S}s after the reader left: {demo.names(alive)}"
    assert demo.process.returncode in (0, 1)  # 1 if the pipe broke before its last line, else 0
    stderr = demo.full_stderr()
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr


def test_a_reader_leaving_mid_run_stops_the_supervisor_workers_and_server(demos: list[Demo]) -> None:
    """``qrun demo 2>&1 | head -2``: the pipe breaks as the supervisor is forked (the demo's
    next write, its progress label), so the demo dies mid-run and must take it all along."""
    demo = _demo(demos, stderr=subprocess.STDOUT)
    lines = demo.read_lines(2)  # the "started an embedded valkey-server" log line, then enqueue_many
    assert lines[1].startswith(b"enqueue_many:"), lines
    assert demo.process.stdout is not None
    demo.process.stdout.close()

    alive = demo.survivors_after(SETTLE_S)

    assert not alive, f"still running {SETTLE_S}s after the reader left: {demo.names(alive)}"
    assert demo.process.returncode == 1  # a broken pipe is an error, reported by the status only


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_demo_killed_mid_run_leaves_nothing_running(demos: list[Demo], signum: signal.Signals) -> None:
    demo = _demo(demos)
    demo.wait_for_workers()
    before = dict(demo.seen)

    demo.process.send_signal(signum)  # the demo process only, not its group
    alive = demo.survivors_after(SETTLE_S)

    assert not alive, (
        f"still running {SETTLE_S}s after {signum.name} of the demo: "
        f"{demo.names(alive)} (it had started {before})"
    )
    stderr = demo.full_stderr()
    data_dir = demo.data_dir()
    assert data_dir is not None, stderr
    deadline = time.monotonic() + 5
    while data_dir.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not data_dir.exists(), f"the embedded server's data was left in {data_dir}"
    if signum != signal.SIGKILL:  # a stop the demo sees: it stops the supervisor, then the server
        assert demo.process.returncode != 0
        assert "Traceback" not in stderr, stderr
