"""Where a job is now, from what the server already holds.

The stream, its pending list, the delayed set and the dead stream already say where every
job is, whoever enqueued it (qrun, or another language by plain XADD): a job is *queued*
while its entry waits in the stream, *running* while a worker holds it (pending), *scheduled*
or *retrying* while it waits in the delayed set (first attempt, or a later one), *dead* in the
dead stream. Only what they cannot say is written, and only for jobs that need it: the
outcome (succeeded, dead, cancelled) of jobs whose task keeps results, cancellations, and the
record of times, worker and progress (qrun.lifecycle.records).

Finding a job by id in a stream means looking through it (entries are ordered by entry id):
``find_entry.lua`` reads FIND_SLICE entries per call; a job whose record names its entry is
found in one lookup.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from .. import scripts, settings
from ..connection import text as _text
from ..errors import JobNotFound
from ..keys import validate_job_id

if TYPE_CHECKING:
    from ..queue import Queue

#: Stream entries one find_entry.lua call looks at (about a millisecond of server time).
FIND_SLICE = 2_000

#: Every state a job can be in.
STATES = ("queued", "scheduled", "running", "retrying", "succeeded", "dead", "cancelled")
SETTLED = frozenset({"succeeded", "dead", "cancelled"})


@dataclass(frozen=True)
class JobStatus:
    """A job's state and what is known about it (fields are None when unknown)."""

    id: str
    queue: str
    state: str
    task: str | None = None
    attempt: int | None = None
    enqueued_at_ms: int | None = None
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    due_at_ms: int | None = None  #: scheduled / retrying: when it becomes ready
    worker: str | None = None  #: running: the consumer holding it
    entry_id: str | None = None
    deliveries: int | None = None
    progress: float | None = None
    progress_note: str | None = None
    progress_fields: dict[str, Any] | None = None
    cancel_requested: bool = False
    interrupted: bool | None = None  #: cancelled: True if it was running
    result: Any = None  #: succeeded, when the task keeps results
    has_result: bool = False
    error: dict[str, str] | None = None  #: dead: type, message, traceback
    reason: str | None = None  #: dead: why
    last_error: str | None = None

    @property
    def settled(self) -> bool:
        return self.state in SETTLED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Location:
    """Where a job's live copy is: ``kind`` is entry (the stream), delayed or dead."""

    kind: str
    id: str  #: entry id, delayed member or dead entry id
    fields: dict[str, str] = field(default_factory=dict)
    pending: tuple[str, int] | None = None  #: entry: (consumer, deliveries) if a worker holds it
    due_at_ms: int | None = None



def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def read_record(queue: Queue, job_id: str) -> tuple[dict[str, str], dict[str, Any] | None, bool]:
    """(record fields, outcome or None, cancel pending) in one round trip."""
    with queue.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(queue.keys.job(job_id))
        pipe.lrange(queue.keys.done(job_id), 0, 0)
        pipe.zscore(queue.keys.cancelled, job_id)
        raw, done, mark = pipe.execute()
    record = {_text(k): _text(v) for k, v in raw.items()}
    outcome = None
    if done:
        try:
            outcome = json.loads(done[0])
        except ValueError:
            outcome = None
    return record, outcome, mark is not None


def _scan_stream(queue: Queue, stream: str, job_id: str) -> tuple[str, dict[str, str]] | None:
    start = "-"
    while True:
        found, fields, last = scripts.FIND_ENTRY(queue.redis, [stream], [job_id, start, FIND_SLICE])
        if found:
            flat = [_text(part) for part in fields]
            return _text(found), dict(zip(flat[::2], flat[1::2]))
        if not last:
            return None
        start = "(" + _text(last)


def _entry_by_id(queue: Queue, entry_id: str, job_id: str) -> tuple[str, dict[str, str]] | None:
    try:
        entries = queue.redis.xrange(queue.keys.stream, entry_id, entry_id)
    except ResponseError:  # not an entry id
        return None
    if not entries:
        return None
    fields = {_text(k): _text(v) for k, v in (entries[0][1] or {}).items()}
    return (entry_id, fields) if fields.get("id") == job_id else None


def locate(queue: Queue, job_id: str, hint_entry: str | None = None) -> Location | None:
    """Find the job's live copy: its stream entry (and whether a worker holds it), its
    delayed member, or its dead letter. None if none of them has it."""
    found = _entry_by_id(queue, hint_entry, job_id) if hint_entry else None
    if found is None:
        found = _scan_stream(queue, queue.keys.stream, job_id)
    if found is not None:
        entry_id, fields = found
        pending = None
        try:
            info = queue.redis.xpending_range(queue.keys.stream, settings.CONSUMER_GROUP, entry_id, entry_id, 1)
        except ResponseError:  # NOGROUP: no worker ever read this queue
            info = []
        if info:
            pending = (_text(info[0]["consumer"]), int(info[0]["times_delivered"]))
        return Location("entry", entry_id, fields, pending)
    pattern = f'\\["{job_id}",*'  # '[' opens a class in a glob: escaped
    for member, score in queue.redis.zscan_iter(queue.keys.delayed, match=pattern, count=1000):
        try:
            values = json.loads(member)
            fields = dict(zip(("id", "task", "args", "kwargs", "attempt", "enqueued_at"), map(str, values)))
        except (ValueError, TypeError):
            fields = {"id": job_id}
        return Location("delayed", _text(member), fields, due_at_ms=int(score))
    dead = _scan_stream(queue, queue.keys.dead, job_id)
    if dead is not None:
        return Location("dead", dead[0], dead[1])
    return None


