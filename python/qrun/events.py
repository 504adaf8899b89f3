"""Job lifecycle events on pub/sub: a channel per job and one ``all`` channel, published in batches.

Channels (under the deployment's prefix, as wfe-valkey lays them out)::

    <prefix>:events:all            every event; each message is a JSON ARRAY of event objects
    <prefix>:events:job:<job id>   one job's events; each message is one JSON object

An event is a compact JSON object::

    {"event":"retrying","job":"6f1c…","task":"app.send_email","queue":"emails","attempt":1,
     "at_ms":1764125000000,"delay_s":1.5}

``event`` is one of ``enqueued``, ``started``, ``progress``, ``succeeded``, ``retrying``,
``failed``, ``dead``, ``cancelled``. ``failed`` means an attempt failed; it is followed by
``retrying`` or ``dead``. ``succeeded``, ``dead`` and ``cancelled`` are terminal. Optional
fields: ``error`` (``"Type: message"``, short), ``delay_s`` (on ``retrying``), ``reason`` (on
``dead``), ``progress``, ``note`` and ``fields`` (on ``progress``), ``interrupted`` (on
``cancelled``: true if it was running). ``progress`` and ``cancelled`` are published on every
queue, even one without ``events=True`` (progress is rate-limited, cancels are rare).

Cost: :class:`EventBatch` collects events as tuples (no JSON, no I/O) and turns them into one
``EVALSHA publish_events.lua`` per ~1 000 events, which publishes each on its job channel and
the whole batch as ONE message on the ``all`` channel. So the hot path pays no round trip
per job, and ``all`` costs one publish per batch; subscribers of ``all`` receive arrays.

Pub/sub is fire-and-forget: events published while nobody listens are gone, and a
subscriber that falls behind may be disconnected by the server's output buffer limit.
Events describe what happened; the streams remain the record of truth.
"""

from __future__ import annotations

import json
import time
from json.encoder import encode_basestring as _string  # a JSON string literal; C-accelerated
from collections.abc import Iterable
from typing import Any

import redis

from . import scripts
from .keys import validate_name

#: Every event name, in the order a job meets them.
EVENTS = ("enqueued", "started", "progress", "succeeded", "retrying", "failed", "dead", "cancelled")

#: Events after which a job has no more.
TERMINAL_EVENTS = frozenset({"succeeded", "dead", "cancelled"})

#: Events per EVALSHA; a larger batch blocks the server longer in one script call.
EVENTS_PER_COMMAND = 1_000

#: Longest ``error`` text an event carries (the dead stream keeps the full message and traceback).
MAX_ERROR_CHARS = 200

_KNOWN = frozenset(EVENTS)
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def all_channel(prefix: str) -> str:
    """The channel that carries every event of a deployment, as JSON arrays (one per batch)."""
    return f"{prefix}:events:all"


def job_channel_prefix(prefix: str) -> str:
    """What a job's channel name starts with; the job id follows."""
    return f"{prefix}:events:job:"


def job_channel(prefix: str, job_id: str) -> str:
    """The channel of one job's events, one JSON object per message."""
    return f"{job_channel_prefix(prefix)}{job_id}"


def error_text(error: BaseException, limit: int = MAX_ERROR_CHARS) -> str:
    """``"Type: message"`` of an exception, cut to ``limit`` characters, for the ``error`` field."""
    message = str(error)
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def encode_event(
    event: str, queue: str, job_id: str, task: str, attempt: int, at_ms: int, extra: dict[str, object] | None = None
) -> str:
    """The JSON message of one event: the fixed fields in order, then the extra ones that are not None.

    Exactly what ``json.dumps(..., separators=(",", ":"), ensure_ascii=False)`` gives, built
    with one f-string: the dict and encoder of json.dumps cost 5 times more, per event.
    """
    text = (
        f'{{"event":{_string(event)},"job":{_string(job_id)},"task":{_string(task)},'
        f'"queue":{_string(queue)},"attempt":{attempt:d},"at_ms":{at_ms:d}'
    )
    if extra:
        text += "".join(f",{_string(name)}:{_encode(value)}" for name, value in extra.items() if value is not None)
    return text + "}"


