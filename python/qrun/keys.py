"""Key names for a queue, and the validation that keeps names safe to put in keys.

Every key of one queue shares the hash tag ``{prefix:queue}`` so each Lua script touches one
cluster slot, as Redis/Valkey Cluster requires (a Cluster client is not wired in yet).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidNameError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
_TASK = re.compile(r"[A-Za-z_][A-Za-z0-9_.:<>\-]{0,199}")


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
