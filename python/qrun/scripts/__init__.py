"""qrun's server-side operations: one Lua file per operation, loaded once, run by EVALSHA.

The folder is the registry: every ``*.lua`` here becomes a :class:`Script` named after its
file. Each file opens with its contract (KEYS, ARGV, Returns). Every key a script touches
arrives in KEYS, so the scripts are valid on Redis/Valkey Cluster.
"""

from __future__ import annotations

import hashlib
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
LOCK_RELEASE = SCRIPTS["lock_release"]
LOCK_EXTEND = SCRIPTS["lock_extend"]
ENQUEUE_UNIQUE = SCRIPTS["enqueue_unique"]
ENQUEUE_UNIQUE_DELAYED = SCRIPTS["enqueue_unique_delayed"]
UNIQUE_RELEASE = SCRIPTS["unique_release"]
PUBLISH_EVENTS = SCRIPTS["publish_events"]
RECLAIM = SCRIPTS["reclaim"]
EXTEND = SCRIPTS["extend"]


def load_all(client: redis.Redis) -> None:
    """Load every script into the server's cache (idempotent)."""
    for script in SCRIPTS.values():
        client.script_load(script.source)
