"""qrun.parent_watch: a child learns of its parent's death, even a SIGKILL.

Each test runs a small "parent" Python program that starts a child (forked, or an exec'd
``sleep``), prints the child's pid, and then either waits to be SIGKILLed or exits at once.
The test checks that the child is gone within a few seconds; a child still alive at the end
is killed by pid and fails the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import psutil
import pytest

from qrun import parent_watch

GONE_WITHIN_S = 5.0  # the fallback thread polls every 0.5 s

FORKED_CHILD = """
    import os, signal, sys, time
    from qrun import parent_watch
    if {fallback}:
        parent_watch._prctl = None  # what a platform without prctl gets
    parent_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        if {wait_for_orphaning}:  # the parent dies before the child asks: the race die_with_parent closes
            deadline = time.monotonic() + 10
            while os.getppid() == parent_pid and time.monotonic() < deadline:
                time.sleep(0.01)
        parent_watch.die_with_parent(parent_pid, signal.SIGTERM)
        os.write(1, b"armed\\n")  # one write each: the two lines cannot interleave
        time.sleep(60)
        os._exit(0)
    os.write(1, f"child {{pid}}\\n".encode())
    if {exit_at_once}:
        os._exit(0)
    time.sleep(60)
"""

EXECED_CHILD = """
    import subprocess, time
    from qrun.parent_watch import pdeathsig_preexec
    child = subprocess.Popen(["sleep", "60"], preexec_fn=pdeathsig_preexec())
    print(f"child {{child.pid}}", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def started() -> Iterator[list[int]]:
    """Pids of the children under test; any still alive at teardown is killed and fails the test."""
    pids: list[int] = []
    yield pids
    left = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
                proc.kill()
        except psutil.Error:
            pass
    assert not left, f"killed children that outlived their parent: {left}"


def _parent(source: str, **fields: bool) -> tuple[subprocess.Popen[str], int]:
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(source.format(**fields))], stdout=subprocess.PIPE, text=True,
    )
    return parent, int(_read_until(parent, "child ").split()[1])


def _read_until(parent: subprocess.Popen[str], prefix: str) -> str:
    """The first line of the parent's output that starts with ``prefix``."""
    assert parent.stdout is not None
    while True:
        line = parent.stdout.readline()
        assert line, f"no {prefix!r} line from the parent"
        if line.startswith(prefix):
            return line


def _gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _finish(parent: subprocess.Popen[str]) -> None:
    if parent.poll() is None:
        parent.kill()
    parent.wait(timeout=10)
    assert parent.stdout is not None
    parent.stdout.close()


@pytest.mark.parametrize("fallback", [False, True], ids=["prctl", "polling-thread"])
def test_a_forked_child_is_signalled_when_its_parent_is_sigkilled(started: list[int], fallback: bool) -> None:
    if not fallback and parent_watch._prctl is None:
        pytest.skip("no prctl here (not Linux)")
    # Once in a CI run of the whole suite the parent exited 0 before its child printed
    # "armed" (cause not found; never seen in 15 runs of this file alone): try the set-up
    # twice before judging, and say what the parent did if it fails again.
    for attempt in (1, 2):
        parent, child = _parent(FORKED_CHILD, fallback=fallback, wait_for_orphaning=False, exit_at_once=False)
        started.append(child)
        try:
            _read_until(parent, "armed")
            break
        except AssertionError:
            _finish(parent)
            if attempt == 2:
                raise AssertionError(f"no 'armed' line twice; the parent exited with {parent.returncode}") from None
    try:
        assert psutil.Process(child).is_running()
        parent.send_signal(signal.SIGKILL)
        assert _gone(child, GONE_WITHIN_S), f"child {child} still running {GONE_WITHIN_S}s after its parent was killed"
    finally:
        _finish(parent)


@pytest.mark.parametrize("fallback", [False, True], ids=["prctl", "polling-thread"])
def test_a_child_whose_parent_died_before_it_asked_is_signalled_at_once(started: list[int], fallback: bool) -> None:
    parent, child = _parent(FORKED_CHILD, fallback=fallback, wait_for_orphaning=True, exit_at_once=True)
    started.append(child)
    try:
        assert _gone(child, GONE_WITHIN_S), f"child {child} outlived a parent that was gone before it asked"
    finally:
        _finish(parent)


@pytest.mark.skipif(parent_watch._prctl is None, reason="PR_SET_PDEATHSIG is Linux only")
def test_an_execd_program_started_with_the_preexec_dies_with_its_parent(started: list[int]) -> None:
    parent, child = _parent(EXECED_CHILD)
    started.append(child)
    try:
        deadline = time.monotonic() + GONE_WITHIN_S
        while psutil.Process(child).name() != "sleep" and time.monotonic() < deadline:
            time.sleep(0.02)  # until exec'd
        parent.send_signal(signal.SIGKILL)
        assert _gone(child, GONE_WITHIN_S), f"{child} (sleep) still running after its parent was killed"
    finally:
        _finish(parent)


def test_without_prctl_there_is_no_preexec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parent_watch, "_prctl", None)
    assert parent_watch.pdeathsig_preexec() is None


def test_a_live_parent_is_left_alone() -> None:
    """Arming in a process whose parent lives (this test's) sends nothing."""
    pid = os.fork()
    if pid == 0:  # the child arms against this process, then exits normally after a moment
        status = 1
        try:
            parent_watch.die_with_parent(os.getppid(), signal.SIGTERM)
            time.sleep(0.3)
            status = 0
        finally:
            os._exit(status)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the armed child did not exit")
