"""A worker process: read jobs from the shared consumer group, run them, settle each one.

Every delivered entry leaves the pending list in exactly one of three ways, each atomic on
the server: acked and deleted after success (``ack.lua``), rescheduled for another attempt
(``retry.lua``), or moved to the dead-letter stream with the reason (``dead.lua``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import traceback
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError, RedisError, ResponseError

from . import codec, scripts, settings
from .backoff import retry_delay_s
from .connection import make_raw_connection
from .errors import ConfigurationError, Retry
from .job import _current
from .queue import Queue
from .task import Task

log = logging.getLogger(__name__)


class Worker:
    """Runs the jobs of one or more queues, one at a time, in the calling process.

    ``__init__`` only stores settings, so a Worker can be built before ``fork()``;
    :meth:`boot` opens connections in the process that will run it.
    """

    def __init__(
        self,
        queues: Sequence[Queue],
        *,
        consumer: str | None = None,
        read_block_ms: int = settings.READ_BLOCK_MS,
    ) -> None:
        if not queues:
            raise ConfigurationError("a worker needs at least one queue")
        urls = {queue.url for queue in queues}
        if len(urls) > 1:
            raise ConfigurationError("every queue one worker serves must live on the same server")
        self.queues = list(queues)
        self.consumer = consumer
        self.read_block_ms = read_block_ms
        self.jobs_done = 0
        self._by_stream = {queue.keys.stream.encode(): queue for queue in self.queues}
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
            self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        first = self.queues[0]
        for queue in self.queues:
            queue.ensure_group()
        scripts.load_all(first.redis)
        self._connection = make_raw_connection(first.redis)
        self._connection.connect()
        self._parent_pid = os.getppid()

    def request_stop(self) -> None:
        """Finish the jobs already fetched, settle them, then leave :meth:`run`."""
        self._stopping = True

    def run(self) -> None:
        """Fetch, run and settle jobs until :meth:`request_stop` is called."""
        try:
            while not self._stopping and not self._orphaned():
                jobs, malformed = codec.decode_read_reply(self._fetch())
                for entry in malformed:
                    self._dead_letter_malformed(*entry)
                if jobs:
                    self._run_batch(jobs)
        finally:
            self._settle_before_leaving()

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
            b"STREAMS", *streams, *([b">"] * len(streams)),
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
        so sending them again after a failure is safe.
        """
        acks = self._ack_commands()
        self._connection.send_packed_command([b"".join([*acks, self._read_command()])])
        missing, ack_error = self._read_ack_replies(acks)
        # The read blocks up to read_block_ms: never let a shorter socket_timeout cut it off.
        reply = self._connection.read_response(timeout=self.read_block_ms / 1000 + settings.READ_TIMEOUT_MARGIN_S)
        if ack_error is not None:  # every reply is read, so the connection is in step; hand back, then fail
            jobs, malformed = codec.decode_read_reply(reply)
            self._release([*jobs, *malformed])
            raise ack_error
        self._resend_after_reload(missing)
        self._pending_acks = {}
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

    def _flush_acks(self) -> None:
        acks = self._ack_commands()
        if acks and self._connection is not None:
            self._connection.send_packed_command([b"".join(acks)])
            missing, error = self._read_ack_replies(acks)
            if error is not None:
                raise error
            self._resend_after_reload(missing)
        self._pending_acks = {}

    # -- running -------------------------------------------------------------------------

    def _run_batch(self, jobs: list[tuple[Any, ...]]) -> None:
        """Run a fetched batch; hand back what is left if it runs long or a stop is requested.

        Prefetch is sized from the last batch, so it holds about BATCH_WORK_S of work; when
        jobs turn slow mid-batch, or on SIGTERM, the jobs not started go back to the stream
        for idle workers (or the next worker) instead of waiting behind this one.
        """
        started = time.perf_counter()
        budget_s = 2 * settings.BATCH_WORK_S
        # A minimal read (one entry per stream) is never cut short: handing back the other
        # queue's job would starve it behind this queue's slow ones.
        may_cut = self._read_count() > 1
        last = len(jobs) - 1
        for index, job in enumerate(jobs):
            try:
                self._perform(job)
            except BaseException:  # sys.exit() in a task, or the server gone mid-settle
                self._release_quietly(jobs[index + 1 :])
                raise
            if index < last and (self._stopping or (may_cut and time.perf_counter() - started > budget_s)):
                self._release(jobs[index + 1 :])
                self._prefetch = 1
                return
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
            scripts.RELEASE(queue.redis, [queue.keys.stream], [settings.CONSUMER_GROUP, *ids])
        log.debug("worker %d handed back %d job(s) it will not start", os.getpid(), len(jobs))

    def _perform(self, entry: tuple[Any, ...]) -> None:
        stream, entry_id, job_id, task_name, args, kwargs, attempt, enqueued_at = entry
        queue = self._by_stream[stream]
        task = queue.tasks.get(task_name)
        if task is None:
            self._dead_letter(queue, entry, f"unknown task {task_name!r}: no imported queue declares it", None)
            return
        token = _current.set((queue.name, entry))
        try:
            task.func(*args, **kwargs)
        except Exception as error:  # the job's failure, never the worker's
            self._failed(queue, task, entry, error)
        else:
            self._pending_acks.setdefault(stream, []).append(entry_id)
        finally:
            _current.reset(token)
        self.jobs_done += 1

    def _failed(self, queue: Queue, task: Task[..., Any], entry: tuple[Any, ...], error: Exception) -> None:
        stream, entry_id, job_id, task_name, args, kwargs, attempt, enqueued_at = entry
        if attempt > task.policy.retries:
            self._dead_letter(queue, entry, f"failed {attempt} times; no retries left", error)
            return
        if isinstance(error, Retry) and error.delay is not None:
            delay_s = error.delay
        else:
            delay_s = retry_delay_s(attempt, task.policy.backoff_base_s, task.policy.backoff_cap_s)
        args_json, kwargs_json = _reencode(args, kwargs)
        member = codec.encode_delayed_member(job_id, task_name, args_json, kwargs_json, attempt + 1, enqueued_at)
        due_ms = time.time_ns() // 1_000_000 + int(delay_s * 1000)
        keys = [queue.keys.stream, queue.keys.delayed, queue.keys.stats]
        scripts.RETRY(queue.redis, keys, [settings.CONSUMER_GROUP, entry_id, due_ms, member])
        log.warning(
            "job %s (%s) attempt %d failed: %s: %s; retrying in %.2fs",
            job_id, task_name, attempt, type(error).__name__, error, delay_s,
        )

    # -- dead letters --------------------------------------------------------------------

    def _dead_letter(self, queue: Queue, entry: tuple[Any, ...], reason: str, error: Exception | None) -> None:
        _stream, entry_id, job_id, task_name, args, kwargs, attempt, enqueued_at = entry
        args_json, kwargs_json = _reencode(args, kwargs)
        fields: list[Any] = [
            b"id", job_id, b"task", task_name, b"args", args_json, b"kwargs", kwargs_json,
            b"attempt", attempt, b"enqueued_at", enqueued_at,
        ]
        self._move_to_dead(queue, entry_id, fields, reason, error)
        log.error("job %s (%s) dead-lettered: %s", job_id, task_name, reason, exc_info=error)

    def _dead_letter_malformed(self, stream: bytes, entry_id: str, reason: str, raw_fields: list[Any]) -> None:
        queue = self._by_stream[stream]
        self._move_to_dead(queue, entry_id, list(raw_fields), f"malformed entry: {reason}", None)
        log.error("entry %s of queue %s dead-lettered: malformed entry: %s", entry_id, queue.name, reason)

    def _move_to_dead(
        self, queue: Queue, entry_id: str, fields: list[Any], reason: str, error: Exception | None
    ) -> None:
        fields += [
            b"dead_reason", reason,
            b"dead_error_type", type(error).__name__ if error else "",
            b"dead_error", str(error) if error else "",
            b"dead_traceback", "".join(traceback.format_exception(error)) if error else "",
            b"dead_at", time.time_ns() // 1_000_000,
            b"dead_entry_id", entry_id,
        ]
        keys = [queue.keys.stream, queue.keys.dead, queue.keys.stats]
        scripts.DEAD(queue.redis, keys, [settings.CONSUMER_GROUP, entry_id, *fields])


def _reencode(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bytes, bytes]:
    """JSON of arguments that came from JSON; repr() stands in for the odd value JSON refuses."""
    try:
        return codec.encode_payload(args, kwargs)
    except ValueError:
        return repr(args).encode(), repr(kwargs).encode()


def run_in_child(worker: Worker) -> None:
    """Body of a forked worker process; never returns (leaves with ``os._exit``)."""
    stop = worker.request_stop
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the supervisor, which decides
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
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
