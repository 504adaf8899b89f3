"""The prefork supervisor: forks worker processes, watches them, and stops them gracefully.

Modelled on gunicorn's arbiter. Signal handlers only record the signal; the main loop acts
on it. The loop is a handful of verbs::

    wait_for_signals -> kill_stuck_workers -> reap_workers -> check_burst_done -> keep_worker_count

What each child is doing lives in a shared-memory slot (:mod:`qrun.slots`), so the loop reads
deadlines and heartbeats without I/O; everything that talks to the server runs on the
maintenance thread (:mod:`qrun.maintenance`).
"""

from __future__ import annotations

import gc
import logging
from collections import Counter
import os
import queue as stdlib_queue
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from . import settings
from .checks import count_setting, seconds_setting
from .errors import ConfigurationError, TimeLimitExceeded
from .events import EventBatch
from . import queue_settings
from .hooks import Outbox, hooks_for
from .batch import CANCEL_SIGNAL, LongJobWatcher
from .maintenance import LiveWorker, Maintenance
from .metrics import require as require_extra
from .presence import Presence, WorkerInfo
from .queue import Queue
from .settle import dead_letter, fail_attempt, read_entry
from .slots import SlotTable, SlotView
from .worker import Worker, consumer_name, run_in_child

if TYPE_CHECKING:
    from .metrics.counts import CountTable, CountWriter
    from .metrics.exporter import Exporter

log = logging.getLogger(__name__)

HANDLED_SIGNALS = (
    signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD,
)

#: Longest pause before replacing a worker that keeps dying.
MAX_RESPAWN_DELAY_S = 30.0

#: A worker that died within this long of starting, without finishing a job, is crashing
#: (respawns back off); one killed after doing work is replaced at once.
CRASH_WINDOW_S = 5.0

#: Most worker processes one supervisor runs (slots are reserved up front).
MAX_WORKERS = 256

#: Put on the supervisor's signal queue by the maintenance thread when it read cancel marks
#: (not a signal number: no signal is ever negative).
_CANCEL_MARKS = -1

#: How often a worker still running a cancelled job is told again, until the grace runs out.
_RETELL_CANCEL_S = 1.0


@dataclass
class WorkerProcess:
    pid: int
    started_at: float
    slot: int
    queues: list[Queue]
    consumer: str  #: the consumer name it reads as (unique: chosen here, before the fork)
    retiring: bool = False  #: told to stop (reload, fewer workers); not replaced
    told_to_stop_at: float = 0.0
    killed_for: str = ""  #: why the supervisor killed it, if it did
    kill_code: str = ""  #: the same as a restart reason: time_limit, hung, cancel_grace, grace_period
    timed_out: tuple[Queue, str, float] | None = None  #: (queue, entry id, limit) of a hard-limit kill


