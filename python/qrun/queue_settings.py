"""A queue's settings stored in the server: created, updated and read by ``qrun queue``,
applied by running supervisors and workers within a few seconds, without a restart.

``{prefix:queue}:settings`` (hash) holds the settings an operator set, as text, and
``version`` (an integer, bumped by every change). Precedence, highest first:

1. the server's record (``qrun queue create/update``): what operators set wins;
2. the code (``qrun.Queue(...)`` and ``@queue.task(...)`` arguments);
3. qrun's defaults (qrun/settings.py).

A task's own ``retries``/``backoff_*`` (``@queue.task(retries=...)``) still win over the queue's,
whether those come from code or the server. When the record overrides a value the code gave,
the process says so once in its log (per queue, setting and version), never silently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from . import scripts
from .checks import count_setting, seconds_setting
from .connection import text as _text
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .queue import Queue

log = logging.getLogger(__name__)


def _seconds(name: str, minimum: float) -> Callable[[object], float]:
    return lambda value: seconds_setting(name, value, minimum)


def _optional_seconds(name: str) -> Callable[[object], float | None]:
    return lambda value: None if value is None else seconds_setting(name, value, 0.0)


def _count(name: str, minimum: int) -> Callable[[object], int]:
    return lambda value: count_setting(name, value, minimum)


@dataclass(frozen=True)
class Setting:
    """One setting a queue keeps in the server: its check, and the Queue attribute it sets."""

    name: str
    check: Callable[[object], Any]
    attribute: str
    help: str


SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting("visibility_timeout", _seconds("visibility_timeout", 1.0), "visibility_timeout_s",
                "seconds a delivered job stays hidden without its worker showing signs of life"),
        Setting("max_deliveries", _count("max_deliveries", 1), "max_deliveries",
                "deliveries without an ack before a job is dead-lettered"),
        Setting("dead_retention", _optional_seconds("dead_retention"), "dead_retention_s",
                "seconds dead letters are kept (none: for ever)"),
        Setting("retries", _count("retries", 0), "retries", "attempts after the first before a failing job is dead-lettered"),
        Setting("backoff_base", _seconds("backoff_base", 0.001), "backoff_base_s", "first retry delay, seconds"),
        Setting("backoff_cap", _seconds("backoff_cap", 0.001), "backoff_cap_s", "longest retry delay, seconds"),
    )
}


def key(queue: Queue) -> str:
    return f"{queue.keys.tag}:settings"


def parse(raw: Mapping[Any, Any]) -> tuple[int, dict[str, Any]]:
    """(version, settings) from the record's text fields; unknown fields are ignored, a bad
    value is a ConfigurationError naming it."""
    fields = {_text(k): _text(v) for k, v in raw.items()}
    version = int(fields.pop("version", "0") or 0)
    values: dict[str, Any] = {}
    for name, text in fields.items():
        setting = SETTINGS.get(name)
        if setting is None:
            continue
        if text == "none":
            values[name] = setting.check(None)
            continue
        number: float | int = float(text) if "." in text or "e" in text else int(text)
        values[name] = setting.check(number)
    return version, values


def encode(values: Mapping[str, Any]) -> dict[str, str]:
    return {name: "none" if value is None else repr(value) for name, value in values.items()}


def read(queue: Queue) -> tuple[int, dict[str, Any]]:
    """The queue's stored settings: (version, settings); (0, {}) if it has none."""
    return parse(queue.redis.hgetall(key(queue)))


def write(queue: Queue, values: Mapping[str, Any], *, create: bool) -> int:
    """Store ``values`` (checked first) in one atomic step; returns the new version.
    ``create`` fails if the queue has a record already; an update fails if it has none."""
    checked = {name: SETTINGS[name].check(value) for name, value in values.items()}
    _check_backoff(queue, checked)
    flat = [part for pair in encode(checked).items() for part in pair]
    reply = scripts.SETTINGS_WRITE(queue.redis, [key(queue)], ["create" if create else "update", *flat])
    if reply == -1:
        raise ConfigurationError(f"queue {queue.name!r} already has settings; use qrun queue update")
    if reply == -2:
        raise ConfigurationError(f"queue {queue.name!r} has no settings to update; create it with qrun queue create")
    return int(reply)


def _check_backoff(queue: Queue, values: Mapping[str, Any]) -> None:
    base = values.get("backoff_base", queue.default_policy.backoff_base_s)
    cap = values.get("backoff_cap", queue.default_policy.backoff_cap_s)
    if cap < base:
        raise ConfigurationError(f"backoff_cap ({cap:g}) must be >= backoff_base ({base:g})")


def apply(queue: Queue, version: int, values: Mapping[str, Any], *, quiet: bool = False) -> list[str]:
    """Make ``queue`` use the stored ``values`` (over what its code said); returns what
    changed, as ``name: old -> new``. Logs once per version when the record overrides code."""
    from .task import RetryPolicy

    changed = []
    code = queue.code_settings
    for name, value in values.items():
        setting = SETTINGS[name]
        if name in ("retries", "backoff_base", "backoff_cap"):
            current = getattr(queue.default_policy, setting.attribute)
        else:
            current = getattr(queue, setting.attribute)
        if current != value:
            changed.append(f"{name}: {current!r} -> {value!r}")
        if not quiet and code.get(name) != value and queue.settings_version != version:
            log.warning("queue %s: %s=%r from the server's settings (version %d) overrides %r from the code",
                        queue.name, name, value, version, code.get(name))
    for name in ("visibility_timeout", "max_deliveries", "dead_retention"):
        setattr(queue, SETTINGS[name].attribute, values.get(name, code[name]))
    policy = RetryPolicy(
        values.get("retries", code["retries"]),
        values.get("backoff_base", code["backoff_base"]),
        values.get("backoff_cap", code["backoff_cap"]),
    )
    queue.default_policy = policy
    for task in queue.tasks.values():
        try:
            task.follow_queue_policy(policy)
        except ConfigurationError as error:  # e.g. its own backoff_base above the new cap
            log.error("queue %s: task %s keeps its retry settings: %s", queue.name, task.name, error)
    queue.settings_version = version
    return changed


class SettingsWatcher:
    """Checks the stored settings' versions of some queues every ``interval_s`` (one pipelined
    HGET per check) and applies a changed record."""

    def __init__(self, queues: list[Queue], interval_s: float) -> None:
        self.queues = queues
        self.interval_s = interval_s
        self._next = 0.0

    def check(self, now: float | None = None) -> bool:
        """True if a queue's settings changed."""
        now = time.monotonic() if now is None else now
        if now < self._next or not self.queues:
            return False
        self._next = now + self.interval_s
        changed = False
        try:
            with self.queues[0].redis.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    pipe.hget(key(queue), "version")
                versions = pipe.execute()
            for queue, version in zip(self.queues, versions):
                if int(version or 0) != queue.settings_version:
                    changed = bool(refresh(queue)) or changed
        except (RedisError, ConfigurationError, ValueError) as error:
            log.warning("could not read the queues' stored settings (%s); keeping the current ones", error)
        return changed


def refresh(queue: Queue, *, quiet: bool = False) -> list[str]:
    """Read and apply the queue's stored settings now; what changed. ``quiet``: a queue opened
    by an operator command (no code to override), nothing logged."""
    version, values = read(queue)
    changed = apply(queue, version, values, quiet=quiet)
    if changed and not quiet:
        log.info("queue %s: settings version %d applied: %s", queue.name, version, ", ".join(changed))
    return changed

