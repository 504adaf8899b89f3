"""qrun's server-side operations: one Lua file per operation, loaded once, run by EVALSHA.

The folder is the registry: every ``*.lua`` here becomes a :class:`Script` named after its
file. Each file opens with its contract (KEYS, ARGV, Returns). Every key a script touches
arrives in KEYS, so the scripts are valid on Redis/Valkey Cluster.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis
from redis.exceptions import NoScriptError


@dataclass(frozen=True)
class Script:
    """One Lua script: its source and SHA1, callable with NOSCRIPT fallback."""

    name: str
    source: bytes
    sha: bytes

    @classmethod
    def from_source(cls, name: str, source: bytes) -> Script:
        return cls(name, source, hashlib.sha1(source).hexdigest().encode())

    def __call__(self, client: redis.Redis, keys: list[str], args: list[Any]) -> Any:
        """Run the script; after a server restart or failover, load it and retry once."""
        try:
            return client.evalsha(self.sha.decode(), len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha.decode(), len(keys), *keys, *args)


def _load_all() -> dict[str, Script]:
    folder = resources.files(__name__)
    found = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".lua"):
            name = entry.name[: -len(".lua")]
            found[name] = Script.from_source(name, entry.read_bytes())
    return found


SCRIPTS: dict[str, Script] = _load_all()

ENQUEUE = SCRIPTS["enqueue"]
PROMOTE = SCRIPTS["promote"]
ACK = SCRIPTS["ack"]
RETRY = SCRIPTS["retry"]
DEAD = SCRIPTS["dead"]
RELEASE = SCRIPTS["release"]
DELETE_IF_HOLDER = SCRIPTS["delete_if_holder"]
LOCK_EXTEND = SCRIPTS["lock_extend"]
ENQUEUE_UNIQUE = SCRIPTS["enqueue_unique"]
ENQUEUE_UNIQUE_DELAYED = SCRIPTS["enqueue_unique_delayed"]
PUBLISH_EVENTS = SCRIPTS["publish_events"]
RECLAIM = SCRIPTS["reclaim"]
EXTEND = SCRIPTS["extend"]
RECORD_JOB = SCRIPTS["record_job"]
CANCEL = SCRIPTS["cancel"]
SETTLE_CANCELLED = SCRIPTS["settle_cancelled"]
FIND_ENTRY = SCRIPTS["find_entry"]
FINISH_JOBS = SCRIPTS["finish_jobs"]
SETTINGS_WRITE = SCRIPTS["settings_write"]
REQUEUE = SCRIPTS["requeue"]


def run_pipelined(client: redis.Redis, calls: Sequence[tuple[Script, Sequence[Any], Sequence[Any]]]) -> list[Any]:
    """Run each ``(script, keys, args)`` in one pipeline: one round trip. After a server
    restart the refused calls (NOSCRIPT), and only those, are sent again once the scripts are
    loaded. Replies come back in call order; an error is returned in its place, not raised."""
    def send(indexes: Sequence[int]) -> list[Any]:
        with client.pipeline(transaction=False) as pipe:
            for index in indexes:
                script, keys, args = calls[index]
                pipe.evalsha(script.sha.decode(), len(keys), *keys, *args)
            return list(pipe.execute(raise_on_error=False))

    replies = send(range(len(calls)))
    refused = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if refused:
        load_all(client)
        for index, reply in zip(refused, send(refused)):
            replies[index] = reply
    return replies


def load_all(client: redis.Redis) -> None:
    """Load every script into the server's cache (idempotent)."""
    for script in SCRIPTS.values():
        client.script_load(script.source)
