"""The pure-Python reference codec: this module *defines* qrun's wire format.

The Rust module ``qrun._codec`` implements the same three functions and must produce
byte-identical output and identical errors; ``tests/unit/test_codec_parity.py`` proves it
on generated inputs. ``docs/wire-format.md`` describes the same format for other languages.

A job is one stream entry with these fields, always in this order::

    id           job id (UTF-8 text, stable across retries)
    task         task name (UTF-8 text)
    args         JSON array of positional arguments
    kwargs       JSON object of keyword arguments
    attempt      decimal integer >= 1, the attempt this entry is for
    enqueued_at  decimal integer, milliseconds since the Unix epoch (0 = unknown)

JSON is compact (no spaces), UTF-8, with no NaN/Infinity and string keys only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from .errors import CodecError, PayloadError

#: Field names of a job entry, in the order producers write them.
FIELDS = (b"id", b"task", b"args", b"kwargs", b"attempt", b"enqueued_at")

#: Containers nested deeper than this are refused (guards the Rust encoder's stack too).
MAX_DEPTH = 200

#: Longest decimal accepted for ``attempt`` and ``enqueued_at`` (fits a signed 64-bit int).
MAX_DIGITS = 18

# A job tuple as decoded from a read:
#   (stream, entry_id, job_id, task, args, kwargs, attempt, enqueued_at_ms)
# A malformed entry:
#   (stream, entry_id, reason, raw_fields)

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
for _code in range(0x20):
    _ESCAPES.setdefault(chr(_code), f"\\u{_code:04x}")


def _dump_str(value: str, path: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadError(f"{path}: string is not valid Unicode (lone surrogate)", path) from None
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'


def dump_json(value: Any, path: str, depth: int = 0) -> str:
    """Encode ``value`` as compact JSON, refusing anything a JSON reader could not rebuild."""
    if depth > MAX_DEPTH:
        raise PayloadError(f"{path}: nested deeper than {MAX_DEPTH} levels (or circular)", path)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _dump_str(value, path)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PayloadError(f"{path}: {float.__repr__(value)} is not allowed in JSON", path)
        return float.__repr__(value)
    if isinstance(value, (list, tuple)):
        items = [dump_json(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value)]
        return "[" + ",".join(items) + "]"
    if isinstance(value, dict):
        members = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise PayloadError(
                    f"{path}: dict key of type {type(key).__name__} is not a string", path
                )
            member_path = f"{path}['{key}']"
            members.append(_dump_str(key, member_path) + ":" + dump_json(item, member_path, depth + 1))
        return "{" + ",".join(members) + "}"
    raise PayloadError(
        f"{path}: object of type {type(value).__name__} is not JSON-encodable", path
    )


def encode_payload(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[bytes, bytes]:
    """Return the ``args`` and ``kwargs`` field values for one job."""
    if not isinstance(args, (list, tuple)):
        raise PayloadError(f"args: expected a list or tuple, got {type(args).__name__}", "args")
    if not isinstance(kwargs, dict):
        raise PayloadError(f"kwargs: expected a dict, got {type(kwargs).__name__}", "kwargs")
    return dump_json(args, "args").encode("utf-8"), dump_json(kwargs, "kwargs").encode("utf-8")


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def pack_enqueue(
    sha: bytes,
    keys: Sequence[bytes],
    jobs: Sequence[tuple[str, str, Sequence[Any], dict[str, Any]]],
    attempt: int,
    enqueued_at_ms: int,
) -> bytes:
    """Build one RESP ``EVALSHA sha len(keys) *keys <6 values per job>`` command.

    ``jobs`` holds ``(job_id, task, args, kwargs)`` tuples. A bad argument raises
    :class:`PayloadError` whose ``job_index`` names the job in the batch.
    """
    head = [b"EVALSHA", sha, b"%d" % len(keys), *keys]
    out = [b"*%d\r\n" % (len(head) + 6 * len(jobs))]
    out.extend(_bulk(part) for part in head)
    attempt_field = _bulk(b"%d" % attempt)
    enqueued_field = _bulk(b"%d" % enqueued_at_ms)
    for index, job in enumerate(jobs):
        job_id, task, args, kwargs = job
        try:
            args_json, kwargs_json = encode_payload(args, kwargs)
        except PayloadError as error:
            raise PayloadError(str(error), error.path, index) from None
        out.append(_bulk(job_id.encode("utf-8")))
        out.append(_bulk(task.encode("utf-8")))
        out.append(_bulk(args_json))
        out.append(_bulk(kwargs_json))
        out.append(attempt_field)
        out.append(enqueued_field)
    return b"".join(out)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def load_json(raw: bytes) -> Any:
    """Parse strict JSON (UTF-8, no NaN/Infinity); raise ValueError on anything else."""
    return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)


def _parse_count(raw: bytes) -> int | None:
    if 0 < len(raw) <= MAX_DIGITS and raw.isdigit() and raw.isascii():
        return int(raw)
    return None


def _decode_fields(fields: list[Any]) -> tuple[str, str, tuple[Any, ...], dict[str, Any], int, int] | str:
    """Return the job's parts, or a reason string when the entry is not a valid job."""
    if len(fields) % 2:
        return "odd number of field names and values"
    values: dict[bytes, bytes] = {}
    for position in range(0, len(fields), 2):
        name, value = fields[position], fields[position + 1]
        if not isinstance(name, bytes) or not isinstance(value, bytes):
            return "field names and values must be strings"
        values[name] = value
    texts = {}
    for name in (b"id", b"task"):
        if name not in values:
            return f"missing field '{name.decode()}'"
        try:
            texts[name] = values[name].decode("utf-8")
        except UnicodeDecodeError:
            return f"field '{name.decode()}' is not valid UTF-8"
        if not texts[name]:
            return f"field '{name.decode()}' is empty"
    try:
        args = load_json(values.get(b"args", b"[]"))
    except ValueError:
        return "field 'args' is not valid JSON"
    if not isinstance(args, list):
        return "field 'args' is not a JSON array"
    try:
        kwargs = load_json(values.get(b"kwargs", b"{}"))
    except ValueError:
        return "field 'kwargs' is not valid JSON"
    if not isinstance(kwargs, dict):
        return "field 'kwargs' is not a JSON object"
    attempt = _parse_count(values.get(b"attempt", b"1"))
    if attempt is None or attempt < 1:
        return "field 'attempt' is not an integer >= 1"
    enqueued_at = _parse_count(values.get(b"enqueued_at", b"0"))
    if enqueued_at is None:
        return "field 'enqueued_at' is not a non-negative integer"
    return texts[b"id"], texts[b"task"], tuple(args), kwargs, attempt, enqueued_at


