"""`qrun run` as PID 1, as in a container without an init (`docker run` with no `--init`):
each test starts it as PID 1 of a new PID namespace (`unshare --pid --fork --mount-proc`) and
shows that it reaps the orphans its jobs leave behind (the kernel hands them to PID 1) and
that SIGTERM (what `docker stop` and Kubernetes send first) drains it within the grace period.

PID 1 is special in two ways: every orphan of the namespace becomes its child (if it does not
wait for them they stay zombies, holding pids, until the container stops), and the kernel
drops every signal it has no handler for (a SIGTERM would be ignored and the orchestrator
would SIGKILL it at the end of its own grace period). No Docker is needed to test either.

Skipped, with the reason, where `unshare` is missing or not permitted (it needs root, or
CAP_SYS_ADMIN). Every wait is bounded; at the end the namespace's PID 1 is SIGKILLed (the
kernel then kills everything in the namespace) and every process seen is killed by pid.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import psutil
import pytest

from tests import pid1_tasks
from tests.supervisors import ROOT, lines, wait_until

TARGET = "tests.pid1_tasks:queue"


@pytest.fixture(scope="module")
def unshare() -> str:
    """The `unshare` program, once it showed it can make a PID namespace here."""
    program = shutil.which("unshare")
    if program is None:
        pytest.skip("util-linux `unshare` is not installed: cannot run qrun as PID 1 of a new PID namespace")
    try:
        tried = subprocess.run([program, "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"`unshare --pid --fork --mount-proc` did not run: {error}")
    if tried.returncode != 0:
        pytest.skip(
            "`unshare --pid --fork --mount-proc` is not permitted here (needs root or CAP_SYS_ADMIN): "
            + tried.stderr.decode(errors="replace").strip()
        )
    return program


class Namespace:
    """One `qrun run` as PID 1 of a new PID namespace, its log, and the processes seen in it."""

    def __init__(self, unshare: str, env: dict[str, str], out: Path) -> None:
        self.unshare = unshare
        self.env = env
        self.out = out
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._seen: dict[int, psutil.Process] = {}

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        self._log = (self.out / "pid1.log").open("wb")
        self.process = subprocess.Popen(
            # --kill-child: if unshare dies, the kernel SIGKILLs the namespace's PID 1 (and so all of it)
            [self.unshare, "--pid", "--fork", "--mount-proc", "--kill-child",
             sys.executable, "-m", "qrun", "run", *args, TARGET],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self.process

    def log(self) -> str:
        return (self.out / "pid1.log").read_text()

    def init(self) -> psutil.Process:
        """The namespace's PID 1 (the qrun supervisor), as seen from outside: unshare's child."""
        assert self.process is not None
        def found() -> bool:
            return bool(psutil.Process(self.process.pid).children()) if self.process.poll() is None else True  # type: ignore[union-attr]
        wait_until(found, 10, "unshare to fork the namespace's PID 1", self.log)
        assert self.process.poll() is None, f"unshare exited ({self.process.returncode}):\n{self.log()}"
        [init] = psutil.Process(self.process.pid).children()
        self._seen[init.pid] = init
        return init

    def descendants(self) -> list[psutil.Process]:
        """Every process under unshare now (the whole namespace), remembered for cleanup."""
        assert self.process is not None
        try:
            found = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        for child in found:
            self._seen.setdefault(child.pid, child)
        return found

    def zombies(self) -> list[psutil.Process]:
        result = []
        for child in self.descendants():
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    result.append(child)
            except psutil.NoSuchProcess:
                pass
        return result

    def wait_for_workers(self, init: psutil.Process, count: int, timeout_s: float = 20) -> None:
        def ready() -> bool:
            assert self.process is not None and self.process.poll() is None, f"qrun exited:\n{self.log()}"
            live = [c for c in init.children() if c.status() != psutil.STATUS_ZOMBIE]
            return len(live) >= count and f"{count} worker(s)" in self.log()
        wait_until(ready, timeout_s, f"{count} workers under PID 1", self.log)
        self.descendants()

    def stop(self) -> None:
        if self.process is not None:
            self.descendants()
            for process in self._seen.values():  # PID 1 first: its death kills the namespace
                try:
                    process.kill()  # psutil checks the pid still names the same process
                except psutil.NoSuchProcess:
                    pass
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()


@pytest.fixture
def namespace(unshare: str, subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Namespace]:
    pid1_tasks.queue.close()
    started = Namespace(unshare, subprocess_env, tmp_path)
    yield started
    started.stop()
    pid1_tasks.queue.close()


def _snapshot(out: Path, n: int, timeout_s: float = 10) -> list[list[str]]:
    """Run the snapshot job; its rows: [pid, comm, state, ppid], pids as seen in the namespace."""
    pid1_tasks.snapshot.enqueue(n)
    path = out / f"snapshot-{n}.txt"
    wait_until(path.exists, timeout_s, f"snapshot {n}")
    return [row.split() for row in lines(path)]


def test_pid1_reaps_the_orphans_its_jobs_leave(namespace: Namespace, url: str, tmp_path: Path) -> None:
    namespace.start("--workers", "2")
    init = namespace.init()
    namespace.wait_for_workers(init, 2)

    pid1_tasks.queue.enqueue_many(pid1_tasks.leave_orphan, [(n,) for n in range(6)])
    wait_until(lambda: len(lines(tmp_path / "orphans.txt")) == 6, 20, "6 jobs that leave an orphan", namespace.log)
    orphans = [line.split() for line in lines(tmp_path / "orphans.txt")]
    print("orphans (job, pid, parent pid once its shell exited):", orphans)
    assert {parent for _n, _pid, parent in orphans} == {"1"}, orphans  # adopted by qrun, PID 1
    orphan_pids = {pid for _n, pid, _parent in orphans}

    # Each orphan's `sleep 0.3` ends; PID 1 must wait() for it, or it stays a zombie for good.
    attempt = 0
    def reaped() -> bool:
        nonlocal attempt
        attempt += 1
        rows = _snapshot(tmp_path, attempt)
        return not any(row[2] == "Z" or row[0] in orphan_pids for row in rows)
    wait_until(reaped, 15, "the orphans to exit and be reaped", namespace.log, poll_s=0.2)
    rows = _snapshot(tmp_path, attempt + 1)
    print("the namespace after the orphans exited (pid comm state ppid):")
    print("\n".join(" ".join(row) for row in rows))
    assert [row for row in rows if row[2] == "Z"] == []
    assert rows[0][0] == "1" and rows[0][3] == "0", rows  # qrun is PID 1
    assert namespace.zombies() == []  # and from outside: nothing under unshare is a zombie
    assert namespace.process is not None and namespace.process.poll() is None  # still serving


def test_pid1_drains_on_sigterm_within_the_grace_period(namespace: Namespace, url: str, tmp_path: Path) -> None:
    grace_s = 10.0
    namespace.start("--workers", "2", "--grace-period", str(grace_s))
    init = namespace.init()
    namespace.wait_for_workers(init, 2)

    pid1_tasks.queue.enqueue_many(pid1_tasks.slow, [(2.0, 1), (2.0, 2)])
    wait_until(lambda: len(lines(tmp_path / "slow_started.txt")) == 2, 20, "both slow jobs to start", namespace.log)
    pid1_tasks.queue.enqueue_many(pid1_tasks.slow, [(2.0, 3), (2.0, 4)])  # waiting: must stay queued
    sent = time.monotonic()
    init.send_signal(signal.SIGTERM)  # from outside the namespace, as `docker stop` does
    assert namespace.process is not None
    status = namespace.process.wait(timeout=grace_s + 10)
    took_s = time.monotonic() - sent
    print(f"SIGTERM to PID 1: exit status {status} after {took_s:.2f}s (grace period {grace_s:g}s)")

    assert status == 0, namespace.log()
    assert took_s < grace_s, namespace.log()  # drained, not killed at the end of the grace period
    assert sorted(lines(tmp_path / "slow_finished.txt")) == ["1", "2"], namespace.log()
    assert sorted(lines(tmp_path / "slow_started.txt")) == ["1", "2"]  # nothing new started
    assert "stopping: workers finish their current jobs" in namespace.log()
    assert "was killed by the supervisor" not in namespace.log()
    stats = pid1_tasks.queue.stats()
    assert (stats["succeeded"], stats["in_flight"], stats["ready"]) == (2, 0, 2), stats


def test_pid1_stops_on_sigterm_while_the_app_still_imports(namespace: Namespace, url: str, tmp_path: Path) -> None:
    """PID 1 ignores a signal it has no handler for: a TERM before the supervisor installs its
    handlers must still stop qrun, not leave it to the orchestrator's SIGKILL."""
    namespace.env = {**namespace.env, "QRUN_TEST_IMPORT_DELAY_S": "30"}
    namespace.start("--workers", "1")
    init = namespace.init()
    wait_until((tmp_path / "importing.txt").exists, 20, "qrun to import the app", namespace.log)
    assert lines(tmp_path / "importing.txt") == ["1"]  # the app imports in PID 1
    sent = time.monotonic()
    init.send_signal(signal.SIGTERM)
    assert namespace.process is not None
    status = namespace.process.wait(timeout=10)  # the import would sleep 30 s more
    took_s = time.monotonic() - sent
    print(f"SIGTERM to PID 1 while importing: exit status {status} after {took_s:.2f}s")
    assert status == 128 + signal.SIGTERM, namespace.log()
    assert "worker(s) on" not in namespace.log()  # it never started serving
