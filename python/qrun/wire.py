"""The worker's side of the wire: its connection, the acks and events it owes, the reads.

A worker talks to the server in one round trip per batch: the acks of the jobs it finished
and the events it gathered are packed in front of the next blocking ``XREADGROUP`` and sent
as one write. This module owns that conversation, so :mod:`qrun.worker` only runs jobs:

- **acks** are owed per stream until the server confirmed them (``ack.lua`` is idempotent,
  so sending one twice is harmless). The main thread sends them with its next read, and
  ahead of it, without waiting for the reply, every ACK_WINDOW_S of work; the long-job
  handler (:mod:`qrun.batch`) sends a copy on the urgent connection when one job runs long.
  So a kill does not take along (and rerun) the jobs finished before it;
- **replies** of commands sent ahead without waiting (events of a job that may run long) are
  read before the next reply, so the connection stays in step;
- **handing back**: fetched jobs the worker will not start go to the end of their streams,
  uncharged (``release.lua``);
- **reconnecting** after the server went away, reading back what the worker still holds, and
  recreating consumer groups a server that lost its data no longer has.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import ConnectionError, NoScriptError, RedisError, ResponseError, TimeoutError

from . import codec, scripts, settings
from .connection import make_raw_connection
from .events import EventBatch
from .hooks import Outbox
from .queue import Queue
from .recovery import recreate_lost_groups

log = logging.getLogger("qrun.worker")

Entry = tuple[Any, ...]

#: acks taken to send: entry ids per stream, what to run once they are confirmed, and the
#: hooks' writes that go ahead of them (qrun.hooks.Outbox)
Owed = tuple[dict[bytes, list[str]], list[Callable[[], None]], list[tuple[scripts.Script, list[str], list[Any]]]]


#: no hooks' writes (shared, never appended to)
_NOTHING: list[Any] = []


def _is_nogroup(error: BaseException) -> bool:
    return "NOGROUP" in str(error)


class Wire:
    """One worker's connection to the server and what it owes the server."""

    def __init__(
        self, queues: Sequence[Queue], events: dict[bytes, EventBatch | None], read_block_ms: int, outbox: Outbox | None = None
    ) -> None:
        self.queues = list(queues)
        self.by_stream = {queue.keys.stream.encode(): queue for queue in self.queues}
        self.read_block_ms = read_block_ms
        self.consumer = ""
        #: after a reconnect: first read back what this worker still holds (id 0, not >)
        self.read_own_pending = False
        self._events = [batch for batch in {id(b): b for b in events.values() if b is not None}.values()]
        #: entry ids owed an ack, per stream; the dict stays, so the worker may hold it and
        #: append directly (``wire.acks[stream].append(entry_id)``); taking swaps the lists
        self.acks: dict[bytes, list[str]] = {stream: [] for stream in self.by_stream}
        self._after: list[Callable[[], None]] = []  # run once those acks are confirmed
        self._outbox = outbox if outbox is not None else Outbox()  # hooks' writes, sent ahead of the acks
        self._unreleased: list[Entry] = []  # cut by the long-job handler, hand-back failed: retried here
        #: jobs a hand-back left pending because they were cancelled meanwhile: the worker
        #: settles them as cancelled (qrun.settle.settle_cancelled)
        self.held_cancelled: list[Entry] = []
        #: commands sent ahead whose replies are still unread: (ack commands, their acks, event commands)
        self._sent: list[tuple[list[bytes], Owed, int]] = []
        self._read_order = list(self.by_stream)
        self._connection: Any = None
        self._urgent: Any = None  # the long-job handler's own connection, made on first use
        self._side = self.queues[0].redis  # pooled client for the odd command off the hot path

    # -- connection ------------------------------------------------------------------------

    def connect(self, consumer: str) -> None:
        self.consumer = consumer
        scripts.load_all(self._side)
        self._connection = make_raw_connection(self._side)
        self._connection.connect()

    def close(self) -> None:
        for connection in (self._connection, self._urgent):
            if connection is not None:
                connection.disconnect()
        self._connection = self._urgent = None

    def reconnect(self, error: Exception, keep_trying: Callable[[], bool], polled: Callable[[], None]) -> None:
        """Wait for the server with capped, jittered backoff; log once per outage.

        Unconfirmed acks are kept and sent again. Jobs fetched by a read whose reply was lost
        stay pending under this worker (kept hidden by its supervisor): they are read back
        before new ones.
        """
        log.warning("worker %d lost the server (%s); reconnecting", os.getpid(), error)
        lost_at = time.monotonic()
        delay_s = settings.RECONNECT_BASE_S
        while keep_trying():
            polled()  # waiting for the server is not being hung
            time.sleep(delay_s * (0.5 + random.random() / 2))
            delay_s = min(settings.RECONNECT_CAP_S, delay_s * 2)
            for _commands, taken, _events in self._sent:  # their replies are lost: send them again
                self._give_back_acks(taken)
            self._sent = []
            try:
                self._connection.disconnect()
                self._connection.connect()
                self._connection.send_command("PING")
                self._connection.read_response()
                scripts.load_all(self._side)  # a restarted server forgot them: acks must not bounce
            except (ConnectionError, TimeoutError, OSError):
                continue
            log.warning("worker %d reconnected after %.1fs", os.getpid(), time.monotonic() - lost_at)
            self.read_own_pending = True
            return

    # -- acks ------------------------------------------------------------------------------
    #
    # Only the main thread changes the acks owed: it appends, and takes them all by swapping
    # in empty ones. The long-job handler sends a copy of what is owed without taking it (an ack
    # is idempotent); the main thread sends and confirms them again with its next round trip.

    def ack_later(self, stream: bytes, entry_id: str) -> None:
        """A job finished: ack it with the next round trip (sent ahead within ACK_WINDOW_S).
        The worker's hot path appends to ``acks[stream]`` itself."""
        self.acks[stream].append(entry_id)

    def ack_later_then(self, stream: bytes, entry_id: str, after: Callable[[], None]) -> None:
        """Ack later, and run ``after`` once the server confirmed the ack (and before the
        next blocking read): a unique job frees its claim only then."""
        self.ack_later(stream, entry_id)
        self._after.append(after)

    def after_acks(self, after: Callable[[], None]) -> None:
        """Run ``after`` once everything sent with the next round trip is confirmed (a hook
        acked a unique job through the outbox: its claim is freed only then)."""
        self._after.append(after)

    @property
    def owes_acks(self) -> int:
        return sum(len(ids) for ids in self.acks.values())

    def _take_acks(self) -> Owed:
        acks = self.acks
        taken = {stream: ids for stream, ids in acks.items() if ids}
        for stream in taken:
            acks[stream] = []
        after, self._after = self._after, []
        return taken, after, self._outbox.take() if self._outbox.owed else _NOTHING

    def _give_back_acks(self, taken: Owed) -> None:
        """Unconfirmed: they go out again with the next round trip."""
        acks, after, writes = taken
        for stream, ids in acks.items():
            self.acks[stream][:0] = ids
        self._after[:0] = after
        if writes:
            self._outbox.give_back(writes)

    def _ack_commands(self, taken: Owed) -> list[bytes]:
        """The hooks' writes, then one ack script call per stream: a job's ack never reaches
        the server without what was written about it first."""
        group = settings.CONSUMER_GROUP.encode()
        writes = [self._pack(b"EVALSHA", script.sha, len(keys), *keys, *args) for script, keys, args in taken[2]]
        return writes + [
            self._pack(b"EVALSHA", scripts.ACK.sha, 2, stream, self.by_stream[stream].keys.stats, group, *ids)
            for stream, ids in taken[0].items() if ids
        ]

    @staticmethod
    def _confirmed(taken: Owed) -> None:
        for after in taken[1]:
            after()

    def flush(self) -> None:
        """Send every ack and event owed on the worker's connection and wait for the replies."""
        self.send_ahead()
        self._read_sent()

    def send_ahead(self) -> None:
        """Send the acks and events owed now, without waiting for the replies (read before
        the next reply): a finished job's ack leaves the process within ACK_WINDOW_S of the
        job, so a kill does not take it along, and no round trip is added."""
        taken = self._take_acks()
        commands = self._ack_commands(taken)
        events = self._event_commands()
        if not commands and not events:
            return
        try:
            self._connection.send_packed_command([b"".join([*commands, *events])])
        except BaseException:
            self._give_back_acks(taken)
            raise
        self._sent.append((commands, taken, len(events)))

    def _read_sent(self) -> None:
        """Read the replies to everything sent ahead, in order: confirm those acks, send
        again the ones a restarted server had no script for, raise the first other error
        once every reply is read (the connection stays in step)."""
        sent, self._sent = self._sent, []
        first_error: ResponseError | None = None
        for position, (commands, taken, events) in enumerate(sent):
            try:
                missing, error = self._read_replies(commands)
                self._read_event_replies(events)
                if error is None:
                    self._resend_after_reload(missing)
            except BaseException:
                for _commands, unconfirmed, _events in sent[position:]:
                    self._give_back_acks(unconfirmed)
                raise
            if error is not None:
                self._give_back_acks(taken)
                first_error = first_error or error
            else:
                self._confirmed(taken)
        if first_error is not None:
            raise first_error

    def urgent_flush_and_release(self, rest: list[Entry]) -> list[Entry]:
        """For the long-job and cancel handlers, on the urgent connection (the main one may be
        mid-command): send a copy of the acks owed (the main thread still sends and confirms
        them with its next read), the events gathered, and hand ``rest`` back. If the server
        is away, ``rest`` is kept and handed back before the next read. Returns the jobs of
        ``rest`` cancelled meanwhile: left pending, for the worker to settle as cancelled."""
        try:
            for script, keys, args in self._outbox.peek():  # what the acks must not overtake
                self._urgent_script(script, keys, args)
            for stream, ids in [(stream, ids[:]) for stream, ids in list(self.acks.items()) if ids]:
                queue = self.by_stream[stream]
                self._urgent_script(scripts.ACK, [queue.keys.stream, queue.keys.stats], [settings.CONSUMER_GROUP, *ids])
            for batch in self._events:
                for command in batch.commands():
                    self._urgent_script(scripts.PUBLISH_EVENTS, [], list(command[3:]))
        except (ConnectionError, TimeoutError, OSError) as error:
            log.debug("worker %d: urgent acks not sent (%s); they go with the next read", os.getpid(), error)
        except ResponseError as error:
            log.debug("worker %d: urgent ack refused (%s); the next read sends it again", os.getpid(), error)
        if not rest:
            return []
        kept: set[str] = set()
        try:
            for stream, ids in _ids_by_stream(rest).items():
                queue = self.by_stream[stream]
                _, cancelled = self._urgent_script(scripts.RELEASE, _release_keys(queue), [settings.CONSUMER_GROUP, *ids])
                kept.update(_entry_ids(cancelled))
            log.debug("worker %d handed back %d job(s) it will not start now", os.getpid(), len(rest) - len(kept))
        except (RedisError, OSError) as error:
            self._unreleased.extend(rest)
            log.warning("worker %d could not hand back %d job(s) yet (%s); retrying", os.getpid(), len(rest), error)
        cancelled = [job for job in rest if job[1] in kept]
        self.held_cancelled.extend(cancelled)
        return cancelled

    def urgent_cancel_marks(self) -> dict[bytes, set[str]]:
        """For the cancel handler, on the urgent connection: the entry ids marked cancelled
        in each stream this worker reads (``:cancel_entries``)."""
        marks: dict[bytes, set[str]] = {}
        for stream, queue in self.by_stream.items():
            connection = self._urgent_connection()
            try:
                connection.send_command("ZRANGE", queue.keys.cancel_entries, 0, -1)
                reply = connection.read_response()
            except (ConnectionError, TimeoutError, OSError):
                connection.disconnect()
                raise
            marks[stream] = {part.decode() if isinstance(part, bytes) else str(part) for part in reply or []}
        return marks

    def _urgent_connection(self) -> Any:
        if self._urgent is None:
            self._urgent = make_raw_connection(self._side)
        return self._urgent

    def _urgent_script(self, script: scripts.Script, keys: list[str], args: list[Any]) -> Any:
        """Run one script on the urgent connection, loading it once if the server lost it."""
        connection = self._urgent_connection()
        try:
            connection.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
            return connection.read_response()
        except NoScriptError:
            connection.send_command("SCRIPT", "LOAD", script.source)
            connection.read_response()
            connection.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
            return connection.read_response()
        except (ConnectionError, TimeoutError, OSError):
            connection.disconnect()  # reconnects on its next use
            raise

    # -- events ----------------------------------------------------------------------------

    def _event_commands(self) -> list[bytes]:
        """Publish commands for the events gathered since the last round trip (they ride
        along with the acks: no round trip of their own)."""
        if not self._events:
            return []
        return [self._pack(*command) for batch in self._events for command in batch.commands()]

    def _read_event_replies(self, count: int) -> None:
        """Events are best effort: an error (NOSCRIPT after a restart) only loses those events."""
        for _ in range(count):
            try:
                self._connection.read_response()
            except ResponseError:
                pass

    # -- reading ---------------------------------------------------------------------------

    def fetch(self, count: int) -> tuple[list[Entry], list[Entry]]:
        """Settle what finished and read the next batch (up to ``count`` per stream) in a
        single round trip. Returns (jobs, malformed entries).

        Acks with an after-action (a unique job's claim to free) are confirmed before the
        blocking read: a worker killed while it blocks must not leave claims behind.
        """
        self.retry_unreleased()
        if self._after:
            self.flush()
        reading_own = self.read_own_pending
        finished: set[str] = set()
        if reading_own:
            for owed in [self.acks, *(sent[1][0] for sent in self._sent)]:
                finished.update(entry_id for ids in owed.values() for entry_id in ids)
        self._read_sent()
        taken = self._take_acks()
        commands = self._ack_commands(taken)
        try:
            events = self._event_commands()
            self._connection.send_packed_command([b"".join([*commands, *events, self._read_command(count)])])
            missing, ack_error = self._read_replies(commands)
            self._read_event_replies(len(events))
            try:
                # The read blocks up to read_block_ms: never let a shorter socket_timeout cut it off.
                reply = self._connection.read_response(timeout=self.read_block_ms / 1000 + settings.READ_TIMEOUT_MARGIN_S)
            except ResponseError as error:
                if not _is_nogroup(error):
                    raise
                self._recreate_groups()
                reply = None
            if ack_error is not None:  # every reply is read, so the connection is in step: hand back, then fail
                jobs, malformed = codec.decode_read_reply(reply)
                self.release([*jobs, *malformed])
                raise ack_error
            self._resend_after_reload(missing)
        except BaseException:
            self._give_back_acks(taken)
            raise
        self._confirmed(taken)
        jobs, malformed = codec.decode_read_reply(reply)
        if reading_own:
            if not jobs and not malformed:
                self.read_own_pending = False  # all caught up: back to new entries
            # Jobs this worker already ran whose ack was refused or lost: never run them twice.
            jobs = [job for job in jobs if job[1] not in finished]
        return jobs, malformed

    def _read_command(self, count: int) -> bytes:
        streams = self._read_order
        if len(streams) > 1:
            streams.append(streams.pop(0))  # rotate, so no queue always comes last in a batch
        return self._pack(
            b"XREADGROUP", b"GROUP", settings.CONSUMER_GROUP.encode(), self.consumer,
            b"COUNT", count, b"BLOCK", self.read_block_ms,
            b"STREAMS", *streams, *([b"0" if self.read_own_pending else b">"] * len(streams)),
        )

    def _pack(self, *parts: Any) -> bytes:
        return b"".join(self._connection.pack_command(*parts))

    def _read_replies(self, commands: list[bytes]) -> tuple[list[bytes], ResponseError | None]:
        """Read one reply per ack command, all of them so the connection stays in step.

        Returns the commands the server had no script for, and the first other error. A
        missing group (the server lost its data) is no error: what those acks were for is gone.
        """
        missing = []
        first_error: ResponseError | None = None
        for command in commands:
            try:
                self._connection.read_response()
            except NoScriptError:
                missing.append(command)
            except ResponseError as error:
                if _is_nogroup(error):
                    self._recreate_groups()
                else:
                    first_error = first_error or error
        return missing, first_error

    def _resend_after_reload(self, commands: list[bytes]) -> None:
        """After a server restart emptied the script cache: load the scripts, ack again."""
        if not commands:
            return
        scripts.load_all(self._side)
        self._connection.send_packed_command([b"".join(commands)])
        still_missing, error = self._read_replies(commands)
        if error is not None:
            raise error
        if still_missing:
            raise NoScriptError("ack script missing right after SCRIPT LOAD")

    def _recreate_groups(self) -> None:
        """The server has no consumer group any more: it restarted without its data.
        Recreate the groups (the one process that does says so, loudly) and go on."""
        recreate_lost_groups(self.queues, f"worker {os.getpid()} found a consumer group missing")

    # -- handing back ----------------------------------------------------------------------

    def release(self, jobs: list[Entry]) -> list[Entry]:
        """Put fetched jobs this worker will not start back at the end of their streams,
        uncharged (main thread: the pooled client). Returns the jobs cancelled meanwhile:
        left pending, for the worker to settle as cancelled."""
        if not jobs:
            return []
        kept: set[str] = set()
        for stream, ids in _ids_by_stream(jobs).items():
            queue = self.by_stream[stream]
            _, cancelled = scripts.RELEASE(queue.redis, _release_keys(queue), [settings.CONSUMER_GROUP, *ids])
            kept.update(_entry_ids(cancelled))
        log.debug("worker %d handed back %d job(s) it will not start", os.getpid(), len(jobs) - len(kept))
        cancelled = [job for job in jobs if job[1] in kept]
        self.held_cancelled.extend(cancelled)
        return cancelled

    def retry_unreleased(self) -> list[Entry]:
        if not self._unreleased:
            return []
        jobs, self._unreleased = self._unreleased, []
        try:
            return self.release(jobs)
        except BaseException:
            self._unreleased.extend(jobs)
            raise

    def release_quietly(self, jobs: list[Entry]) -> None:
        """Hand back on the way out; a failure here only leaves them pending (the claimer
        redelivers them once this worker is gone, and settles cancelled ones)."""
        try:
            self.release(jobs)
        except RedisError as error:
            log.error("worker %d could not hand back %d unstarted job(s): %s", os.getpid(), len(jobs), error)


def _ids_by_stream(jobs: list[Entry]) -> dict[bytes, list[str]]:
    """Entry ids of decoded jobs, grouped by their stream (one script call per stream)."""
    grouped: dict[bytes, list[str]] = {}
    for job in jobs:
        grouped.setdefault(job[0], []).append(job[1])
    return grouped


def _entry_ids(cancelled: list[Any]) -> list[str]:
    """Entry ids in release.lua's list of cancelled jobs (entry id, job id, task, attempt, ...)."""
    return [part.decode() if isinstance(part, bytes) else str(part) for part in cancelled[::4]]


def _release_keys(queue: Queue) -> list[str]:
    """KEYS of release.lua for one queue."""
    return [queue.keys.stream, queue.keys.dead, queue.keys.stats, queue.keys.cancelled]