def _entry_id(raw: Any) -> str:
    if not isinstance(raw, bytes):
        raise CodecError(f"entry id must be a bulk string, got {type(raw).__name__}")
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise CodecError("entry id is not ASCII") from None


def decode_read_reply(reply: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Split a raw XREADGROUP reply into job tuples and malformed entries.

    ``reply`` is what the RESP parser returns: ``None`` (timeout) or a list of
    ``[stream, [[entry_id, [name, value, ...] or None], ...]]``. A reply of the wrong shape
    raises :class:`CodecError`; an entry that is not a valid job is returned as
    ``(stream, entry_id, reason, raw_fields)`` so the worker can dead-letter it.
    """
    jobs: list[tuple[Any, ...]] = []
    malformed: list[tuple[Any, ...]] = []
    if reply is None:
        return jobs, malformed
    if not isinstance(reply, list):
        raise CodecError(f"read reply must be an array, got {type(reply).__name__}")
    for stream_reply in reply:
        if not isinstance(stream_reply, list) or len(stream_reply) != 2:
            raise CodecError("each stream in a read reply must be a [name, entries] pair")
        stream, entries = stream_reply
        if not isinstance(stream, bytes) or not isinstance(entries, list):
            raise CodecError("stream name must be a bulk string and its entries an array")
        for entry in entries:
            if not isinstance(entry, list) or len(entry) != 2:
                raise CodecError("each entry must be an [id, fields] pair")
            entry_id = _entry_id(entry[0])
            fields = entry[1]
            if fields is None:
                malformed.append((stream, entry_id, "entry was deleted while pending", []))
                continue
            if not isinstance(fields, list):
                raise CodecError("entry fields must be an array or nil")
            decoded = _decode_fields(fields)
            if isinstance(decoded, str):
                malformed.append((stream, entry_id, decoded, list(fields)))
            else:
                jobs.append((stream, entry_id, *decoded))
    return jobs, malformed


def encode_delayed_member(
    job_id: str, task: str, args_json: bytes, kwargs_json: bytes, attempt: int, enqueued_at_ms: int
) -> bytes:
    """The member a delayed job is stored as in the ``delayed`` sorted set.

    A JSON array of the six field values as strings, in field order, so ``promote.lua`` can
    rebuild the stream entry with ``cjson.decode`` and nothing else.
    """
    values = [job_id, task, args_json.decode("utf-8"), kwargs_json.decode("utf-8"), str(attempt), str(enqueued_at_ms)]
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
