"""``current_job().progress(...)``: how far a running job got, stored, published and a heartbeat.

One write at most per PROGRESS_INTERVAL_S per job (a MULTI of: the record's progress fields,
the lease renewal, and the ``progress`` event on the job's channel and ``all``). A call
sooner than that after the last write is dropped (it returns False), so a tight loop
reporting progress costs the server a few commands a second, not one per call.
"""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Any

from .. import settings
from ..errors import ConfigurationError, PayloadError
from ..events import all_channel, encode_event, job_channel
from ..job import hold
from . import records

if TYPE_CHECKING:
    from ..job import Job
    from ..queue import Queue

#: (entry id, monotonic time of its last write) of the job reporting in this process
_last: tuple[str, float] = ("", 0.0)


def report(queue: Queue, job: Job, consumer: str, fraction: float | None, note: str | None, fields: dict[str, Any]) -> bool:
    """Check the report, then write it unless one was written for this job within the interval."""
    global _last
    if fraction is not None and (
        isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not math.isfinite(fraction)
        or not 0 <= fraction <= 1
    ):
        raise ConfigurationError(f"progress fraction must be a number from 0 to 1, got {fraction!r}")
    if note is not None and not isinstance(note, str):
        raise ConfigurationError(f"progress note must be a string, got {type(note).__name__}")
    try:
        fields_json = json.dumps(fields, separators=(",", ":"), allow_nan=False, ensure_ascii=False) if fields else ""
    except (TypeError, ValueError) as error:
        raise PayloadError(f"progress fields must be JSON: {error}") from None
    now = time.monotonic()
    entry_id, written_at = _last
    if entry_id == job.entry_id and now - written_at < settings.PROGRESS_INTERVAL_S:
        return False
    _last = (job.entry_id, now)
    at_ms = records.now_ms()
    extra: dict[str, object] = {"progress": fraction, "note": note, "fields": fields or None}
    event = encode_event("progress", queue.name, job.id, job.task, job.attempt, at_ms, extra)
    lease_until = at_ms + int(queue.visibility_timeout_s * 1000)
    record: list[Any] = ["state", "running", "task", job.task, "attempt", job.attempt, "entry", job.entry_id,
                         "worker", consumer, "progress_at_ms", at_ms]
    record += ["progress", repr(float(fraction)) if fraction is not None else ""]
    record += ["progress_note", note or "", "progress_fields", fields_json]
    with queue.redis.pipeline(transaction=True) as pipe:
        pipe.hset(queue.keys.job(job.id), items=record)
        pipe.pexpire(queue.keys.job(job.id), int(settings.JOB_RECORD_TTL_S * 1000))
        hold(pipe, queue, job.entry_id, consumer, lease_until)
        pipe.publish(job_channel(queue.prefix, job.id), event)
        pipe.publish(all_channel(queue.prefix), f"[{event}]")
        pipe.execute()
    return True