class Supervisor:
    """Keeps ``workers`` processes serving ``queues`` until told to stop (or, in burst
    mode, until every queue has nothing ready, delayed or in flight).

    ``reload`` (for SIGHUP) re-imports the app and returns its queues; without it, HUP only
    replaces the workers.

    ``metrics_port`` serves Prometheus metrics on ``metrics_host:metrics_port`` (0: a free
    port, see ``exporter.port``); the port is bound here, so a port in use fails before
    anything starts (:class:`qrun.metrics.MetricsError`).
    """

    def __init__(
        self,
        queues: Sequence[Queue],
        *,
        workers: int = 1,
        burst: bool = False,
        grace_period_s: float = settings.DEFAULT_GRACE_PERIOD_S,
        cancel_grace_s: float = settings.CANCEL_GRACE_S,
        max_jobs_per_worker: int | None = None,
        max_memory_per_worker_mb: int | None = None,
        hung_worker_s: float = settings.HUNG_WORKER_S,
        reload: Callable[[], list[Queue]] | None = None,
        metrics_port: int | None = None,
        metrics_host: str = "0.0.0.0",
    ) -> None:
        count_setting("--workers", workers, 1)
        if workers > MAX_WORKERS:
            raise ConfigurationError(f"--workers must be <= {MAX_WORKERS}, got {workers}")
        self.grace_period_s = seconds_setting("--grace-period", grace_period_s, 0.0)
        self.cancel_grace_s = seconds_setting("--cancel-grace", cancel_grace_s, 0.0)
        # A live worker polls at least every read block plus its reply margin.
        least_hung_s = settings.READ_BLOCK_MS / 1000 + settings.READ_TIMEOUT_MARGIN_S
        self.hung_worker_s = seconds_setting("--hung-worker-timeout", hung_worker_s, least_hung_s)
        self.queues = list(queues)
        self.worker_count = workers
        self.burst = burst
        self.max_jobs_per_worker = max_jobs_per_worker
        self.max_memory_per_worker_mb = max_memory_per_worker_mb
        self._reload = reload
        #: workers replaced, by reason (restart_reason): for metrics, counted whether or not they are on
        self.restarts: Counter[str] = Counter()
        #: the shared table workers count jobs into, and what serves it (None: metrics are off)
        self.counts: CountTable | None = None
        self.exporter: Exporter | None = None
        self._own_counts: CountWriter | None = None
        if metrics_port is not None:
            require_extra("prometheus_client", "metrics", "--metrics-port")
        self._new_worker(self.queues)  # validates the queues and limits before any fork
        self.slots = SlotTable(MAX_WORKERS)
        self.maintenance = Maintenance(
            self.queues, live_workers=self.live_workers, beat=self.beat_presence, cancels=self.on_cancel_marks
        )
        if metrics_port is not None:
            self._serve_metrics(metrics_port, metrics_host)
        self.long_jobs = LongJobWatcher(self.running_jobs)
        self._presence: list[Presence] = []
        self.exit_status = 0
        self._workers: dict[int, WorkerProcess] = {}
        self._signals: stdlib_queue.SimpleQueue[int] = stdlib_queue.SimpleQueue()
        self._running = True
        self._fast_stop_requested = False
        self._killed_while_stopping = False
        self._crashes = 0
        self._next_spawn_at = 0.0
        self._oom_kills = oom_kill_count()
        self._handlers: dict[int, Callable[[], None]] = {
            signal.SIGTERM: self._request_graceful_stop,
            signal.SIGINT: self._request_graceful_stop,
            signal.SIGQUIT: self._request_fast_stop,
            signal.SIGHUP: self._reload_workers,
            signal.SIGTTIN: self._add_worker,
            signal.SIGTTOU: self._remove_worker,
            signal.SIGCHLD: lambda: None,  # wakes the loop; reap_workers does the work
            _CANCEL_MARKS: self.tell_workers_of_cancels,  # not a signal: the maintenance thread's news
        }
        #: entry ids marked cancelled, per stream (from the maintenance thread, each tick)
        self._cancel_marks: dict[str, set[str]] = {}
        #: (worker pid, entry id) -> when that worker was first and last told the entry was cancelled
        self._told_of_cancel: dict[tuple[int, str], tuple[float, float]] = {}

    def _serve_metrics(self, port: int, host: str) -> None:
        """Lay the count table out from the queues and tasks known now (before any fork) and
        bind the metrics port."""
        from .metrics.counts import CountTable, Layout
        from .metrics.exporter import Exporter

        self.counts = CountTable(Layout.of(self.queues), MAX_WORKERS)
        self._own_counts = self.maintenance.counts = self.counts.own_writer()
        self.exporter = Exporter(
            self.counts, queues=lambda: self.queues, workers=self.worker_numbers, restarts=self.restarts,
            reclaimed=self.maintenance.reclaimed, port=port, host=host,
        )

    def worker_numbers(self) -> tuple[int, int]:
        """(workers alive and booted, workers wanted), for metrics."""
        return len(self.live_workers()), self.worker_count

    # -- the main loop -------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; returns the process exit status."""
        for queue in self.queues:
            queue.ensure_group()
            queue_settings.refresh(queue)  # before the fork: workers start with what operators stored
        self._install_signal_handlers()
        if self.exporter is not None:
            self.exporter.start()
        gc.freeze()  # keep the imported app's objects out of the children's copy-on-write pages
        log.info(
            "qrun supervisor %d: %d worker(s) on %s%s",
            os.getpid(), self.worker_count, ", ".join(f"{q.prefix}:{q.name}" for q in self.queues),
            " (burst: exit once every queue is empty)" if self.burst else "",
        )
        self._presence = [
            Presence(self.queues[0].redis, prefix, socket.gethostname(), os.getpid(),
                     [q.name for q in self.queues], time.time_ns() // 1_000_000,
                     metrics=None if self.exporter is None else (self.exporter.host, self.exporter.port))
            for prefix in sorted({queue.prefix for queue in self.queues})
        ]
        self.keep_worker_count()
        self.maintenance.start()
        self.long_jobs.start()
        try:
            while self._running:
                self.wait_for_signals(timeout_s=0.25)
                self.kill_stuck_workers()
                self.reap_workers()
                self.check_burst_done()
                self.keep_worker_count()
        finally:
            self.long_jobs.stop()
            self.stop_workers()
            self.maintenance.stop()
            self.maintenance.final_pass(self._killed_while_stopping)
            for presence in self._presence:
                presence.leave()
            if self.exporter is not None:
                self.exporter.stop()
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

    def kill_stuck_workers(self) -> None:
        """Kill a worker whose job ran past its hard time limit, one that stopped polling
        while idle (hung), and a retiring one that outstayed the grace period."""
        now = time.monotonic()
        for record in list(self._workers.values()):
            if record.killed_for:
                continue
            view = self.slots.read(record.slot)
            if record.retiring and now - record.told_to_stop_at > self.grace_period_s:
                self._kill(record, "it did not stop within the grace period", "grace_period")
            elif view.pid != record.pid:
                continue  # still booting
            elif view.busy and view.job_deadline and now > view.job_deadline:
                limit_s = view.job_deadline - view.job_started
                queue = record.queues[view.queue_index]
                record.timed_out = (queue, view.entry_id, limit_s)
                self._kill(record, f"job {view.job_id} ({view.task}) ran past its time limit of {limit_s:g}s", "time_limit")
            elif not view.busy and view.last_poll and now - view.last_poll > self.hung_worker_s:
                self._kill(record, f"it has not polled the server for {now - view.last_poll:.0f}s (hung?)", "hung")
            elif self._cancel_marks:
                self._stop_cancelled_job(record, now)

    # -- cancelled jobs (qrun.lifecycle.cancel) --------------------------------------------

    def on_cancel_marks(self, marks: dict[str, set[str]]) -> None:
        """The maintenance thread read the cancel marks: hand them to the main loop."""
        self._cancel_marks = marks
        self._signals.put_nowait(_CANCEL_MARKS)

    def tell_workers_of_cancels(self) -> None:
        """Signal each worker serving a queue with new cancel marks, once per mark: the one
        holding the entry hands it back cancelled, or interrupts it if it runs."""
        marks = self._cancel_marks
        live = {(pid, entry) for pid, entry in self._told_of_cancel if any(entry in ids for ids in marks.values())}
        self._told_of_cancel = {key: at for key, at in self._told_of_cancel.items() if key in live}
        now = time.monotonic()
        for record in list(self._workers.values()):
            if record.killed_for or self.slots.read(record.slot).pid != record.pid:
                continue  # killed, or still booting (its handler may not be installed yet)
            new = [
                entry for queue in record.queues for entry in marks.get(queue.keys.stream, ())
                if (record.pid, entry) not in self._told_of_cancel
            ]
            if new:
                for entry in new:
                    self._told_of_cancel[(record.pid, entry)] = (now, now)
                _tell(record.pid, CANCEL_SIGNAL)

    def _stop_cancelled_job(self, record: WorkerProcess, now: float) -> None:
        """A worker still running a cancelled job: tell it again every second (a signal that
        came while it could not act, e.g. while it was taking the job, is not lost; it never
        raises JobCancelled twice in one job), and kill it once the job went on for
        ``cancel_grace_s`` after it was first told."""
        running = self.slots.running(record.slot)
        if running is None or not 0 <= running[0] < len(record.queues):
            return
        entry = running[1]
        if entry not in self._cancel_marks.get(record.queues[running[0]].keys.stream, ()):
            return
        key = (record.pid, entry)
        first, last = self._told_of_cancel.get(key, (now, 0.0))
        if now - first > self.cancel_grace_s:
            self._kill(record, f"its job (entry {entry}) was cancelled and still ran {self.cancel_grace_s:g}s later",
                       "cancel_grace")
        elif now - last >= _RETELL_CANCEL_S:
            self._told_of_cancel[key] = (first, now)
            _tell(record.pid, CANCEL_SIGNAL)

    def reap_workers(self) -> None:
        """Collect exited children, say in plain words why each one ended.

        Waits for *any* child (-1), not only the workers it knows: as PID 1 of a container
        (no init) the supervisor inherits every orphan there, e.g. what a job started in the
        background, and must wait() for those too or they stay zombies until the container
        stops (tests/integration/test_pid1.py). Those pids are not workers: skipped."""
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
        """Fork workers until ``worker_count`` serve; retire the oldest beyond it."""
        serving = sorted((r for r in self._workers.values() if not r.retiring), key=lambda r: r.started_at)
        for record in serving[: max(0, len(serving) - self.worker_count)]:
            self._retire(record)
        missing = self.worker_count - min(len(serving), self.worker_count)
        while self._running and missing > 0 and time.monotonic() >= self._next_spawn_at:
            try:
                self._spawn_worker()
            except IndexError:  # every slot taken (retiring workers still hold theirs)
                return
            except OSError as error:  # EAGAIN: a pid or memory limit; try again later
                log.error("cannot fork a worker (%s); trying again in 1s", error)
                self._next_spawn_at = time.monotonic() + 1.0
                return
            missing -= 1

    # -- what the maintenance thread asks -------------------------------------------------

    def live_workers(self) -> list[LiveWorker]:
        """The workers that are alive and booted (their entries are kept hidden)."""
        workers = []
        for record in list(self._workers.values()):
            if not record.killed_for and self.slots.read(record.slot).pid == record.pid:
                workers.append(LiveWorker(record.queues, record.consumer))
        return workers

    def running_jobs(self) -> list[tuple[int, int | None]]:
        """(pid, jobs started so far, None between batches) of each live worker, for the
        long-job watcher (its thread calls this: it reads a copy of the worker table)."""
        return [
            (record.pid, self.slots.progress(record.slot))
            for record in list(self._workers.values()) if not record.killed_for
        ]

    def beat_presence(self) -> None:
        """Tell `qrun workers` who is alive: this supervisor and what each worker is doing."""
        workers = []
        for record in list(self._workers.values()):
            view = self.slots.read(record.slot)
            if view.pid != record.pid:
                continue  # still booting
            busy = view.busy and 0 <= view.queue_index < len(record.queues)
            workers.append(WorkerInfo(
                pid=record.pid,
                started_at_ms=int(view.booted_at * 1000),
                jobs_done=view.jobs_done,
                job_id=view.job_id if busy else None,
                task=view.task if busy else None,
                queue=record.queues[view.queue_index].name if busy else None,
                job_started_at_ms=int(view.job_started_at * 1000) if view.busy else None,
            ))
        for presence in self._presence:
            presence.beat(workers)

    # -- spawning and reaping ------------------------------------------------------------

    def _new_worker(self, queues: list[Queue], slot: int | None = None, consumer: str | None = None) -> Worker:
        return Worker(
            queues,
            consumer=consumer,
            max_jobs=self.max_jobs_per_worker,
            max_memory_mb=self.max_memory_per_worker_mb,
            slot=None if slot is None else self.slots.writer(slot),
            counts=None if slot is None or self.counts is None else self.counts.writer(slot),
        )

    def _spawn_worker(self) -> None:
        slot = self.slots.take()
        if self.counts is not None:
            self.counts.take(slot)
        queues = self.queues
        suffix = os.urandom(3).hex()  # drawn before the fork: both sides build the same name
        # Block signals across fork so the child cannot be hit before it installs its own handlers.
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        try:
            try:
                pid = os.fork()
            except OSError:
                self.slots.give_back(slot)
                if self.counts is not None:
                    self.counts.fold(slot)
                raise
            if pid == 0:
                try:
                    if self.exporter is not None:
                        self.exporter.forget_in_child()
                    os.setpgid(0, 0)  # its own group: a kill reaches what its job started too
                    run_in_child(self._new_worker(queues, slot, consumer_name(os.getpid(), suffix)))
                finally:  # a child must never return into the supervisor's loop
                    os._exit(1)
            try:
                os.setpgid(pid, pid)  # also here, so a kill right after fork finds the group
            except OSError:
                pass
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
        self._workers[pid] = WorkerProcess(pid, time.monotonic(), slot, queues, consumer_name(pid, suffix))
        log.debug("spawned worker %d", pid)

    def _on_worker_exit(self, record: WorkerProcess, status: int) -> None:
        view = self.slots.read(record.slot)
        running = self.slots.running(record.slot) if view.pid == record.pid else None  # exact: it is dead
        self._recover_jobs_of(record, running)
        oom_killed = self._oom_killed(status)
        described = describe_exit(status, oom_killed=oom_killed, job=self._running_job(record, view, running))
        if self.counts is not None:  # before the slot can be reused: its counts are kept
            self.counts.fold(record.slot)
        self.slots.give_back(record.slot)
        booted = view.pid == record.pid
        if not booted and os.WIFEXITED(status) and os.WEXITSTATUS(status) == settings.EXIT_BOOT_FAILED:
            log.error("worker %d could not boot (%s); stopping instead of respawning", record.pid, described)
            self.exit_status = settings.EXIT_BOOT_FAILED
            self._running = False
            return
        if self._running and not record.retiring:  # it is replaced
            self.restarts[record.kill_code or restart_reason(status, oom_killed)] += 1
        if record.killed_for:
            log.warning("worker %d was killed by the supervisor: %s", record.pid, record.killed_for)
        elif not self._running or record.retiring:
            log.info("worker %d %s", record.pid, described)
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            log.info("worker %d left to be recycled after %d job(s); replacing it", record.pid, view.jobs_done)
        else:
            log.warning("worker %d %s; replacing it", record.pid, described)
            lived_s = time.monotonic() - record.started_at
            self._crashes = self._crashes + 1 if lived_s < CRASH_WINDOW_S and view.jobs_done == 0 else 0
            delay_s = min(MAX_RESPAWN_DELAY_S, 0.1 * 2**self._crashes) if self._crashes else 0.0
            self._next_spawn_at = time.monotonic() + delay_s

    def _oom_killed(self, status: int) -> bool | None:
        """Did the kernel's OOM killer end this worker? Asked only of a SIGKILLed one: the
        cgroup's OOM-kill count went up since the last look."""
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            return None
        count = oom_kill_count()
        if count is None or self._oom_kills is None:
            return None
        rose, self._oom_kills = count > self._oom_kills, count
        return rose

    @staticmethod
    def _running_job(record: WorkerProcess, view: SlotView, running: tuple[int, str] | None) -> str:
        """'job <id> (<task>)' of the job it started last, or 'entry <id> of queue <name>'
        when that job was not described in the slot (a fast batch); '' between batches."""
        if running is None:
            return ""
        queue_index, entry_id = running
        if view.entry_id == entry_id and view.job_id:
            return f"job {view.job_id} ({view.task})"
        if 0 <= queue_index < len(record.queues):
            return f"entry {entry_id} of queue {record.queues[queue_index].name}"
        return ""

    def _recover_jobs_of(self, record: WorkerProcess, running: tuple[int, str] | None) -> None:
        """Ask the maintenance thread to settle a job killed for its time limit (a failed
        attempt) and to hand back whatever else the dead worker held: the job it was running
        (its slot says which) charged a delivery, the rest of its batch uncharged."""
        if record.timed_out is not None:
            queue, entry_id, limit_s = record.timed_out
            self.maintenance.request(partial(settle_killed_job, queue, entry_id, limit_s, self._own_counts))
        charged = None
        if running is not None and 0 <= running[0] < len(record.queues):
            charged = (record.queues[running[0]].keys.stream, running[1])
        self.maintenance.worker_died(record.consumer, charged)

    # -- signals: stopping, reloading, scaling ----------------------------------------------

    def _request_graceful_stop(self) -> None:
        if not self._running:  # a second TERM/INT while stopping: do not wait any longer
            self._request_fast_stop()
            return
        log.info("stopping: workers finish their current jobs (up to %.0fs)", self.grace_period_s)
        self._running = False

    def _request_fast_stop(self) -> None:
        log.info("stopping now: workers are killed and their jobs handed back to the queue")
        self._running = False
        self._fast_stop_requested = True

    def _reload_workers(self) -> None:
        """HUP: re-import the app, start new workers on it, let the old ones finish their jobs."""
        queues = self.queues
        if self._reload is not None:
            try:
                queues = self._reload()
                for queue in queues:
                    queue.ensure_group()
            except Exception:
                log.exception("reload failed; the running workers keep going on the old code")
                return
        log.info("reloading: new workers on %s; the old ones finish their current jobs",
                 ", ".join(f"{q.prefix}:{q.name}" for q in queues))
        self.queues = queues
        self.maintenance.set_queues(queues)
        for record in list(self._workers.values()):
            self._retire(record)
        self._crashes, self._next_spawn_at = 0, 0.0

    def _add_worker(self) -> None:
        if self.worker_count >= MAX_WORKERS:
            log.warning("TTIN: already at the most workers one supervisor runs (%d)", MAX_WORKERS)
            return
        self.worker_count += 1
        log.info("TTIN: %d worker(s)", self.worker_count)

    def _remove_worker(self) -> None:
        if self.worker_count <= 1:
            log.warning("TTOU: keeping the last worker (stop the supervisor to stop it)")
            return
        self.worker_count -= 1
        log.info("TTOU: %d worker(s); the oldest finishes its job and leaves", self.worker_count)

    def _retire(self, record: WorkerProcess) -> None:
        record.retiring = True
        record.told_to_stop_at = time.monotonic()
        self._terminate(record.pid)

    def stop_workers(self) -> None:
        """TERM every worker, wait up to the grace period, then KILL what is left (at once
        on a fast stop). Hard time limits still apply while waiting."""
        if not self._fast_stop_requested:
            for pid in list(self._workers):
                self._terminate(pid)
        deadline = time.monotonic() + self.grace_period_s
        while self._workers and time.monotonic() < deadline and not self._fast_stop_requested:
            self.wait_for_signals(timeout_s=0.1)
            self.kill_stuck_workers()
            self.reap_workers()
        if self._workers:
            self._killed_while_stopping = True
            self._signal_workers(signal.SIGKILL)
            while self._workers:
                self.reap_workers()
                time.sleep(0.01)
        self._killed_while_stopping |= self._fast_stop_requested

    def _signal_workers(self, signum: int) -> None:
        for pid in list(self._workers):
            self._signal(pid, signum)

    def _kill(self, record: WorkerProcess, reason: str, code: str) -> None:
        record.killed_for = reason
        record.kill_code = code
        self._signal(record.pid, signal.SIGKILL)

    @staticmethod
    def _terminate(pid: int) -> None:
        """Ask a worker (only the worker: what its job started must be left to finish) to
        stop after its current job."""
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:  # already exited; reap_workers collects it
            pass

    @staticmethod
    def _signal(pid: int, signum: int) -> None:
        """Signal a worker's process group (its job's children too); gone already is fine."""
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:  # already exited; reap_workers collects it
                pass

    def _install_signal_handlers(self) -> None:
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, self._record_signal)

    def _record_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals.put_nowait(signum)  # nothing else: no logging, no I/O in a handler


