"""Unique jobs: ``@queue.task(unique=True)`` enqueues at most one job per task and arguments.

Enqueueing a unique task first sets ``{prefix:queue}:unique:<digest>`` to the new job's id
with ``SET NX PX`` inside the enqueue script: if the key exists, the existing job's id is
returned and nothing is added. The key is deleted when that job reaches a terminal state
(succeeded or dead-lettered; a retry keeps it), by a script that deletes it only while it
still names that job. ``unique_for`` is the backstop: the key expires after that long even if
the job never settles (a lost job, a dead-lettering path that does not release).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from . import scripts
from .checks import seconds_setting
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .queue import Queue
    from .task import Task

log = logging.getLogger(__name__)

#: Default ``unique_for`` (seconds): how long a unique job's key lives if the job never
#: reaches a terminal state. A delayed job's key lives its delay plus this.
DEFAULT_UNIQUE_FOR_S = 3600.0


@dataclass(frozen=True)
class UniquePolicy:
    """How a task's jobs are de-duplicated: ``key`` (optional) maps a job's arguments to
    the text that identifies it (default: all the arguments); ``ttl_s`` is ``unique_for``."""

    key: Callable[..., str] | None = None
    ttl_s: float = DEFAULT_UNIQUE_FOR_S


def unique_policy(
    unique: bool, unique_key: Callable[..., str] | None, unique_for: float | None
) -> UniquePolicy | None:
    """The policy ``@queue.task(unique=..., unique_key=..., unique_for=...)`` asks for, or
    None for an ordinary task; a ConfigurationError names the fix for a bad combination."""
    if not isinstance(unique, bool):
        raise ConfigurationError(f"unique must be True or False, got {unique!r}")
    if unique_key is not None and not callable(unique_key):
        raise ConfigurationError(
            f"unique_key must be a function of the job's arguments returning a str, got {unique_key!r}"
        )
    if not unique and unique_key is None:
        if unique_for is not None:
            raise ConfigurationError(
                "unique_for only applies to unique tasks: add unique=True (or unique_key=...) to the task"
            )
        return None
    ttl_s = DEFAULT_UNIQUE_FOR_S if unique_for is None else seconds_setting("unique_for", unique_for, minimum=0.001)
    return UniquePolicy(unique_key, ttl_s)


def unique_digest(task: Task[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    """SHA1 (hex) of the task name and the job's identity: its ``unique_key(*args, **kwargs)``
    if the task has one, else the canonical JSON of ``[args, kwargs]`` (keys sorted)."""
    policy = task.unique
    if policy is not None and policy.key is not None:
        identity = policy.key(*args, **kwargs)
        if not isinstance(identity, str):
            raise ConfigurationError(
                f"unique_key of task {task.name} must return a str, got {type(identity).__name__}: {identity!r}"
            )
    else:
        return default_digest(task.name, args, kwargs)
    return hashlib.sha1(f"{task.name}\0{identity}".encode("utf-8", "surrogatepass")).hexdigest()


def default_digest(task_name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    """The digest of a job of a unique task without ``unique_key``: what the claim key of such
    a job is, computable without the task (``qrun dead requeue`` without the app)."""
    identity = json.dumps([list(args), kwargs], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha1(f"{task_name}\0{identity}".encode("utf-8", "surrogatepass")).hexdigest()


def release(queue: Queue, task: Task[..., Any], job_id: str, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    """Free the unique key of a job that reached a terminal state (a no-op for a task that is
    not unique). Failures are logged, not raised: the key's ttl frees it in the end."""
    if task.unique is None:
        return
    try:
        key = queue.keys.unique(unique_digest(task, args, kwargs))
        scripts.DELETE_IF_HOLDER(queue.redis, [key], [job_id])
    except RedisError as error:
        log.warning(
            "job %s (%s): could not free its unique key (%s); it expires after unique_for=%gs",
            job_id, task.name, error, task.unique.ttl_s,
        )
    except Exception:  # a unique_key function that fails on the arguments as the worker sees them
        log.exception(
            "job %s (%s): unique_key failed, its unique key stays until unique_for=%gs",
            job_id, task.name, task.unique.ttl_s,
        )
