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
from typing import Any

import psutil
from redis.exceptions import ConnectionError, NoScriptError, RedisError, ResponseError, TimeoutError

from . import codec, scripts, settings
from .checks import count_setting
from .connection import make_raw_connection
from .errors import ConfigurationError
from .events import EventBatch
from .job import _current, _set_consumer
from .queue import Queue
from .settle import dead_letter, dead_letter_malformed, fail_attempt
from .slots import SlotWriter
from .time_limit import soft_time_limit

log = logging.getLogger(__name__)


class Worker:
    """Runs the jobs of one or more queues, one at a time, in the calling process.

    ``__init__`` only stores settings, so a Worker can be built before ``fork()``;
    :meth:`boot` opens connections in the process that will run it. ``max_jobs`` and
    ``max_memory_mb`` make it leave :meth:`run` (to be replaced by a fresh process) after
    about that many jobs, or once its RSS passes that many MiB; each gets up to
    RECYCLE_JITTER of random headroom so a fleet does not recycle in lockstep.
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
        self.jobs_done = 0
        self._by_stream = {queue.keys.stream.encode(): queue for queue in self.queues}
        self._queue_index = {queue.keys.stream.encode(): index for index, queue in enumerate(self.queues)}
        batches = {queue.prefix: EventBatch(queue.prefix) for queue in self.queues if queue.events}
        #: Where each stream's lifecycle events go (None: that queue publishes none).
        self._events: dict[bytes, EventBatch | None] = {
            stream: batches.get(queue.prefix) for stream, queue in self._by_stream.items()
        }
        self._event_batches = list(batches.values())
        self._unread_replies = 0  # replies to events sent ahead of a slow job, read with the next fetch
        self._read_own_pending = False  # after a reconnect: first read back what this worker holds
        self._describe_jobs = True  # write each job into the slot (set per batch by _run_batch)
        self._after_acks: list[tuple[Any, ...]] = []  # unique claims to free once acks are confirmed
        self._shortest_visibility_s = min(queue.visibility_timeout_s for queue in self.queues)
        self._job_limit: int | None = None
        self._memory_limit_bytes: int | None = None
        self._next_memory_check = 0.0
        self._read_order = list(self._by_stream)
        self._stopping = False
        self._connection: Any = None
        self._prefetch = 1
        self._parent_pid = 0
        self._pending_acks: dict[bytes, list[str]] = {}

    # -- lifecycle -----------------------------------------------------------------------

    def boot(self) -> None:
        """Open this process's connections, create the groups and load the scripts."""
        if self.consumer is None:
            self.consumer = consumer_name(os.getpid())
        _set_consumer(self.consumer)
        first = self.queues[0]
        for queue in self.queues:
            queue.ensure_group()
        scripts.load_all(first.redis)
        self._connection = make_raw_connection(first.redis)
        self._connection.connect()
        self._parent_pid = os.getppid()
        if self.slot is not None:  # booted: from now on an exit is not a boot failure
            self.slot.booted(os.getpid())
        jitter = 1 + random.random() * settings.RECYCLE_JITTER
        if self.max_jobs is not None:
            self._job_limit = int(self.max_jobs * jitter)
        if self.max_memory_mb is not None:
            self._memory_limit_bytes = int(self.max_memory_mb * jitter * 1024 * 1024)

    def request_stop(self) -> None:
        """Finish the jobs already fetched, settle them, then leave :meth:`run`."""
        self._stopping = True

    def run(self) -> None:
        """Fetch, run and settle jobs until :meth:`request_stop` is called (or it is time to
        recycle). A lost server does not end it: it reconnects with backoff and goes on."""
        try:
            while not self._stopping and not self._orphaned() and not self._recycle_due():
                try:
                    self._fetch_and_run()
                except (ConnectionError, TimeoutError) as error:
                    self._reconnect(error)
        finally:
            self._settle_before_leaving()

    def _fetch_and_run(self) -> None:
        if self.slot is not None:
            self.slot.polled()
        reading_own_pending = self._read_own_pending
        finished = {entry_id for ids in self._pending_acks.values() for entry_id in ids} if reading_own_pending else set()
        jobs, malformed = codec.decode_read_reply(self._fetch())
        if reading_own_pending:
            if not jobs and not malformed:
                self._read_own_pending = False  # all caught up: back to new entries
            # Jobs this worker already ran, acked in the same packet: if the ack was refused
            # (NOSCRIPT on a restarted server) the read still returned them; never run them twice.
            jobs = [job for job in jobs if job[1] not in finished]
        for stream, entry_id, reason, raw_fields in malformed:
            queue = self._by_stream[stream]
            if not raw_fields and reading_own_pending:  # deleted while pending (a purge): nothing to run
                queue.redis.xack(queue.keys.stream, settings.CONSUMER_GROUP, entry_id)
            else:
                dead_letter_malformed(queue, entry_id, reason, raw_fields)
        if jobs:
            self._run_batch(jobs)

    def _reconnect(self, error: Exception) -> None:
        """Wait for the server with capped, jittered backoff; log once per outage.

        Finished jobs' acks are kept and sent again (acking is idempotent). Jobs fetched in
        the read whose reply was lost stay pending under this worker and are redelivered by
        the claimer after the visibility timeout.
        """
        log.warning("worker %d lost the server (%s); reconnecting", os.getpid(), error)
        lost_at = time.monotonic()
        delay_s = settings.RECONNECT_BASE_S
        while not self._stopping and not self._orphaned():
            if self.slot is not None:
                self.slot.polled()  # waiting for the server is not being hung
            time.sleep(delay_s * (0.5 + random.random() / 2))
            delay_s = min(settings.RECONNECT_CAP_S, delay_s * 2)
            try:
                self._unread_replies = 0  # a new connection owes no replies
                self._connection.disconnect()
                self._connection.connect()
                self._connection.send_command("PING")
                self._connection.read_response()
            except (ConnectionError, TimeoutError, OSError):
                continue
            try:
                scripts.load_all(self.queues[0].redis)  # a restarted server forgot them: acks must not bounce
            except (ConnectionError, TimeoutError, OSError):
                continue
            log.warning("worker %d reconnected after %.1fs", os.getpid(), time.monotonic() - lost_at)
            # A read whose reply was lost left its entries pending here, kept hidden by the
            # supervisor while this worker lives: read them back before new ones.
            self._read_own_pending = True
            return

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
        try:
            self._flush_acks()  # a connection dropped by an error reconnects here
        except RedisError as error:
            count = sum(len(ids) for ids in self._pending_acks.values())
            log.error("worker %d could not ack %d finished job(s) (%s); they stay pending", os.getpid(), count, error)
        finally:
            self.close()

    def close(self) -> None:
        """Close the worker's own connection (the queues' clients belong to their owners)."""
        if self._connection is not None:
            self._connection.disconnect()
            self._connection = None

    def _orphaned(self) -> bool:
        """True once the supervisor died: its replacement will reclaim what this one holds."""
        if os.getppid() != self._parent_pid:
            log.warning("worker %d: supervisor %d is gone; stopping", os.getpid(), self._parent_pid)
            return True
        return False

    # -- fetching ------------------------------------------------------------------------

    def _read_count(self) -> int:
        """COUNT applies to each stream of a read: split the prefetch between the queues."""
        return max(1, self._prefetch // len(self._by_stream))

    def _read_command(self) -> bytes:
        streams = self._read_order
        if len(streams) > 1:
            streams.append(streams.pop(0))  # rotate, so no queue always comes last in a batch
        return self._pack(
            b"XREADGROUP", b"GROUP", settings.CONSUMER_GROUP.encode(), self.consumer,
            b"COUNT", self._read_count(), b"BLOCK", self.read_block_ms,
            b"STREAMS", *streams, *([b"0" if self._read_own_pending else b">"] * len(streams)),
        )

    def _ack_commands(self) -> list[bytes]:
        group = settings.CONSUMER_GROUP.encode()
        return [
            self._pack(b"EVALSHA", scripts.ACK.sha, 2, stream, self._by_stream[stream].keys.stats, group, *ids)
            for stream, ids in self._pending_acks.items()
        ]

    def _pack(self, *parts: Any) -> bytes:
        return b"".join(self._connection.pack_command(*parts))

    def _fetch(self) -> Any:
        """Settle the finished batch and read the next one in a single round trip.

        Acks are forgotten only once the server confirmed them; ``ack.lua`` is idempotent,
        so sending them again after a failure is safe. A batch that finished unique jobs
        acks first and frees their claims before the blocking read: a worker killed while it
        blocks must not leave claims that refuse new jobs until they expire.
        """
        if self._after_acks:
            self._flush_acks()
        acks = self._ack_commands() + self._event_commands()
        self._connection.send_packed_command([b"".join([*acks, self._read_command()])])
        self._read_unread_replies()
        missing, ack_error = self._read_ack_replies(acks)
        # The read blocks up to read_block_ms: never let a shorter socket_timeout cut it off.
        reply = self._connection.read_response(timeout=self.read_block_ms / 1000 + settings.READ_TIMEOUT_MARGIN_S)
        if ack_error is not None:  # every reply is read, so the connection is in step; hand back, then fail
            jobs, malformed = codec.decode_read_reply(reply)
            self._release([*jobs, *malformed])
            raise ack_error
        self._resend_after_reload(missing)
        self._acks_confirmed()
        return reply

    def _read_ack_replies(self, acks: list[bytes]) -> tuple[list[bytes], ResponseError | None]:
        """Read one reply per ack command, all of them so the connection stays in step.

        Returns the commands the server had no script for, and the first other error.
        """
        missing = []
        first_error: ResponseError | None = None
        for command in acks:
            try:
                self._connection.read_response()
            except NoScriptError:
                missing.append(command)
            except ResponseError as error:
                first_error = first_error or error
        return missing, first_error

    def _resend_after_reload(self, acks: list[bytes]) -> None:
        """After a server restart emptied the script cache: load the scripts, ack again."""
        if not acks:
            return
        scripts.load_all(self.queues[0].redis)
        self._connection.send_packed_command([b"".join(acks)])
        still_missing, error = self._read_ack_replies(acks)
        if error is not None:
            raise error
        if still_missing:
            raise NoScriptError("ack script missing right after SCRIPT LOAD")

    def _event_commands(self) -> list[bytes]:
        """Publish commands for the events gathered since the last round trip (they ride
        along with the acks: no round trip of their own)."""
        if not self._event_batches:
            return []
        return [self._pack(*command) for batch in self._event_batches for command in batch.commands()]

    def _send_events_ahead(self) -> None:
        """Before a job that may run long: publish its ``started`` now, not after it, without
        waiting for the reply (read with the next fetch, so no round trip is added)."""
        commands = self._event_commands()
        if commands:
            self._connection.send_packed_command([b"".join(commands)])
            self._unread_replies += len(commands)

    def _read_unread_replies(self) -> None:
        """Replies to events sent ahead come first on the connection; events are best
        effort, so an error (NOSCRIPT after a restart) only loses those events."""
        while self._unread_replies:
            self._unread_replies -= 1
            try:
                self._connection.read_response()
            except ResponseError:
                pass

    def _flush_acks(self) -> None:
        acks = self._ack_commands() + (self._event_commands() if self._connection is not None else [])
        if self._connection is not None:
            self._read_unread_replies()
        if acks and self._connection is not None:
            self._connection.send_packed_command([b"".join(acks)])
            missing, error = self._read_ack_replies(acks)
            if error is not None:
                raise error
            self._resend_after_reload(missing)
        self._acks_confirmed()

    def _acks_confirmed(self) -> None:
        self._pending_acks = {}
        for task, job_id, args, kwargs in self._after_acks:
            task.release_unique(job_id, args, kwargs)
        self._after_acks = []

    # -- running -------------------------------------------------------------------------

    def _run_batch(self, jobs: list[tuple[Any, ...]]) -> None:
        """Run a fetched batch; hand back what is left if it runs long or a stop is requested.

        Prefetch is sized from the last batch, so it holds about BATCH_WORK_S of work; when
        jobs turn slow mid-batch, or on SIGTERM, the jobs not started go back to the stream
        for idle workers (or the next worker) instead of waiting behind this one.
        """
        if self._stopping:  # TERM arrived while the read was in flight: start nothing more
            self._release(jobs)
            return
        started = time.perf_counter()
        budget_s = 2 * settings.BATCH_WORK_S
        # A minimal read (one entry per stream) is never cut short: handing back the other
        # queue's job would starve it behind this queue's slow ones.
        may_cut = self._read_count() > 1
        last = len(jobs) - 1
        # The slot tells the supervisor this worker is busy; each job is described in it (with
        # its hard deadline) only when it runs alone or has a hard limit, so fast batches pay
        # two slot writes per batch, not per job.
        self._describe_jobs = last == 0
        if self.slot is not None:
            self.slot.busy(self.jobs_done)
        try:
            for index, job in enumerate(jobs):
                try:
                    self._perform(job)
                except BaseException:  # sys.exit() in a task, or the server gone mid-settle
                    self._release_quietly(jobs[index + 1 :])
                    raise
                elapsed_s = time.perf_counter() - started
                if index < last and (
                    self._stopping
                    or (may_cut and elapsed_s > budget_s)
                    or elapsed_s > self._shortest_visibility_s / 2  # the rest may be reclaimed soon: never run twice
                ):
                    self._release(jobs[index + 1 :])
                    self._prefetch = 1
                    return
        finally:
            if self.slot is not None:
                self.slot.idle(self.jobs_done)
        elapsed_s = time.perf_counter() - started
        average_s = elapsed_s / len(jobs)
        if average_s >= settings.FAST_JOB_S or elapsed_s > budget_s:
            self._prefetch = 1  # slow jobs (or one among fast ones): one at a time, idle workers take the rest
        elif len(jobs) >= self._read_count():
            fits = int(settings.BATCH_WORK_S / average_s) if average_s > 0 else settings.MAX_PREFETCH
            self._prefetch = max(1, min(self._prefetch * 2, settings.MAX_PREFETCH, fits))

    def _release_quietly(self, jobs: list[tuple[Any, ...]]) -> None:
        """Hand back unstarted jobs on the way out; a failure here only leaves them pending."""
        try:
            self._release(jobs)
        except RedisError as error:
            log.error("worker %d could not hand back %d unstarted job(s): %s", os.getpid(), len(jobs), error)

    def _release(self, jobs: list[tuple[Any, ...]]) -> None:
        """Put fetched jobs this worker will not start back at the end of their streams."""
        if not jobs:
            return
        by_stream: dict[bytes, list[str]] = {}
        for job in jobs:
            by_stream.setdefault(job[0], []).append(job[1])
        for stream, ids in by_stream.items():
            queue = self._by_stream[stream]
            keys = [queue.keys.stream, queue.keys.dead, queue.keys.stats]
            scripts.RELEASE(queue.redis, keys, [settings.CONSUMER_GROUP, *ids])
        log.debug("worker %d handed back %d job(s) it will not start", os.getpid(), len(jobs))

    def _perform(self, entry: tuple[Any, ...]) -> None:
        stream, entry_id, job_id, task_name, args, kwargs, attempt, enqueued_at = entry
        queue = self._by_stream[stream]
        task = queue.tasks.get(task_name)
        if task is None:
            reason = f"unknown task {task_name!r}: no imported queue declares it"
            dead_letter(queue, entry, reason, None, self._events[stream])
            return
        limits = task.limits
        events = self._events[stream]
        if events is not None:
            events.add("started", queue.name, job_id, task_name, attempt)
            if self._describe_jobs:  # a job that runs alone may be slow: tell watchers now
                self._send_events_ahead()
        described = self.slot is not None and (self._describe_jobs or limits.hard_s is not None)
        if described:
            self.slot.job_started(self.jobs_done, self._queue_index[stream], entry_id, job_id, task_name, limits.hard_s)  # type: ignore[union-attr]
        token = _current.set((queue, entry))
        try:
            if limits.soft_s is None:
                task.func(*args, **kwargs)
            else:
                with soft_time_limit(limits.soft_s):
                    task.func(*args, **kwargs)
        except Exception as error:  # the job's failure, never the worker's
            fail_attempt(queue, task, entry, error, events)
        else:
            self._pending_acks.setdefault(stream, []).append(entry_id)
            if events is not None:
                events.add("succeeded", queue.name, job_id, task_name, attempt)
            if task.unique is not None:  # freed once the ack is confirmed, not before
                self._after_acks.append((task, job_id, args, kwargs))
        finally:
            _current.reset(token)
            self.jobs_done += 1
            if described:  # busy with the rest of the batch, no deadline any more
                self.slot.busy(self.jobs_done)  # type: ignore[union-attr]

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
