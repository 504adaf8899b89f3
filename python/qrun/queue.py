"""A named queue: its tasks, its keys, and the producer side (enqueue, delays, stats)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, overload

import redis
from redis.exceptions import NoScriptError, ResponseError

from . import codec, deadletters, scripts, settings
from .checks import count_setting, seconds_setting
from .connection import ProcessLocalClient
from .errors import ConfigurationError, PayloadError
from .events import EventBatch
from .job import EnqueuedJob
from .keys import QueueKeys, validate_job_id, validate_name, validate_task_name
from .locks import Lock
from .task import RetryPolicy, Task, TimeLimits
from .unique import unique_digest, unique_policy

F = TypeVar("F", bound=Callable[..., Any])
TaskRef = Task[..., Any] | str


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _new_job_id() -> str:
    """128 random bits as 32 hex digits (what uuid4().hex gives, minus its version bits)."""
    return os.urandom(16).hex()


def _new_job_ids(count: int) -> list[str]:
    """``count`` job ids from one urandom call: uuid4() per job was a third of enqueue_many's time."""
    pool = os.urandom(16 * count).hex()
    return [pool[start : start + 32] for start in range(0, 32 * count, 32)]


class Queue:
    """A queue of jobs on one Redis/Valkey stream, shared by every worker that serves it.

    ``url`` defaults to ``$QRUN_URL``, else ``redis://127.0.0.1:6379/0``; ``prefix``
    namespaces every key (one per deployment or tenant). ``retries``, ``backoff_base`` and
    ``backoff_cap`` (seconds) are the defaults of the queue's tasks.

    Delivery (see docs/operations.md): a job whose worker died is redelivered once it has
    been invisible for ``visibility_timeout`` seconds; after ``max_deliveries`` deliveries
    without an ack it is dead-lettered; dead letters are kept ``dead_retention`` seconds
    (``None``: forever).

    Results (see docs/operations.md): ``result_ttl`` (seconds) keeps each settled job's
    return value or error that long, for ``job.result()`` and ``qrun job``; off by default
    (a task may set its own). A return value larger than ``max_result_bytes`` of JSON
    dead-letters its job with the reason.
    """

    def __init__(
        self,
        name: str,
        url: str | None = None,
        *,
        prefix: str = settings.DEFAULT_PREFIX,
        retries: int = settings.DEFAULT_RETRIES,
        backoff_base: float = settings.DEFAULT_BACKOFF_BASE_S,
        backoff_cap: float = settings.DEFAULT_BACKOFF_CAP_S,
        visibility_timeout: float = settings.DEFAULT_VISIBILITY_TIMEOUT_S,
        max_deliveries: int = settings.DEFAULT_MAX_DELIVERIES,
        dead_retention: float | None = settings.DEFAULT_DEAD_RETENTION_S,
        events: bool = settings.DEFAULT_EVENTS,
        result_ttl: float | None = settings.DEFAULT_RESULT_TTL_S,
        max_result_bytes: int = settings.DEFAULT_MAX_RESULT_BYTES,
    ) -> None:
        self.name = validate_name("queue", name)
        #: Seconds a settled job's result is kept (the default of the queue's tasks; None: none kept).
        self.result_ttl_s = _result_ttl("result_ttl", result_ttl)
        self.max_result_bytes = count_setting("max_result_bytes", max_result_bytes, minimum=1)
        self.visibility_timeout_s = seconds_setting("visibility_timeout", visibility_timeout, minimum=1.0)
        self.max_deliveries = count_setting("max_deliveries", max_deliveries, minimum=1)
        self.dead_retention_s = None if dead_retention is None else seconds_setting("dead_retention", dead_retention, 0.0)
        if not isinstance(events, bool):
            raise ConfigurationError(f"events must be True or False, got {events!r}")
        #: Publish lifecycle events (enqueued, started, …) for `qrun events` (see qrun/events.py).
        self.events = events
        self.prefix = validate_name("prefix", prefix)
        self.keys = QueueKeys(self.prefix, self.name)
        self.default_policy = RetryPolicy(retries, backoff_base, backoff_cap)
        #: What the code said, for the settings an operator may store in the server
        #: (qrun.queue_settings): the server's record wins over these.
        self.code_settings: dict[str, Any] = {
            "visibility_timeout": self.visibility_timeout_s, "max_deliveries": self.max_deliveries,
            "dead_retention": self.dead_retention_s, "retries": self.default_policy.retries,
            "backoff_base": self.default_policy.backoff_base_s, "backoff_cap": self.default_policy.backoff_cap_s,
        }
        #: Version of the server's settings record applied (0: none yet).
        self.settings_version = 0
        self.tasks: dict[str, Task[..., Any]] = {}
        self._client = ProcessLocalClient(url)

    def __repr__(self) -> str:
        return f"<qrun.Queue {self.name!r} prefix={self.prefix!r}>"

    @property
    def url(self) -> str:
        """The server URL: the one given, else ``$QRUN_URL`` (read on first use), else the default."""
        return self._client.url

    @property
    def redis(self) -> redis.Redis:
        """This process's client for the queue's server (rebuilt after fork)."""
        return self._client.get()

    def close(self) -> None:
        """Close this process's connections to the server; the queue reconnects on next use."""
        self._client.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- declaring tasks ---------------------------------------------------------------

    @overload
    def task(self, func: F, /) -> Task[..., Any]: ...

    @overload
    def task(
        self,
        func: None = None,
        /,
        *,
        name: str | None = None,
        retries: int | None = None,
        backoff_base: float | None = None,
        backoff_cap: float | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        unique: bool = False,
        unique_key: Callable[..., str] | None = None,
        unique_for: float | None = None,
        result_ttl: float | None = None,
    ) -> Callable[[F], Task[..., Any]]: ...

    def task(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        retries: int | None = None,
        backoff_base: float | None = None,
        backoff_cap: float | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        unique: bool = False,
        unique_key: Callable[..., str] | None = None,
        unique_for: float | None = None,
        result_ttl: float | None = None,
    ) -> Any:
        """Register a function as a task of this queue (usable bare or with options).

        The task name defaults to ``module.qualname``; it is what travels in the job, so
        producers and workers must agree on it. ``soft_time_limit`` (seconds) raises
        :class:`qrun.TimeLimitExceeded` inside a run that takes longer; ``time_limit`` is the
        hard limit: the supervisor kills the worker and the run counts as a failed attempt.

        ``unique=True`` keeps at most one job per task and arguments waiting or running: an
        enqueue of a duplicate returns the existing job (``duplicate=True``) and adds nothing.
        ``unique_key(*args, **kwargs) -> str`` picks what makes jobs equal (implies unique);
        ``unique_for`` (seconds, default 1 h) bounds how long the claim lives if the job never
        succeeds or dies.

        ``result_ttl`` (seconds; default: the queue's) keeps each run's return value (JSON) or
        error that long after it settles: ``job.result()``, ``job.status()``, ``qrun job``.
        """
        unique_claim = unique_policy(unique, unique_key, unique_for)
        keep_s = self.result_ttl_s if result_ttl is None else _result_ttl("result_ttl", result_ttl)

        def register(function: Callable[..., Any]) -> Task[..., Any]:
            task_name = validate_task_name(
                name or f"{function.__module__}.{function.__qualname__}"
            )
            if task_name in self.tasks and self.tasks[task_name].func is not function:
                raise ConfigurationError(
                    f"queue {self.name!r} already has a task named {task_name!r}; "
                    "pass name=... to tell them apart"
                )
            default = self.default_policy
            policy = RetryPolicy(
                default.retries if retries is None else retries,
                default.backoff_base_s if backoff_base is None else backoff_base,
                default.backoff_cap_s if backoff_cap is None else backoff_cap,
            )
            limits = TimeLimits(soft_time_limit, time_limit)
            registered: Task[..., Any] = Task(
                self, function, task_name, policy, limits, unique_claim, keep_s, self.max_result_bytes
            )
            registered.own_policy = {"retries": retries, "backoff_base": backoff_base, "backoff_cap": backoff_cap}
            self.tasks[task_name] = registered
            return registered

        if func is not None:
            return register(func)
        return register

    @property
    def keeps_results(self) -> bool:
        """True when the queue or one of its tasks keeps results (its workers then record
        tracked jobs' state and outcome)."""
        return self.result_ttl_s is not None or any(task.result_ttl_s is not None for task in self.tasks.values())

    # -- following a job (qrun.lifecycle) ----------------------------------------------------

    def job(self, job_id: str) -> EnqueuedJob:
        """The handle of the job ``job_id`` of this queue, from its id alone (another process,
        a web request): ``status()``, ``result()``, ``cancel()``. The id is checked, not looked up."""
        return EnqueuedJob(validate_job_id(job_id), None, self.name, _queue=self)

    # -- enqueueing ----------------------------------------------------------------------

    def _task_name(self, task: TaskRef) -> str:
        if isinstance(task, Task):
            if task.queue is not self:
                raise ConfigurationError(
                    f"{task!r} belongs to queue {task.queue.name!r}, not {self.name!r}"
                )
            return task.name
        return validate_task_name(task)

    def enqueue(self, task: TaskRef, /, *args: Any, **kwargs: Any) -> EnqueuedJob:
        """Queue one job now; arguments are checked (JSON, signature) before anything is sent."""
        name = self._task_name(task)
        unique_task = self._unique_task(task, name)
        if unique_task is not None:
            return self._enqueue_unique(unique_task, args, kwargs, None)
        _check_signature(task, args, kwargs)
        job_id = _new_job_id()
        try:
            command = codec.pack_enqueue(
                scripts.ENQUEUE.sha, self._enqueue_keys(), [(job_id, name, args, kwargs)], 1, _now_ms()
            )
        except PayloadError as error:
            raise _explain(error, task, name) from None
        self._send_packed([command], self._enqueued_events([job_id], name))
        return EnqueuedJob(job_id, name, self.name, _queue=self)

    def enqueue_many(
        self,
        task: TaskRef,
        items: Iterable[Mapping[str, Any] | Sequence[Any]],
        *,
        batch_size: int = settings.ENQUEUE_BATCH_SIZE,
    ) -> list[str]:
        """Queue one job per item in a few round trips; return their ids in item order.

        Each item is a dict of keyword arguments or a tuple/list of positional arguments.
        Every item is encoded before the first batch is sent, so a bad argument enqueues
        nothing. Batches are atomic one by one, not as a whole, if the connection fails.
        """
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be >= 1, got {batch_size!r}")
        name = self._task_name(task)
        materialized = items if isinstance(items, (list, tuple)) else list(items)
        ids = _new_job_ids(len(materialized))
        jobs = [_job_tuple(ids[index], name, item, index) for index, item in enumerate(materialized)]
        _check_batch_signatures(task, jobs)
        unique_task = self._unique_task(task, name)
        if unique_task is not None:
            return self._enqueue_many_unique(unique_task, jobs, batch_size)
        keys = self._enqueue_keys()
        enqueued_at = _now_ms()
        commands = []
        for start in range(0, len(jobs), batch_size):
            try:
                commands.append(
                    codec.pack_enqueue(scripts.ENQUEUE.sha, keys, jobs[start : start + batch_size], 1, enqueued_at)
                )
            except PayloadError as error:
                index = start + (error.job_index or 0)
                raise _explain(error, task, name, index) from None
        self._send_packed(commands, self._enqueued_events(ids, name))
        return [job[0] for job in jobs]

    def enqueue_in(self, delay_s: float, task: TaskRef, /, *args: Any, **kwargs: Any) -> EnqueuedJob:
        """Queue one job to become ready after ``delay_s`` seconds."""
        if not isinstance(delay_s, (int, float)) or not delay_s >= 0:
            raise ConfigurationError(f"delay must be a number of seconds >= 0, got {delay_s!r}")
        return self._schedule(_now_ms() + int(delay_s * 1000), task, args, kwargs)

    def enqueue_at(self, when: datetime, task: TaskRef, /, *args: Any, **kwargs: Any) -> EnqueuedJob:
        """Queue one job to become ready at ``when`` (naive datetimes are local time)."""
        if not isinstance(when, datetime):
            raise ConfigurationError(f"enqueue_at needs a datetime, got {type(when).__name__}")
        return self._schedule(int(when.timestamp() * 1000), task, args, kwargs)

    def _schedule(self, due_ms: int, task: TaskRef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> EnqueuedJob:
        name = self._task_name(task)
        unique_task = self._unique_task(task, name)
        if unique_task is not None:
            return self._enqueue_unique(unique_task, args, kwargs, due_ms)
        _check_signature(task, args, kwargs)
        try:
            args_json, kwargs_json = codec.encode_payload(args, kwargs)
        except PayloadError as error:
            raise _explain(error, task, name) from None
        job_id = _new_job_id()
        member = codec.encode_delayed_member(job_id, name, args_json, kwargs_json, 1, _now_ms())
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.keys.delayed, {member: due_ms})
            pipe.hincrby(self.keys.stats, "enqueued", 1)
            pipe.execute()
        return EnqueuedJob(job_id, name, self.name, due_ms, _queue=self)

    def _enqueued_events(self, job_ids: list[str], task_name: str) -> list[tuple[object, ...]]:
        """The commands that publish ``enqueued`` for these jobs (none if events are off)."""
        if not self.events:
            return []
        batch = EventBatch(self.prefix)
        for job_id in job_ids:
            batch.add("enqueued", self.name, job_id, task_name, 1)
        return batch.commands()

    def _enqueue_keys(self) -> list[bytes]:
        return [self.keys.stream.encode(), self.keys.stats.encode()]

    # -- unique tasks (see qrun/unique.py) ---------------------------------------------------

    def _unique_task(self, task: TaskRef, name: str) -> Task[..., Any] | None:
        """The task if it is unique (also when named by a string and registered here), else None."""
        found = task if isinstance(task, Task) else self.tasks.get(name)
        return found if found is not None and found.unique is not None else None

    def _unique_args(
        self, task: Task[..., Any], args: Sequence[Any], kwargs: dict[str, Any], index: int | None = None
    ) -> tuple[bytes, bytes, str]:
        """The job's args and kwargs JSON and its unique key; nothing is sent."""
        try:
            args_json, kwargs_json = codec.encode_payload(args, kwargs)
        except PayloadError as error:
            raise _explain(error, task, task.name, index) from None
        return args_json, kwargs_json, self.keys.unique(unique_digest(task, args, kwargs))

    def _enqueue_unique(
        self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], due_ms: int | None
    ) -> EnqueuedJob:
        """Enqueue (or schedule, with ``due_ms``) unless an equal job holds the unique key;
        one script, so two producers racing cannot both add the job."""
        assert task.unique is not None
        _check_signature(task, args, kwargs)
        args_json, kwargs_json, unique_key = self._unique_args(task, args, kwargs)
        job_id = _new_job_id()
        now_ms = _now_ms()
        ttl_ms = max(1, int(task.unique.ttl_s * 1000))
        if due_ms is None:
            holder = scripts.ENQUEUE_UNIQUE(
                self.redis,
                [self.keys.stream, self.keys.stats, unique_key],
                [ttl_ms, job_id, task.name, args_json, kwargs_json, 1, now_ms],
            )
        else:  # the claim covers the wait too: it lives the delay plus unique_for
            member = codec.encode_delayed_member(job_id, task.name, args_json, kwargs_json, 1, now_ms)
            holder = scripts.ENQUEUE_UNIQUE_DELAYED(
                self.redis,
                [self.keys.delayed, self.keys.stats, unique_key],
                [ttl_ms + max(0, due_ms - now_ms), job_id, due_ms, member],
            )
        holder_id = holder.decode()
        if holder_id != job_id:
            return EnqueuedJob(holder_id, task.name, self.name, None, duplicate=True, _queue=self)
        return EnqueuedJob(job_id, task.name, self.name, due_ms, _queue=self)

    def _enqueue_many_unique(
        self, task: Task[..., Any], jobs: list[tuple[str, str, Sequence[Any], Any]], batch_size: int
    ) -> list[str]:
        """One unique enqueue per job, pipelined one batch per round trip; a duplicate (of a
        queued job, or of an earlier item) gets the id of the job it duplicates."""
        assert task.unique is not None
        prepared = [self._unique_args(task, args, kwargs, index) for index, (_, _, args, kwargs) in enumerate(jobs)]
        ttl_ms = max(1, int(task.unique.ttl_s * 1000))
        stream, stats = self.keys.stream, self.keys.stats
        enqueued_at = _now_ms()
        holders: list[str] = []
        for start in range(0, len(jobs), batch_size):
            # A resend after NOSCRIPT is safe: the unique scripts are idempotent per job id.
            replies = scripts.run_pipelined(self.redis, [
                (scripts.ENQUEUE_UNIQUE, [stream, stats, unique_key],
                 [ttl_ms, job_id, task.name, args_json, kwargs_json, 1, enqueued_at])
                for (job_id, *_), (args_json, kwargs_json, unique_key) in zip(
                    jobs[start : start + batch_size], prepared[start : start + batch_size]
                )
            ])
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            holders.extend(reply.decode() for reply in replies)
        return holders

    def _send_packed(self, commands: list[bytes], events: list[tuple[object, ...]] = []) -> None:  # noqa: B006
        """Send pre-built EVALSHA commands without waiting between them, then read every reply;
        ``events`` (publish commands) ride along in the same packets.

        After a server restart the script cache is empty: the commands that answered
        NOSCRIPT (and only those) are sent again once the scripts are loaded.
        """

        def send(connection: Any) -> None:
            published = [b"".join(connection.pack_command(*event)) for event in events]
            # The first chunk goes alone: on a server that lost its scripts, only it is refused,
            # not megabytes of pipelined chunks that would all have to be sent twice.
            first, rest = commands[:1], commands[1:]
            for group in (first + published, rest) if not rest else (first, rest + published):
                retry = _send_and_collect(connection, group) if group else []
                if retry:
                    scripts.load_all(self.redis)
                    if _send_and_collect(connection, retry):
                        raise NoScriptError("enqueue script missing after SCRIPT LOAD")

        self._client.call(send)

    # -- the consumer group and operations ------------------------------------------------

    def ensure_group(self) -> bool:
        """Create the stream and its consumer group at id 0 (idempotent, so order never
        matters). True if this call created the group, False if it was there."""
        try:
            self.redis.xgroup_create(self.keys.stream, settings.CONSUMER_GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
            return False
        return True

    def promote_due(self, now_ms: int | None = None, max_batches: int = 10) -> int:
        """Move delayed jobs that are due onto the stream, up to ``max_batches`` script calls
        (the rest next time); returns how many moved."""
        moved_total = 0
        for _ in range(max_batches):
            moved = scripts.PROMOTE(
                self.redis,
                [self.keys.delayed, self.keys.stream],
                [_now_ms() if now_ms is None else now_ms, settings.PROMOTE_BATCH_SIZE],
            )
            moved_total += moved
            if moved < settings.PROMOTE_BATCH_SIZE:
                break
        return moved_total

    def stats(self) -> dict[str, int]:
        """Counts of this queue's jobs: waiting, in flight, delayed, dead, and lifetime counters."""
        with self.redis.pipeline(transaction=True) as pipe:  # one consistent view (MULTI)
            pipe.xlen(self.keys.stream)
            pipe.zcard(self.keys.delayed)
            pipe.xlen(self.keys.dead)
            pipe.hgetall(self.keys.stats)
            pipe.xpending(self.keys.stream, settings.CONSUMER_GROUP)
            # XPENDING fails with NOGROUP before any worker started: then nothing is in flight.
            stream_len, delayed, dead, counters, pending = pipe.execute(raise_on_error=False)
        for reply in (stream_len, delayed, dead, counters):
            if isinstance(reply, Exception):
                raise reply
        in_flight = int(pending["pending"]) if isinstance(pending, dict) else 0
        result = {
            "ready": stream_len - in_flight,
            "in_flight": in_flight,
            "delayed": delayed,
            "dead": dead,
        }
        for counter in ("enqueued", "succeeded", "retried", "redelivered", "dead_lettered", "cancelled", "requeued"):
            result[counter] = 0
        for field, value in counters.items():
            result[field.decode()] = int(value)
        return result

    def dead_letters(self, limit: int = 20, *, task: str | None = None, since_s: float | None = None) -> list[dict[str, str]]:
        """The newest ``limit`` dead-lettered jobs, newest first, as text fields (see
        docs/wire-format.md: ``dead_id``, the job's fields plus ``dead_reason``, ``dead_error`` …);
        only those of ``task``, dead-lettered in the last ``since_s`` seconds, when given.
        Requeue, delete and show: :mod:`qrun.deadletters`."""
        return deadletters.list_dead(self, task=task, since_s=since_s, limit=limit)

    def is_idle(self) -> bool:
        """True when nothing is ready, in flight or delayed (every job has settled)."""
        with self.redis.pipeline(transaction=True) as pipe:  # both counts at one instant
            pipe.xlen(self.keys.stream)
            pipe.zcard(self.keys.delayed)
            stream_len, delayed = pipe.execute()
        return stream_len == 0 and delayed == 0

    def purge(self) -> None:
        """Delete every key of this queue: jobs, delayed jobs, dead letters, counters, leases,
        and the unique-job claims of the jobs deleted (held locks are left alone)."""
        self.redis.delete(self.keys.stream, self.keys.delayed, self.keys.dead, self.keys.stats, self.keys.leases)
        claims = list(self.redis.scan_iter(match=self.keys.unique("*"), count=1000))
        for start in range(0, len(claims), 1000):
            self.redis.delete(*claims[start : start + 1000])

    # -- locks ----------------------------------------------------------------------------

    def lock(self, name: str, *, ttl: float = 30.0, wait: float = 5.0, auto_extend: bool = True) -> Lock:
        """A distributed lock named ``name`` on this queue's server: ``with queue.lock("x"):``.

        ``ttl`` (seconds) bounds how long the lock outlives a holder that died; ``wait`` is how
        long acquiring keeps trying before it raises :class:`qrun.LockNotAcquired` (0: one
        try); ``auto_extend`` keeps extending it while held. See :class:`qrun.locks.Lock`.
        """
        return Lock(self, name, ttl=ttl, wait=wait, auto_extend=auto_extend)


def _result_ttl(name: str, value: float | None) -> float | None:
    """Seconds to keep results (>= 1), or None to keep none (``None`` or ``0``)."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0):
        return None
    return seconds_setting(name, value, minimum=1.0)


def _send_and_collect(connection: Any, commands: list[bytes]) -> list[bytes]:
    connection.send_packed_command(commands)  # a list: one sendall per command
    missing = []
    first_error: Exception | None = None
    for command in commands:
        try:
            connection.read_response()
        except NoScriptError:
            missing.append(command)
        except ResponseError as error:  # keep reading so the connection stays in step
            first_error = first_error or error
    if first_error is not None:
        raise first_error
    return missing


def _job_tuple(job_id: str, name: str, item: Any, index: int) -> tuple[str, str, Sequence[Any], Any]:
    if isinstance(item, (tuple, list)):
        return (job_id, name, item, {})
    if isinstance(item, Mapping):
        return (job_id, name, (), item if isinstance(item, dict) else dict(item))
    raise PayloadError(
        f"enqueue_many item {index} is a {type(item).__name__}: pass a dict of keyword "
        "arguments or a tuple of positional arguments",
        "",
        index,
    )


def _check_signature(task: TaskRef, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Fail at enqueue time, not on a worker, when the arguments cannot bind to the task."""
    if isinstance(task, Task) and task.signature is not None:
        try:
            task.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"cannot enqueue {task.name}: {error}") from None


