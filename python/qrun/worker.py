"""A worker process: read jobs from the shared consumer group, run them, settle each one.

Every delivered entry leaves the pending list in exactly one of three ways, each atomic on
the server: acked and deleted after success (``ack.lua``), rescheduled for another attempt
(``retry.lua``), or moved to the dead-letter stream with the reason (``dead.lua``).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import time
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import psutil
from redis.exceptions import ConnectionError, RedisError, TimeoutError

from . import settings
from .batch import CANCEL_SIGNAL, LONG_JOB_SIGNAL, Batch
from .checks import count_setting
from .errors import ConfigurationError
from .events import EventBatch
from .errors import JobCancelled
from .hooks import JobHooks, Outbox, call, hooks_for, succeeded
from .job import _current, _set_consumer
from .queue import Queue
from .queue_settings import SettingsWatcher
from .settle import dead_letter, dead_letter_malformed, fail_attempt, settle_cancelled
from .slots import SlotWriter
from .time_limit import soft_time_limit
from .wire import Wire

if TYPE_CHECKING:
    from .metrics.counts import CountWriter

log = logging.getLogger(__name__)


class Worker:
    """Runs the jobs of one or more queues, one at a time, in the calling process.

    ``__init__`` only stores settings, so a Worker can be built before ``fork()``;
    :meth:`boot` opens connections in the process that will run it. ``max_jobs`` and
    ``max_memory_mb`` make it leave :meth:`run` (to be replaced by a fresh process) after
    about that many jobs, or once its RSS passes that many MiB; each gets up to
    RECYCLE_JITTER of random headroom so a fleet does not recycle in lockstep.

    The wire side (connection, acks, events, reads, handing back) is :class:`qrun.wire.Wire`;
    the batch side (who runs and who hands back each fetched job) is :mod:`qrun.batch`.
    """

    def __init__(
        self,
        queues: Sequence[Queue],
        *,
        consumer: str | None = None,
        read_block_ms: int = settings.READ_BLOCK_MS,
        max_jobs: int | None = None,
        max_memory_mb: int | None = None,
        slot: SlotWriter | None = None,
        counts: CountWriter | None = None,
    ) -> None:
        if not queues:
            raise ConfigurationError("a worker needs at least one queue")
        urls = {queue.url for queue in queues}
        if len(urls) > 1:
            raise ConfigurationError("every queue one worker serves must live on the same server")
        self.queues = list(queues)
        self.consumer = consumer
        self.read_block_ms = read_block_ms
        self.max_jobs = None if max_jobs is None else count_setting("--max-jobs-per-worker", max_jobs, 1)
        self.max_memory_mb = None if max_memory_mb is None else count_setting("--max-memory-per-worker", max_memory_mb, 1)
        self.slot = slot
        #: this worker's region of the supervisor's metrics table (None: metrics are off)
        self.counts = counts
        self.jobs_done = 0
        self._by_stream = {queue.keys.stream.encode(): queue for queue in self.queues}
        self._queue_index = {queue.keys.stream.encode(): index for index, queue in enumerate(self.queues)}
        batches = {queue.prefix: EventBatch(queue.prefix) for queue in self.queues if queue.events}
        #: Where each stream's lifecycle events go (None: that queue publishes none).
        self._events: dict[bytes, EventBatch | None] = {
            stream: batches.get(queue.prefix) for stream, queue in self._by_stream.items()
        }
        #: What hooks write to the server, sent with the worker's next round trip (qrun.hooks).
        self._outbox = Outbox()
        #: The hooks each stream's jobs run with (qrun.hooks): one per feature that is on;
        #: those called when a job starts and succeeds, and those called when one fails.
        self._hooks: dict[bytes, tuple[JobHooks, ...]] = {}
        self._settle_hooks: dict[bytes, tuple[JobHooks, ...]] = {}
        if counts is not None:  # metrics on: the jobs of each batch are counted around it
            self._run_batch = counts.batches().wrap(self._run_batch, lambda: self._started)  # type: ignore[method-assign, assignment]
        self._make_hooks("")
        self._describe_jobs = True  # write each job into the slot (set per batch by _run_batch)
        self._shortest_visibility_s = min(queue.visibility_timeout_s for queue in self.queues)
        self._stored_settings = SettingsWatcher(self.queues, settings.SETTINGS_CHECK_INTERVAL_S)
        self._job_limit: int | None = None
        self._memory_limit_bytes: int | None = None
        self._next_memory_check = 0.0
        self._stopping = False
        self._prefetch = 1
        self._ack_every = 1  # jobs per ACK_WINDOW_S of work, judged by the last batch
        self._started = 0  # jobs started, for the slot (jobs_done counts those that ran)
        self._schedstat_fd: int | None = None  # /proc/self/schedstat, opened in the process that runs
        self._parent_pid = 0
        self.wire: Wire | None = None
        self._batch: Batch | None = None  # the batch being run, for the long-job handler
        self._acks: dict[bytes, list[str]] = {}  # the wire's acks owed, appended to per job
        self._holding: Batch | None = None  # the batch being run, for the cancel handler
        self._in_job: tuple[Any, ...] | None = None  # the entry whose task code runs now
        self._interrupted = ""  # entry id JobCancelled was last raised in (never twice)
        self._signals_due: set[int] = set()
        self._in_signal_handler = False
        self._check_cancels = False  # a cancel signal left a mark unplaced: check before the next job

    # -- lifecycle -----------------------------------------------------------------------

    def boot(self) -> None:
        """Open this process's connections, create the groups and load the scripts."""
        if self.consumer is None:
            self.consumer = consumer_name(os.getpid())
        _set_consumer(self.consumer)
        self._make_hooks(self.consumer)
        for queue in self.queues:
            queue.ensure_group()
        self._close_schedstat()  # opened again, lazily, by this process (it may be a forked child)
        self.wire = Wire(self.queues, self._events, self.read_block_ms, self._outbox)
        self.wire.connect(self.consumer)
        self._acks = self.wire.acks
        self._parent_pid = os.getppid()
        if self.slot is not None:  # booted: from now on an exit is not a boot failure
            self.slot.booted(os.getpid())
        jitter = 1 + random.random() * settings.RECYCLE_JITTER
        if self.max_jobs is not None:
            self._job_limit = int(self.max_jobs * jitter)
        if self.max_memory_mb is not None:
            self._memory_limit_bytes = int(self.max_memory_mb * jitter * 1024 * 1024)

    def _make_hooks(self, consumer: str) -> None:
        self._settle_hooks = {
            stream: hooks_for(self._by_stream[stream], events, self._outbox, consumer, self.counts)
            for stream, events in self._events.items()
        }
        self._hooks = {
            stream: tuple(hook for hook in hooks if hook.every_job) for stream, hooks in self._settle_hooks.items()
        }

    def request_stop(self) -> None:
        """Finish the jobs already fetched, settle them, then leave :meth:`run`."""
        self._stopping = True

    # -- signals from the supervisor -----------------------------------------------------
    #
    # Both handlers run on the main thread, between two bytecodes of whatever runs (usually a
    # job), and share the wire's urgent connection: one runs at a time; a signal arriving
    # while the other runs is taken by it before it returns.

    def on_long_job(self, _signum: int = 0, _frame: object = None) -> None:
        """The supervisor's long-job watcher says the running job has run long (SIGUSR1):
        take the unstarted rest of the batch, send the acks owed and hand the rest back now,
        on the wire's urgent connection, so idle workers take it while this job goes on."""
        self._on_signal(LONG_JOB_SIGNAL)

    def on_cancel(self, _signum: int = 0, _frame: object = None) -> None:
        """The supervisor says a job this worker may hold was cancelled (CANCEL_SIGNAL): read
        the cancel marks on the urgent connection; take marked jobs of the batch that have
        not started out of it (settled as cancelled by the main thread), hand the others back;
        raise :class:`qrun.JobCancelled` in the running job if it is marked (once per job).
        Whatever it could not resolve is checked again before the next job starts."""
        self._on_signal(CANCEL_SIGNAL)

    def _on_signal(self, signum: int) -> None:
        if self.wire is None:
            return
        self._signals_due.add(signum)
        if self._in_signal_handler:
            return  # the handler running now takes it before it returns
        self._in_signal_handler = True
        interrupt = None
        try:
            while self._signals_due:
                due = self._signals_due.pop()
                try:
                    if due == CANCEL_SIGNAL:
                        interrupt = self._act_on_cancel() or interrupt
                    else:
                        self._act_on_long_job()
                except Exception:  # never into the job: it is not the job's failure
                    log.exception("worker %d could not act on a signal from its supervisor now", os.getpid())
                    if due == CANCEL_SIGNAL:
                        self._check_cancels = True
        finally:
            self._in_signal_handler = False
        if interrupt is not None and self._in_job is interrupt and self._interrupted != interrupt[1]:
            self._interrupted = interrupt[1]
            raise JobCancelled(f"job {interrupt[2]} was cancelled")

    def _act_on_long_job(self) -> None:
        batch = self._batch
        rest = batch.cut() if batch is not None else []
        self._wire.urgent_flush_and_release(rest)

    def _act_on_cancel(self) -> tuple[Any, ...] | None:
        """The running job if it is marked cancelled (the caller raises in it)."""
        marks = self._wire.urgent_cancel_marks()
        if not any(marks.values()):
            return None

        def marked(job: tuple[Any, ...]) -> bool:
            return job[1] in marks.get(job[0], ())

        batch = self._holding
        if batch is not None and any(marked(job) for job in batch.jobs):
            rest = batch.cut()
            self._wire.held_cancelled.extend(job for job in rest if marked(job))
            self._wire.urgent_flush_and_release([job for job in rest if not marked(job)])
        running = self._in_job
        if running is not None and marked(running):
            return running
        # A mark this worker could not place: a read in flight, a job being taken. Check once
        # more before the next job starts (one round trip, then the flag is off again).
        self._check_cancels = True
        return None

    def _settle_held_cancelled(self) -> None:
        """Settle, on the main thread, the cancelled jobs this worker holds but will not run."""
        held = self._wire.held_cancelled
        while held:
            job = held[0]
            settle_cancelled(self._by_stream[job[0]], job, self._settle_hooks[job[0]], interrupted=False)
            held.pop(0)

    def _cancelled_before_start(self, entry: tuple[Any, ...]) -> bool:
        """After a cancel signal this worker could not place: is this job marked? (one check)"""
        self._check_cancels = False
        queue = self._by_stream[entry[0]]
        if queue.redis.zscore(queue.keys.cancel_entries, entry[1]) is None:
            return False
        self._wire.held_cancelled.append(entry)
        self._settle_held_cancelled()
        return True

    def run(self) -> None:
        """Fetch, run and settle jobs until :meth:`request_stop` is called (or it is time to
        recycle). A lost server does not end it: it reconnects with backoff and goes on."""
        wire = self._wire
        try:
            while not self._stopping and not self._orphaned() and not self._recycle_due():
                try:
                    self._fetch_and_run()
                except (ConnectionError, TimeoutError) as error:
                    wire.reconnect(error, self._keep_trying, self._polled)
        finally:
            self._settle_before_leaving()

    @property
    def _wire(self) -> Wire:
        if self.wire is None:
            raise RuntimeError("Worker.boot() first")
        return self.wire

    def _keep_trying(self) -> bool:
        return not self._stopping and not self._orphaned()

    def _polled(self) -> None:
        if self.slot is not None:
            self.slot.polled()

    def _fetch_and_run(self) -> None:
        if self.slot is not None:
            self.slot.polled()
        if self._stored_settings.check():  # an operator changed a queue's settings (qrun queue update)
            self._shortest_visibility_s = min(queue.visibility_timeout_s for queue in self.queues)
        wire = self._wire
        if wire.held_cancelled:
            self._settle_held_cancelled()
        reading_own_pending = wire.read_own_pending
        jobs, malformed = wire.fetch(self._read_count())
        for stream, entry_id, reason, raw_fields in malformed:
            queue = self._by_stream[stream]
            if not raw_fields and reading_own_pending:  # deleted while pending (a purge): nothing to run
                queue.redis.xack(queue.keys.stream, settings.CONSUMER_GROUP, entry_id)
            else:
                dead_letter_malformed(queue, entry_id, reason, raw_fields)
        if jobs:
            self._run_batch(jobs)

    def _recycle_due(self) -> bool:
        """True once this worker did its share of jobs or grew past its memory allowance."""
        if self._job_limit is not None and self.jobs_done >= self._job_limit:
            log.info("worker %d recycles after %d jobs (--max-jobs-per-worker)", os.getpid(), self.jobs_done)
            return True
        # Only after a job: a worker that starts above the limit must still make progress,
        # not be replaced before it does anything (a fork loop).
        if self._memory_limit_bytes is not None and self.jobs_done and time.monotonic() >= self._next_memory_check:
            self._next_memory_check = time.monotonic() + settings.MEMORY_CHECK_INTERVAL_S
            rss = psutil.Process().memory_info().rss
            if rss > self._memory_limit_bytes:
                log.info(
                    "worker %d recycles at %.0f MiB RSS (--max-memory-per-worker %d)",
                    os.getpid(), rss / 2**20, self.max_memory_mb,
                )
                return True
        return False

    def _settle_before_leaving(self) -> None:
        """Ack what finished even when the loop ended on an error (a lost connection, a task
        that called sys.exit()), so only the jobs that did not finish stay pending."""
        wire = self.wire
        if wire is None:
            return
        try:
            wire.retry_unreleased()
            wire.flush()  # a connection dropped by an error reconnects here
        except RedisError as error:
            log.error("worker %d could not ack %d finished job(s) (%s); they stay pending", os.getpid(), wire.owes_acks, error)
        finally:
            self.close()

    def close(self) -> None:
        """Close the worker's own connections (the queues' clients belong to their owners)."""
        if self.wire is not None:
            self.wire.close()
        self._close_schedstat()

    def _close_schedstat(self) -> None:
        if self._schedstat_fd is not None and self._schedstat_fd >= 0:
            os.close(self._schedstat_fd)
        self._schedstat_fd = None

    def _orphaned(self) -> bool:
        """True once the supervisor died: its replacement will reclaim what this one holds."""
        if os.getppid() != self._parent_pid:
            log.warning("worker %d: supervisor %d is gone; stopping", os.getpid(), self._parent_pid)
            return True
        return False

    def _read_count(self) -> int:
        """COUNT applies to each stream of a read: split the prefetch between the queues."""
        return max(1, self._prefetch // len(self._by_stream))

    # -- running -------------------------------------------------------------------------

    def _run_batch(self, jobs: list[tuple[Any, ...]]) -> None:
        """Run a fetched batch; hand back what is left if it runs long or a stop is requested.

        Prefetch is sized from the last batch, so it holds about BATCH_WORK_S of work. When a
        job turns slow mid-batch, the long-job handler hands the unstarted rest back while that
        job still runs, so idle workers take it; on SIGTERM the rest goes back after the
        current job.
        """
        wire = self._wire
        if self._stopping:  # TERM arrived while the read was in flight: start nothing more
            wire.release(jobs)
            return
        batch = Batch(jobs)
        waited_before = self._waited_s()
        # A minimal read (one entry per stream) is never cut short: handing back the other
        # queue's job would starve it behind this queue's slow ones.
        may_cut = self._read_count() > 1
        budget_s = 2 * settings.BATCH_WORK_S
        # The slot tells the supervisor this worker is busy and which entries it runs (one
        # write per batch, then one integer per job: how many it has started); a job is
        # described in it (with its hard deadline) only when it runs alone or has a hard
        # limit.
        self._describe_jobs = len(jobs) == 1
        slot = self.slot
        started = self._started
        progress: Any = _NO_SLOT
        at = 0
        if slot is not None:
            slot.busy(self.jobs_done)
            queue_indexes = bytes(self._queue_index[job[0]] for job in jobs) if len(self._by_stream) > 1 else None
            slot.batch_began(started, [job[1] for job in jobs], queue_indexes)
            progress, at = slot.ints, slot.started_at
        if may_cut:
            self._batch = batch  # the long-job handler may hand back the rest while a job runs
        self._holding = batch  # the cancel handler may take cancelled jobs out of it
        # Under a supervisor, its long-job watcher decides when a batch has waited long enough
        # (counting only time the worker ran, not time it waited for a CPU); a worker on its
        # own (in-process) judges by the wall clock after each job.
        cut_itself = may_cut and slot is None
        ack_every = countdown = self._ack_every
        batch_started = batch.started_at
        left = batch.jobs
        take = left.popleft
        try:
            while True:
                try:
                    job = take()  # atomic: once taken here, it is this job the handler cannot hand back
                except IndexError:
                    break
                started += 1
                progress[at] = started
                try:
                    self._perform(job)
                except BaseException:  # sys.exit() in a task, or the server gone mid-settle
                    wire.release_quietly(batch.cut())
                    raise
                if not left:
                    break
                countdown -= 1
                if not countdown:  # about ACK_WINDOW_S of work done: its acks leave now, unanswered
                    wire.send_ahead()
                    countdown = ack_every
                elapsed_s = time.perf_counter() - batch_started
                if (
                    self._stopping
                    or (cut_itself and elapsed_s > budget_s)
                    or elapsed_s > self._shortest_visibility_s / 2  # the rest may be reclaimed soon: never run twice
                ):
                    wire.release(batch.cut())
        finally:
            self._started = started
            self._batch = self._holding = None
            if slot is not None:
                slot.batch_ended()
                slot.idle(self.jobs_done)
            if wire.held_cancelled:
                self._settle_held_cancelled()
        if batch.cut_count:
            self._prefetch = 1  # slow jobs among fast ones: one at a time, idle workers take the rest
            return
        # The batch's own time: wall time minus the time this process sat waiting for a CPU
        # (schedstat, read before and after the batch). A worker preempted on a busy machine
        # (more workers than cores) is not running slow jobs: judged by the wall clock, its
        # fast batches looked slow, its prefetch fell back to 1 and it paid a round trip per
        # job while it grew back. Sleeping or waiting on I/O still counts, as before.
        job_s = max(0.0, time.perf_counter() - batch.started_at - (self._waited_s() - waited_before))
        average_s = job_s / len(jobs)
        # Acks leave every ACK_WINDOW_S of that time (a preempted worker must not send more often).
        self._ack_every = (
            max(1, min(settings.MAX_PREFETCH, int(settings.ACK_WINDOW_S * len(jobs) / job_s)))
            if job_s > 0 else settings.MAX_PREFETCH
        )
        if average_s >= settings.FAST_JOB_S or job_s > budget_s:
            self._prefetch = 1  # slow jobs (or one among fast ones): one at a time, idle workers take the rest
        elif len(jobs) >= self._read_count():
            fits = int(settings.BATCH_WORK_S / average_s) if average_s > 0 else settings.MAX_PREFETCH
            self._prefetch = max(1, min(self._prefetch * 2, settings.MAX_PREFETCH, fits))

    def _waited_s(self) -> float:
        """Seconds this process (its main thread, which runs the jobs) has waited for a CPU,
        from Linux schedstat: one ``pread`` of a file kept open (about 2 µs; opening it per
        read cost 16). 0.0 where the kernel does not say."""
        fd = self._schedstat_fd
        if fd is None:
            try:
                fd = self._schedstat_fd = os.open(f"/proc/{os.getpid()}/schedstat", os.O_RDONLY)
            except OSError:
                fd = self._schedstat_fd = -1
        if fd < 0:
            return 0.0
        try:
            return int(os.pread(fd, 128, 0).split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0

    def _perform(self, entry: tuple[Any, ...]) -> None:
        stream, entry_id, job_id, task_name, args, kwargs, attempt, enqueued_at = entry
        if self._check_cancels and self._cancelled_before_start(entry):
            return
        queue = self._by_stream[stream]
        task = queue.tasks.get(task_name)
        if task is None:
            reason = f"unknown task {task_name!r}: no imported queue declares it"
            dead_letter(queue, entry, reason, None, self._settle_hooks[stream])
            return
        limits = task.limits
        hooks = self._hooks[stream]
        slot = self.slot
        may_be_slow = self._describe_jobs or limits.hard_s is not None
        described = slot is not None and may_be_slow
        if hooks:
            call(hooks, "started", queue.name, entry)
            if may_be_slow:  # a job that runs alone or may be killed: what hooks gathered leaves now
                self._wire.send_ahead()
        if slot is not None:
            if described:
                slot.job_started(self.jobs_done, self._queue_index[stream], entry_id, job_id, task_name, limits.hard_s)
        token = _current.set((queue, entry))
        try:
            self._in_job = entry  # the cancel handler may raise JobCancelled in it from now
            try:
                if limits.soft_s is None:
                    result = task.run(*args, **kwargs)
                else:
                    with soft_time_limit(limits.soft_s):
                        result = task.run(*args, **kwargs)
            finally:
                self._in_job = None
        except Exception as error:  # the job's failure, never the worker's
            fail_attempt(queue, task, entry, error, self._settle_hooks[stream])
        else:
            # Hooks first: what they write goes ahead of the ack (qrun.hooks.Outbox); one may
            # settle the job itself (a result recorded and acked in one script).
            if hooks and succeeded(hooks, queue.name, entry, result):
                if task.unique is not None:
                    self._wire.after_acks(partial(task.release_unique, job_id, args, kwargs))
            elif task.unique is None:
                self._acks[stream].append(entry_id)
            else:  # its claim is freed once the ack is confirmed, not before
                self._wire.ack_later_then(stream, entry_id, partial(task.release_unique, job_id, args, kwargs))
        finally:
            _current.reset(token)
            self.jobs_done += 1
            if described:  # busy with the rest of the batch, no deadline any more
                slot.busy(self.jobs_done)  # type: ignore[union-attr]


#: Where a worker without a slot (in-process, tests) "writes" its progress.
_NO_SLOT = [0]


def consumer_name(pid: int, suffix: str | None = None) -> str:
    """A new consumer name for a worker: host and pid, so an operator can tell whose pending
    entries are whose, plus random bits, because neither is unique on its own (containers
    sharing a host name restart pids at 1; pids are reused). The supervisor picks it before
    the fork and treats it as the worker's identity."""
    return f"{socket.gethostname()}-{pid}-{suffix or os.urandom(3).hex()}"


def _ignore(_signum: int, _frame: object) -> None:
    """A handler that does nothing: unlike SIG_IGN it is not inherited by programs a job
    starts (exec resets handled signals to their default), so their Ctrl+C still works."""


def run_in_child(worker: Worker) -> None:
    """Body of a forked worker process; never returns (leaves with ``os._exit``)."""
    stop = worker.request_stop
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop())
    signal.signal(LONG_JOB_SIGNAL, worker.on_long_job)
    signal.signal(CANCEL_SIGNAL, worker.on_cancel)
    signal.signal(signal.SIGINT, _ignore)  # Ctrl+C reaches the supervisor, which decides
    signal.signal(signal.SIGHUP, _ignore)  # the supervisor's signal
    for ignored in (signal.SIGTTIN, signal.SIGTTOU):  # SIG_IGN: reading a terminal from the background gets EIO
        signal.signal(ignored, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    try:
        worker.boot()
    except RedisError as error:  # the server is away: a crash the supervisor retries with backoff
        log.error("worker %d could not reach the server: %s", os.getpid(), error)
        os._exit(1)
    except Exception:  # a bug or bad configuration: respawning would fail the same way
        log.exception("worker %d could not boot", os.getpid())
        os._exit(settings.EXIT_BOOT_FAILED)
    status = 0
    try:
        worker.run()
    except BaseException:  # incl. SystemExit from a task: log it, then leave by os._exit below
        log.exception("worker %d stopped on an error", os.getpid())
        status = 1
    finally:
        logging.shutdown()
    os._exit(status)