def _tell(pid: int, signum: int) -> None:
    """Signal the worker process alone (not its group: what its job started would die of an
    unhandled SIGUSR2); gone already is fine."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def settle_killed_job(queue: Queue, entry_id: str, limit_s: float, counts: CountWriter | None = None) -> None:
    """A job whose worker was killed for its hard time limit: a failed attempt (retried or
    dead-lettered by its task's policy), with the reason recorded (and counted in the
    supervisor's own region of the metrics table, ``counts``, when metrics are on)."""
    jobs, _malformed = read_entry(queue, entry_id)
    if not jobs:
        return  # settled meanwhile, or malformed (the claimer dead-letters those)
    entry = jobs[0]
    error = TimeLimitExceeded(f"killed after running past its time limit of {limit_s:g}s")
    task = queue.tasks.get(entry[3])
    events = EventBatch(queue.prefix) if queue.events else None
    outbox = Outbox()
    hooks = hooks_for(queue, events, outbox, counts=counts)
    if task is None:
        dead_letter(queue, entry, f"unknown task {entry[3]!r}: no imported queue declares it", error, hooks)
    else:
        fail_attempt(queue, task, entry, error, hooks)
    outbox.send(queue.redis)
    if events is not None:
        events.publish(queue.redis)


#: What a signal that ended a worker usually means, for the log line.
_SIGNAL_HINTS = {
    signal.SIGSEGV: "a crash in C code (segmentation fault)",
    signal.SIGBUS: "a crash in C code (bus error)",
    signal.SIGABRT: "C code aborted (a failed assertion?)",
    signal.SIGFPE: "a crash in C code (arithmetic error)",
    signal.SIGILL: "a crash in C code (illegal instruction)",
    signal.SIGTERM: "sent by another process",
    signal.SIGINT: "sent by another process",
}


def describe_exit(status: int, *, oom_killed: bool | None = None, job: str = "") -> str:
    """A wait status in plain words: 'exited with status 1', 'killed by SIGSEGV (a crash in
    C code ...)'. A SIGKILL is called an out-of-memory kill only when the kernel counted
    one (``oom_killed``, from :func:`oom_kill_count`); ``job`` names the job it was running."""
    while_running = f" while running {job}" if job else ""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        name = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else str(signum)
        if signum == signal.SIGKILL:
            if oom_killed:
                hint = "the kernel's out-of-memory killer"
            elif oom_killed is None:
                hint = "another process, its own job, or the kernel's out-of-memory killer"
            else:
                hint = "another process or its own job; the kernel recorded no out-of-memory kill"
        else:
            hint = _SIGNAL_HINTS.get(signum, "")  # type: ignore[call-overload]
        return f"killed by {name}{while_running}" + (f" ({hint})" if hint else "")
    return f"exited with status {os.WEXITSTATUS(status)}{while_running}"


def restart_reason(status: int, oom_killed: bool | None) -> str:
    """The reason label of a worker that ended on its own and was replaced: ``recycled``
    (it left with status 0: --max-jobs/--max-memory-per-worker), ``oom``, the signal's name
    (``SIGSEGV``, ``SIGKILL``) or ``exit_<status>``; a bounded set. (A worker the supervisor
    killed is counted by why: ``time_limit``, ``hung``, ``cancel_grace``.)"""
    if os.WIFSIGNALED(status):
        if oom_killed:
            return "oom"
        signum = os.WTERMSIG(status)
        return signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else f"signal_{signum}"
    code = os.WEXITSTATUS(status)
    return "recycled" if code == 0 else f"exit_{code}"


def oom_kill_count() -> int | None:
    """How many processes the kernel's OOM killer has killed in this process's memory
    cgroup (v2 ``memory.events``, v1 ``memory.oom_control``); None when it cannot tell."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        if controllers == "":
            candidate = Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.events"
        elif "memory" in controllers.split(","):
            candidate = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.oom_control"
        else:
            continue
        try:
            for row in candidate.read_text().splitlines():
                key, _, value = row.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    return None
