"""Key names for a queue, and the validation that keeps names safe to put in keys.

Every key of one queue shares the hash tag ``{prefix:queue}`` so each Lua script touches one
cluster slot, as Redis/Valkey Cluster requires (a Cluster client is not wired in yet).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .errors import InvalidNameError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
_TASK = re.compile(r"[A-Za-z_][A-Za-z0-9_.:<>\-]{0,199}")
#: A job id: qrun makes 32 hex digits; other producers may use any id of these characters
#: (none of them special in a key, a SCAN/ZSCAN pattern or a channel name).
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")


def validate_name(kind: str, name: object) -> str:
    """Return ``name`` if it may be a queue name or key prefix, else raise InvalidNameError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidNameError(
            f"{kind} name {name!r} is not valid: use 1-100 characters from letters, digits, "
            "'_', '.', '-', starting with a letter or digit (no spaces, ':', '{' or '}')"
        )
    return name


def validate_task_name(name: object) -> str:
    """Return ``name`` if it may name a task, else raise InvalidNameError."""
    if not isinstance(name, str) or not _TASK.fullmatch(name):
        raise InvalidNameError(
            f"task name {name!r} is not valid: use 1-200 characters from letters, digits, "
            "'_', '.', ':', '<', '>', '-', starting with a letter or '_'"
        )
    return name


def validate_job_id(job_id: object) -> str:
    """Return ``job_id`` if it may name a job, else raise InvalidNameError (before it becomes a key)."""
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise InvalidNameError(
            f"job id {job_id!r} is not valid: qrun job ids are 32 hex digits; any id is 1-128 characters "
            "from letters, digits, '_', '.', ':', '-', starting with a letter or digit"
        )
    return job_id


def _key_safe(job_id: str) -> str:
    """A job id as it may appear in a key: itself if valid, else a digest of it (an entry
    from another producer may carry any id; it must never reach outside the queue's slot)."""
    if _JOB_ID.fullmatch(job_id):
        return job_id
    return "sha1-" + hashlib.sha1(job_id.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class QueueKeys:
    """The keys of one queue (all in one cluster slot)."""

    prefix: str
    queue: str

    @property
    def tag(self) -> str:
        return f"{{{self.prefix}:{self.queue}}}"

    @property
    def stream(self) -> str:
        """Stream of ready and in-flight jobs; entries are deleted once acked or moved."""
        return f"{self.tag}:stream"

    @property
    def delayed(self) -> str:
        """Sorted set of jobs waiting for their time (score: due time in ms)."""
        return f"{self.tag}:delayed"

    @property
    def dead(self) -> str:
        """Stream of dead-lettered jobs, with the reason each one died."""
        return f"{self.tag}:dead"

    @property
    def leases(self) -> str:
        """Sorted set of in-flight entries a job asked to keep hidden (score: until, in ms)."""
        return f"{self.tag}:leases"

    @property
    def stats(self) -> str:
        """Hash of lifetime counters: enqueued, succeeded, retried, dead_lettered."""
        return f"{self.tag}:stats"

    def lock(self, name: str) -> str:
        """String holding the token of whoever holds the lock ``name`` (expires: its ttl)."""
        return f"{self.tag}:lock:{name}"

    def unique(self, digest: str) -> str:
        """String holding the id of the unique job whose arguments hash to ``digest``."""
        return f"{self.tag}:unique:{digest}"

    def job(self, job_id: str) -> str:
        """Hash of what a job's stream entries cannot say: its state, times, worker and
        progress (qrun.lifecycle; written only for jobs that keep results, report progress or
        are cancelled)."""
        return f"{self.tag}:job:{_key_safe(job_id)}"

    def done(self, job_id: str) -> str:
        """List holding a settled job's outcome (one JSON element): waiters block on it."""
        return f"{self.tag}:done:{_key_safe(job_id)}"

    @property
    def cancelled(self) -> str:
        """Sorted set of job ids whose cancel is pending (score: when asked, in ms): scripts
        that would run, hand back or redeliver such a job drop it instead."""
        return f"{self.tag}:cancelled"

    @property
    def cancel_entries(self) -> str:
        """Sorted set of the entry ids of those jobs a worker held when they were cancelled:
        supervisors read it every tick and tell the worker holding one."""
        return f"{self.tag}:cancel_entries"