def not_found(queue: Queue, job_id: str) -> JobNotFound:
    return JobNotFound(
        f"job {job_id} is not known to queue {queue.name!r} (prefix {queue.prefix!r}): it was never "
        "enqueued there, or it settled and its record expired (a task without result_ttl keeps no "
        "record once it succeeds; dead letters are kept for the queue's dead_retention)",
        job_id,
    )


def status(queue: Queue, job_id: str) -> JobStatus:
    """The job's state now (see the module docstring). Raises :class:`qrun.JobNotFound`."""
    validate_job_id(job_id)
    for _ in range(2):  # a job that moved between two places while we looked: one more look
        record, outcome, cancel_pending = read_record(queue, job_id)
        if outcome is not None:
            return _settled(queue, job_id, record, outcome)
        where = locate(queue, job_id, record.get("entry"))
        if where is not None:
            return _live(queue, job_id, record, where, cancel_pending)
    # A cancel mark with no job and no outcome: the job settled (without keeping a result)
    # before the cancel reached it. Every cancelled job gets an outcome.
    raise not_found(queue, job_id)


def _common(record: dict[str, str]) -> dict[str, Any]:
    fields_json = record.get("progress_fields")
    return {
        "task": record.get("task") or None,
        "attempt": _int(record.get("attempt")),
        "enqueued_at_ms": _int(record.get("enqueued_at_ms")),
        "started_at_ms": _int(record.get("started_at_ms")),
        "finished_at_ms": _int(record.get("finished_at_ms")),
        "worker": record.get("worker") or None,
        "progress": float(record["progress"]) if record.get("progress") else None,
        "progress_note": record.get("progress_note") or None,
        "progress_fields": json.loads(fields_json) if fields_json else None,
        "last_error": record.get("last_error") or None,
        "cancel_requested": "cancel_requested_at_ms" in record,
    }


def _settled(queue: Queue, job_id: str, record: dict[str, str], outcome: dict[str, Any]) -> JobStatus:
    known = _common(record)
    for name in ("attempt", "finished_at_ms", "task", "started_at_ms", "worker"):  # the outcome says it last
        if outcome.get(name) not in (None, "", 0):
            known[name] = outcome[name]
    state = outcome.get("state", "unknown")
    return JobStatus(
        job_id, queue.name, state, **known,
        result=outcome.get("result"), has_result=state == "succeeded" and "result" in outcome,
        error=outcome.get("error"), reason=outcome.get("reason"), interrupted=outcome.get("interrupted"),
    )


def _live(queue: Queue, job_id: str, record: dict[str, str], where: Location, cancel_pending: bool) -> JobStatus:
    known = _common(record)
    fields = where.fields
    known["task"] = fields.get("task") or known["task"]
    known["attempt"] = _int(fields.get("attempt")) or known["attempt"]
    known["enqueued_at_ms"] = _int(fields.get("enqueued_at")) or known["enqueued_at_ms"]
    known["cancel_requested"] = known["cancel_requested"] or cancel_pending
    if where.kind == "dead":
        error = {"type": fields.get("dead_error_type", ""), "message": fields.get("dead_error", ""),
                 "traceback": fields.get("dead_traceback", "")}
        known["finished_at_ms"] = _int(fields.get("dead_at"))
        return JobStatus(job_id, queue.name, "dead", **known, error=error, reason=fields.get("dead_reason"),
                         entry_id=where.id)
    if where.kind == "delayed":
        state = "retrying" if (known["attempt"] or 1) > 1 else "scheduled"
        return JobStatus(job_id, queue.name, state, **known, due_at_ms=where.due_at_ms)
    if where.pending is not None:
        known["worker"] = where.pending[0]
        return JobStatus(job_id, queue.name, "running", **known, entry_id=where.id, deliveries=where.pending[1])
    known["started_at_ms"] = known["worker"] = None  # handed back or redelivered: waiting again
    return JobStatus(job_id, queue.name, "queued", **known, entry_id=where.id)


def queue_names(client: Any, prefix: str) -> list[str]:
    """Names of the queues under ``prefix`` that have keys on the server now (one SCAN)."""
    head = "{" + prefix + ":"
    names = set()
    for key in client.scan_iter(match=f"{{{prefix}:*}}:*", count=1000):
        text = _text(key)
        if text.startswith(head) and "}:" in text:
            names.add(text[len(head) : text.index("}:")])
    return sorted(names)


def find_job(queues: list[Queue], job_id: str) -> Queue:
    """The one of ``queues`` that knows the job (its record or outcome first, then where it
    lives). Raises JobNotFound if none does."""
    validate_job_id(job_id)
    if not queues:
        raise JobNotFound(f"job {job_id}: no queue has keys on this server", job_id)
    client = queues[0].redis
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.exists(queue.keys.job(job_id), queue.keys.done(job_id))
            pipe.zscore(queue.keys.cancelled, job_id)
        replies = pipe.execute()
    for index, queue in enumerate(queues):
        if replies[2 * index] or replies[2 * index + 1] is not None:
            return queue
    for queue in queues:
        if locate(queue, job_id) is not None:
            return queue
    names = ", ".join(queue.name for queue in queues)
    raise JobNotFound(
        f"job {job_id} is not known to any queue here ({names}): it was never enqueued, or it settled "
        "and its record expired (a task without result_ttl keeps no record once it succeeds)",
        job_id,
    )
