"""The prefork supervisor: forks worker processes, watches them, and stops them gracefully.

Modelled on gunicorn's arbiter. Signal handlers only record the signal; the main loop
acts on it. The loop is a handful of verbs::

    wait_for_signals -> reap_workers -> check_burst_done -> keep_worker_count
"""

from __future__ import annotations

import gc
import logging
import os
import queue as stdlib_queue
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

from . import settings
from .errors import ConfigurationError
from .maintenance import Maintenance
from .queue import Queue
from .worker import Worker, run_in_child

log = logging.getLogger(__name__)

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGCHLD)

#: Longest pause before replacing a worker that keeps dying.
MAX_RESPAWN_DELAY_S = 30.0

#: A worker that lived shorter than this counts as crashing (for respawn backoff).
CRASH_WINDOW_S = 5.0


@dataclass
class WorkerProcess:
    pid: int
    started_at: float


class Supervisor:
    """Keeps ``workers`` processes serving ``queues`` until told to stop (or, in burst
    mode, until every queue has nothing ready, delayed or in flight)."""

    def __init__(
        self,
        queues: Sequence[Queue],
        *,
        workers: int = 1,
        burst: bool = False,
        grace_period_s: float = settings.DEFAULT_GRACE_PERIOD_S,
    ) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise ConfigurationError(f"--workers must be >= 1, got {workers!r}")
        if not grace_period_s >= 0:
            raise ConfigurationError(f"--grace-period must be >= 0 seconds, got {grace_period_s!r}")
        self.queues = list(queues)
        self.worker_count = workers
        self.burst = burst
        self.grace_period_s = grace_period_s
        self.maintenance = Maintenance(self.queues)
        self.exit_status = 0
        self._worker_template = Worker(self.queues)  # validates the queues before any fork
        self._workers: dict[int, WorkerProcess] = {}
        self._signals: stdlib_queue.SimpleQueue[int] = stdlib_queue.SimpleQueue()
        self._running = True
        self._fast_stop_requested = False
        self._crashes = 0
        self._next_spawn_at = 0.0
        self._handlers: dict[int, Callable[[], None]] = {
            signal.SIGTERM: self._request_graceful_stop,
            signal.SIGINT: self._request_graceful_stop,
            signal.SIGQUIT: self._request_fast_stop,
            signal.SIGCHLD: lambda: None,  # wakes the loop; reap_workers does the work
        }

    # -- the main loop -------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; returns the process exit status."""
        for queue in self.queues:
            queue.ensure_group()
        self._install_signal_handlers()
        gc.freeze()  # keep the imported app's objects out of the children's copy-on-write pages
        log.info(
            "qrun supervisor %d: %d worker(s) on %s%s",
            os.getpid(), self.worker_count, ", ".join(q.name for q in self.queues),
            " (burst: exit once every queue is empty)" if self.burst else "",
        )
        self.keep_worker_count()
        self.maintenance.start()
        try:
            while self._running:
                self.wait_for_signals(timeout_s=0.25)
                self.reap_workers()
                self.check_burst_done()
                self.keep_worker_count()
        finally:
            self.stop_workers()
            self.maintenance.stop()
        return self.exit_status

    def wait_for_signals(self, timeout_s: float) -> None:
        """Dispatch every recorded signal, waiting up to ``timeout_s`` for the first."""
        try:
            signum = self._signals.get(timeout=timeout_s)
        except stdlib_queue.Empty:
            return
        while True:
            self._handlers[signum]()
            try:
                signum = self._signals.get_nowait()
            except stdlib_queue.Empty:
                return

    def reap_workers(self) -> None:
        """Collect exited children, say in plain words why each one ended."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            record = self._workers.pop(pid, None)
            if record is None:
                continue
            self._on_worker_exit(record, status)

    def check_burst_done(self) -> None:
        """In burst mode, stop once the maintenance thread saw every queue settled."""
        if self.burst and self._running and self.maintenance.idle.is_set():
            log.info("burst: every queue is empty; stopping")
            self._running = False

    def keep_worker_count(self) -> None:
        """Fork workers until there are ``worker_count`` (respawns wait out their backoff)."""
        while self._running and len(self._workers) < self.worker_count:
            if time.monotonic() < self._next_spawn_at:
                return
            self._spawn_worker()

    # -- spawning and reaping ------------------------------------------------------------

    def _spawn_worker(self) -> None:
        # Block signals across fork so the child cannot be hit before it installs its own handlers.
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                try:
                    run_in_child(Worker(self.queues))
                finally:  # a child must never return into the supervisor's loop
                    os._exit(1)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
        self._workers[pid] = WorkerProcess(pid, time.monotonic())
        log.debug("spawned worker %d", pid)

    def _on_worker_exit(self, record: WorkerProcess, status: int) -> None:
        described = describe_exit(status)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == settings.EXIT_BOOT_FAILED:
            log.error("worker %d could not boot (%s); stopping instead of respawning", record.pid, described)
            self.exit_status = settings.EXIT_BOOT_FAILED
            self._running = False
            return
        if not self._running:
            log.info("worker %d %s", record.pid, described)
            return
        log.warning("worker %d %s; replacing it", record.pid, described)
        lived_s = time.monotonic() - record.started_at
        self._crashes = self._crashes + 1 if lived_s < CRASH_WINDOW_S else 0
        delay_s = min(MAX_RESPAWN_DELAY_S, 0.1 * 2 ** self._crashes) if self._crashes else 0.0
        self._next_spawn_at = time.monotonic() + delay_s

    # -- stopping ------------------------------------------------------------------------

    def _request_graceful_stop(self) -> None:
        if not self._running:  # a second TERM/INT while stopping: do not wait any longer
            self._request_fast_stop()
            return
        log.info("stopping: workers finish their current jobs (up to %.0fs)", self.grace_period_s)
        self._running = False

    def _request_fast_stop(self) -> None:
        log.info("stopping now: unfinished jobs stay pending and will be redelivered")
        self._running = False
        self._fast_stop_requested = True

    def stop_workers(self) -> None:
        """TERM every worker, wait up to the grace period, then KILL what is left."""
        self._signal_workers(signal.SIGQUIT if self._fast_stop_requested else signal.SIGTERM)
        deadline = time.monotonic() + self.grace_period_s
        while self._workers and time.monotonic() < deadline and not self._fast_stop_requested:
            self.wait_for_signals(timeout_s=0.1)
            self.reap_workers()
        if self._workers:
            self._signal_workers(signal.SIGKILL)
            while self._workers:
                self.reap_workers()
                time.sleep(0.01)

    def _signal_workers(self, signum: int) -> None:
        for pid in list(self._workers):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:  # already gone; reap_workers will collect it
                pass

    def _install_signal_handlers(self) -> None:
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, self._record_signal)

    def _record_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals.put_nowait(signum)  # nothing else: no logging, no I/O in a handler


def describe_exit(status: int) -> str:
    """A wait status in plain words: 'exited with status 1', 'killed by SIGKILL (out of memory?)'."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        name = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else str(signum)
        hint = " (out of memory?)" if signum == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exited with status {os.WEXITSTATUS(status)}"
