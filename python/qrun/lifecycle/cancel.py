"""Cancel a job, durably, wherever it is.

- **Queued** (its entry waits in the stream, no worker holds it) or **delayed**: ``cancel.lua``
  removes it and records it cancelled in one atomic step; it never runs.
- **Held by a worker** (fetched in a batch, or running): ``cancel.lua`` marks it (job id in
  ``:cancelled``, entry id in ``:cancel_entries``). Every supervisor reads the entry marks each
  maintenance tick and signals its workers serving the queue (CANCEL_SIGNAL); the worker
  holding the entry hands it back as cancelled if it has not started it, or raises
  :class:`qrun.JobCancelled` inside it; the supervisor kills the worker if the job still runs
  CANCEL_GRACE_S later. The marks make it durable: handing back (``release.lua``), retrying
  (``retry.lua``) and redelivering after a crash (``reclaim.lua``) all drop a marked job
  instead of letting it run again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import scripts, settings
from ..errors import QrunError
from ..events import publish_one
from ..keys import validate_job_id
from . import records
from .status import locate, not_found, read_record

def free_unique_claim(queue: Queue, job_id: str, fields: dict[str, str]) -> None:
    """A cancelled unique job frees its claim, so an equal job can be enqueued again. With
    the task imported here its key is known; without (the CLI), the queue's claims held by
    this job id are found by a SCAN and freed owner-checked."""
    task = queue.tasks.get(fields.get("task", ""))
    if task is not None:
        if task.unique is not None:
            try:
                args, kwargs = json.loads(fields.get("args") or "[]"), json.loads(fields.get("kwargs") or "{}")
            except ValueError:
                return
            task.release_unique(job_id, args, kwargs)
        return
    for key in queue.redis.scan_iter(match=queue.keys.unique("*"), count=1000):
        scripts.DELETE_IF_HOLDER(queue.redis, [key], [job_id])

if TYPE_CHECKING:
    from ..queue import Queue


@dataclass(frozen=True)
class CancelResult:
    """What ``cancel`` did. ``done``: this call cancelled it (``cancelling``: it is being
    interrupted); ``state``: the state the job was in when asked; ``message`` says it in words."""

    job_id: str
    done: bool
    state: str
    message: str

    def __str__(self) -> str:
        return self.message


def cancel(queue: Queue, job_id: str) -> CancelResult:
    """Cancel the job ``job_id`` of ``queue`` (see the module docstring)."""
    validate_job_id(job_id)
    for _ in range(5):  # it moved between our look and the script (promoted, retried, redelivered)
        record, outcome, cancel_pending = read_record(queue, job_id)
        if outcome is not None:
            state = outcome.get("state", "settled")
            return CancelResult(job_id, False, state, f"job {job_id} already {state}; nothing to cancel")
        where = locate(queue, job_id, record.get("entry"))
        if where is None:
            raise not_found(queue, job_id)
        if cancel_pending and where.pending is not None:
            return CancelResult(job_id, True, "running", f"job {job_id} is already being cancelled")
        if where.kind == "dead":
            return CancelResult(job_id, False, "dead", f"job {job_id} already dead; nothing to cancel")
        task = where.fields.get("task", "")
        attempt = int(where.fields.get("attempt") or 1)
        at = records.now_ms()
        kind = "delayed" if where.kind == "delayed" else "entry"
        reply = scripts.CANCEL(
            queue.redis,
            [queue.keys.stream, queue.keys.delayed, queue.keys.stats, queue.keys.cancelled,
             queue.keys.cancel_entries, queue.keys.job(job_id), queue.keys.done(job_id)],
            [settings.CONSUMER_GROUP, job_id, kind, where.id, at, records.ttl_ms(queue, task),
             records.cancelled_outcome(attempt, at, False)],
        )
        reply = reply.decode() if isinstance(reply, bytes) else str(reply)
        if reply == "cancelled":
            was = "queued" if kind == "entry" else ("retrying" if attempt > 1 else "scheduled")
            free_unique_claim(queue, job_id, where.fields)
            # on every queue: cancels are rare
            publish_one(queue.redis, queue.prefix, "cancelled", queue.name, job_id, task or "?", attempt, interrupted=False)
            return CancelResult(job_id, True, was, f"job {job_id} cancelled ({was}): it will never run")
        if reply == "cancelling":
            return CancelResult(
                job_id, True, "running",
                f"job {job_id} is held by a worker: cancelling (it is stopped before it starts, or gets "
                f"JobCancelled raised inside it and is killed after {settings.CANCEL_GRACE_S:g}s if it goes on)",
            )
    raise QrunError(f"job {job_id} kept moving while it was being cancelled; try again")
