"""Every exception qrun raises on purpose, in one place, so callers can catch by kind."""

from __future__ import annotations

import math


class QrunError(Exception):
    """Base class of every error qrun raises on purpose."""


class ConfigurationError(QrunError, ValueError):
    """A setting or argument has a value qrun cannot work with; the message says the fix."""


class InvalidNameError(ConfigurationError):
    """A queue, prefix or task name that cannot safely become part of a Redis key."""


class PayloadError(QrunError, TypeError, ValueError):
    """A job argument cannot be encoded as JSON; raised at enqueue time, never in the worker.

    ``path`` points at the offending value (``kwargs['to'][2]``); ``job_index`` is the
    position of the job in an ``enqueue_many`` batch, or ``None`` for a single enqueue.
    """

    def __init__(self, message: str, path: str = "", job_index: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.job_index = job_index


class CodecError(QrunError, ValueError):
    """A server reply does not have the shape the codec expects (never a crash, never a panic)."""


class UnknownTaskError(QrunError, LookupError):
    """A job names a task that no imported queue declares."""


class ScriptError(QrunError):
    """A qrun Lua script answered with an error."""


class LockNotAcquired(QrunError):
    """A :meth:`qrun.Queue.lock` could not be taken within its ``wait``, or an operation
    needs a lock this :class:`qrun.locks.Lock` does not hold; the message says what to do.

    ``name`` is the lock's name; ``waited_s`` how long acquiring waited (``None`` when the
    error is about a lock that is not held).
    """

    def __init__(self, message: str, name: str = "", waited_s: float | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.waited_s = waited_s


class Retry(Exception):
    """Raise inside a task to ask for another attempt after ``delay`` seconds.

    The request counts as an attempt: once the task's retries are used up the job is
    dead-lettered like any other failure.
    """

    def __init__(self, delay: float | None = None, reason: str = "retry requested") -> None:
        super().__init__(reason)
        if delay is not None and not (isinstance(delay, (int, float)) and math.isfinite(delay) and delay >= 0):
            raise ConfigurationError(f"Retry(delay=...) must be a finite number of seconds >= 0, got {delay!r}")
        self.delay = delay
        self.reason = reason


class TimeLimitExceeded(Exception):
    """Raised inside a job that ran past its task's ``soft_time_limit``.

    An ``Exception`` (not a ``QrunError`` from qrun's API) so a task may catch it to clean
    up; uncaught, it fails the attempt like any other error.
    """