def _check_batch_signatures(task: TaskRef, jobs: list[tuple[str, str, Sequence[Any], Any]]) -> None:
    """The signature check of :meth:`Queue.enqueue` for every item, bound once per shape
    (positional count and keyword names), so a uniform batch costs one check."""
    if not isinstance(task, Task) or task.signature is None:
        return
    checked: set[tuple[int, frozenset[str]]] = set()
    for index, (_job_id, _name, args, kwargs) in enumerate(jobs):
        shape = (len(args), frozenset(kwargs))
        if shape in checked:
            continue
        try:
            _check_signature(task, tuple(args), kwargs)
        except TypeError as error:
            raise TypeError(f"{error} (item {index} of the batch)") from None
        checked.add(shape)


def _explain(error: PayloadError, task: TaskRef, name: str, index: int | None = None) -> PayloadError:
    """Reword a codec error so it names the task, the argument and (in a batch) the item."""
    if not error.path:
        return error
    argument = task.argument_name(error.path) if isinstance(task, Task) else error.path
    where = f" (item {index} of the batch)" if index is not None else ""
    return PayloadError(
        f"cannot enqueue {name}{where}: argument {argument!r} is not JSON-encodable: {error} "
        "(use str, int, float, bool, None, lists and dicts with string keys)",
        error.path,
        index,
    )