def decode_message(data: bytes | str) -> list[dict[str, Any]]:
    """The events in one pub/sub message: an ``all`` array or a job channel's single object.

    Raises ValueError when the message is not qrun's (not JSON, or not objects).
    """
    value = json.loads(data)
    events = value if isinstance(value, list) else [value]
    if not all(isinstance(event, dict) and isinstance(event.get("event"), str) for event in events):
        raise ValueError("not a qrun event message")
    return events


class EventBatch:
    """Events waiting to be published, sent together in one round trip.

    ``add`` only appends a tuple (the time is taken then); JSON is built when the batch is
    turned into commands. Appending and taking the batch are each atomic under the GIL, so
    one thread may add while another publishes; events of one batch keep their order.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = validate_name("prefix", prefix)
        self._all = all_channel(self.prefix).encode()
        self._job_prefix = job_channel_prefix(self.prefix).encode()
        self._items: list[tuple[str, str, str, str, int, int, dict[str, object] | None]] = []

    def add(self, event: str, queue: str, job_id: str, task: str, attempt: int, **extra: object) -> None:
        """Record one event now (about a microsecond: a tuple and the clock).

        ``extra``: ``error``, ``delay_s``, ``reason`` (None values are left out); ``at_ms``
        overrides when the event happened (default: now).
        """
        if event not in _KNOWN or type(attempt) is not int:
            raise ValueError(
                f"event must be one of {', '.join(EVENTS)} and attempt an int, got {event!r}, {attempt!r}"
            )
        at_ms = extra.pop("at_ms", None) if extra else None
        if type(at_ms) is not int:
            at_ms = time.time_ns() // 1_000_000
        self._items.append((event, queue, job_id, task, attempt, at_ms, extra or None))

    def __len__(self) -> int:
        return len(self._items)

    def commands(self) -> list[tuple[object, ...]]:
        """Commands that publish every event added so far, then an empty batch; ``[]`` if empty.

        Each is an argument tuple ``("EVALSHA", sha, 0, all, job prefix, id, message, …)`` for
        ``connection.pack_command(*command)`` or ``pipeline.execute_command(*command)``, with at
        most :data:`EVENTS_PER_COMMAND` events. After a server restart EVALSHA answers NOSCRIPT:
        the caller loads the scripts (``scripts.load_all``) and sends the refused commands again.
        """
        items, self._items = self._items, []
        return list(_commands(items, self._all, self._job_prefix))

    def publish(self, client: redis.Redis) -> None:
        """Send every event added so far in one pipeline; on NOSCRIPT, load the script and resend."""
        commands = self.commands()
        if not commands:
            return
        # Each command is ("EVALSHA", sha, 0, *args): the script's arguments start at [3].
        for reply in scripts.run_pipelined(client, [(scripts.PUBLISH_EVENTS, [], command[3:]) for command in commands]):
            if isinstance(reply, Exception):
                raise reply


def publish_one(client: redis.Redis, prefix: str, event: str, queue: str, job_id: str, task: str, attempt: int,
                **extra: object) -> None:
    """Publish one event now, best effort (a lost event is only a lost event): for the rare
    ones that go out on every queue (``cancelled``)."""
    batch = EventBatch(prefix)
    batch.add(event, queue, job_id, task, attempt, **extra)
    try:
        batch.publish(client)
    except redis.RedisError:
        pass


def _commands(
    items: list[tuple[str, str, str, str, int, int, dict[str, object] | None]], all_name: bytes, job_prefix: bytes
) -> Iterable[tuple[object, ...]]:
    sha = scripts.PUBLISH_EVENTS.sha
    for start in range(0, len(items), EVENTS_PER_COMMAND):
        arguments: list[object] = ["EVALSHA", sha, 0, all_name, job_prefix]
        append = arguments.append
        for event, queue, job_id, task, attempt, at_ms, extra in items[start : start + EVENTS_PER_COMMAND]:
            append(job_id)
            if extra is None:  # encode_event inlined (a third of the cost per event): same bytes
                append(
                    f'{{"event":{_string(event)},"job":{_string(job_id)},"task":{_string(task)},'
                    f'"queue":{_string(queue)},"attempt":{attempt:d},"at_ms":{at_ms:d}}}'
                )
            else:
                append(encode_event(event, queue, job_id, task, attempt, at_ms, extra))
        yield tuple(arguments)
