"""A task: a function a queue knows by name, with its retry policy."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from .checks import seconds_setting
from .errors import ConfigurationError
from .job import EnqueuedJob
from .unique import UniquePolicy
from .unique import release as _release_unique

if TYPE_CHECKING:
    from .queue import Queue

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how far apart a failing task is tried again."""

    retries: int
    backoff_base_s: float
    backoff_cap_s: float

    def __post_init__(self) -> None:
        if not isinstance(self.retries, int) or isinstance(self.retries, bool) or self.retries < 0:
            raise ConfigurationError(f"retries must be an integer >= 0, got {self.retries!r}")
        for name in ("backoff_base_s", "backoff_cap_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigurationError(f"{name[:-2]} must be a number of seconds, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not self.backoff_base_s > 0:
            raise ConfigurationError(f"backoff_base must be > 0 seconds, got {self.backoff_base_s!r}")
        if not self.backoff_cap_s >= self.backoff_base_s:
            raise ConfigurationError(
                f"backoff_cap ({self.backoff_cap_s!r}) must be >= backoff_base ({self.backoff_base_s!r})"
            )


@dataclass(frozen=True)
class TimeLimits:
    """How long one run of a task may take: past ``soft_s`` the run gets
    :class:`qrun.TimeLimitExceeded` raised inside it; past ``hard_s`` its worker is killed."""

    soft_s: float | None = None
    hard_s: float | None = None

    def __post_init__(self) -> None:
        if self.soft_s is not None:
            object.__setattr__(self, "soft_s", seconds_setting("soft_time_limit", self.soft_s, minimum=0.001))
        if self.hard_s is not None:
            object.__setattr__(self, "hard_s", seconds_setting("time_limit", self.hard_s, minimum=0.001))
        if self.soft_s is not None and self.hard_s is not None and not self.soft_s < self.hard_s:
            raise ConfigurationError(
                f"soft_time_limit ({self.soft_s!r}) must be shorter than time_limit ({self.hard_s!r}), "
                "so the job gets a chance to clean up before it is killed"
            )


class Task(Generic[P, R]):
    """A function registered on a queue. Calling it runs it here; ``enqueue`` runs it on a worker."""

    def __init__(
        self,
        queue: Queue,
        func: Callable[P, R],
        name: str,
        policy: RetryPolicy,
        limits: TimeLimits | None = None,
        unique: UniquePolicy | None = None,
        result_ttl_s: float | None = None,
        max_result_bytes: int = 1_048_576,
    ) -> None:
        self.queue = queue
        self.func = func
        self.name = name
        self.policy = policy
        self.limits = limits or TimeLimits()
        #: How duplicate jobs are collapsed (``@queue.task(unique=True)``), or None.
        self.unique = unique
        #: The retry settings the task set itself (None: it follows its queue's).
        self.own_policy: dict[str, float | int | None] = {"retries": None, "backoff_base": None, "backoff_cap": None}
        #: Seconds a settled run's result (or error) is kept; None: none kept.
        self.result_ttl_s = result_ttl_s
        self.max_result_bytes = max_result_bytes
        #: What a worker calls: the function itself, or (keeping results) the function with
        #: its return value checked and encoded, so a value that cannot be kept fails the run.
        self.run: Callable[..., Any] = func if result_ttl_s is None else self._run_keeping_result
        self.signature = _signature(func)
        self._parameters = _positional_names(self.signature)
        self.__doc__ = func.__doc__
        self.__name__ = getattr(func, "__name__", name)
        self.__wrapped__ = func

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def follow_queue_policy(self, queue_policy: RetryPolicy) -> None:
        """The queue's retry settings changed (stored in the server): take them, except the
        ones this task set itself."""
        own = self.own_policy
        self.policy = RetryPolicy(
            queue_policy.retries if own["retries"] is None else int(own["retries"]),
            queue_policy.backoff_base_s if own["backoff_base"] is None else float(own["backoff_base"]),
            queue_policy.backoff_cap_s if own["backoff_cap"] is None else float(own["backoff_cap"]),
        )

    def _run_keeping_result(self, *args: Any, **kwargs: Any) -> bytes:
        from .lifecycle.records import encode_result

        return encode_result(self.func(*args, **kwargs), self.max_result_bytes)

    def __repr__(self) -> str:
        return f"<qrun.Task {self.name} on queue {self.queue.name!r}>"

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> EnqueuedJob:
        """Queue one run of the task now; raises PayloadError at once if an argument is not JSON."""
        return self.queue.enqueue(self, *args, **kwargs)

    def enqueue_in(self, delay_s: float, /, *args: P.args, **kwargs: P.kwargs) -> EnqueuedJob:
        """Queue one run of the task to start after ``delay_s`` seconds."""
        return self.queue.enqueue_in(delay_s, self, *args, **kwargs)

    def enqueue_at(self, when: datetime, /, *args: P.args, **kwargs: P.kwargs) -> EnqueuedJob:
        """Queue one run of the task to start at ``when`` (an aware datetime, or local time)."""
        return self.queue.enqueue_at(when, self, *args, **kwargs)

    def release_unique(self, job_id: str, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
        """Free the unique key of this task's job ``job_id``, which reached a terminal state
        (workers call it; a no-op when the task is not unique)."""
        _release_unique(self.queue, self, job_id, args, kwargs)

    def argument_name(self, path: str) -> str:
        """The parameter an encoder path such as ``args[1]['x']`` points into, for error messages."""
        if path.startswith("kwargs['"):
            return path[len("kwargs['") :].split("'", 1)[0]
        if path.startswith("args["):
            index = int(path[len("args[") :].split("]", 1)[0])
            if index < len(self._parameters):
                return self._parameters[index]
            return f"positional argument {index}"
        return path


def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # some builtins have none; enqueue then skips the check
        return None


def _positional_names(signature: inspect.Signature | None) -> list[str]:
    if signature is None:
        return []
    parameters = signature.parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in parameters if p.kind in kinds]
