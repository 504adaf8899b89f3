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


class JobCancelled(Exception):
    """Raised inside a running job that was cancelled (``job.cancel()``, ``qrun cancel``),
    and by ``job.result()`` for a job that ended cancelled.

    An ``Exception`` like :class:`TimeLimitExceeded`, so a task may catch it to clean up; a
    job that ignores it is killed after the cancel grace period. A cancelled job is never
    retried.
    """


class JobNotFound(QrunError, LookupError):
    """No job with this id is known to the queue: it never existed there, or it finished and
    its record expired (a task without ``result_ttl`` keeps no record of success)."""

    def __init__(self, message: str, job_id: str = "") -> None:
        super().__init__(message)
        self.job_id = job_id


class DeadLetterNotFound(QrunError, LookupError):
    """No dead letter of the queue has this dead entry id or job id (never dead-lettered, or
    already requeued, deleted or trimmed past the queue's ``dead_retention``)."""


class JobTimeout(QrunError, TimeoutError):
    """``job.result(timeout=...)`` waited that long and the job had not settled."""


class JobFailed(QrunError):
    """The job ended dead (its retries used up, or it could not run): ``job.result()`` raises
    this with the remote error's ``type``, ``message`` and ``traceback``, the ``reason`` it
    was dead-lettered and its ``attempts``."""

    def __init__(
        self, job_id: str, *, type: str = "", message: str = "", traceback: str = "", reason: str = "", attempts: int = 0
    ) -> None:
        what = f"{type}: {message}" if type else (message or reason or "failed")
        super().__init__(f"job {job_id} failed after {attempts} attempt(s): {what}")
        self.job_id = job_id
        self.type = type
        self.message = message
        self.traceback = traceback
        self.reason = reason
        self.attempts = attempts


class ResultError(QrunError, ValueError):
    """A task's return value cannot be kept: not JSON, or larger than the queue's
    ``max_result_bytes``. The job is dead-lettered with this reason (retrying would return
    the same value), never stored truncated."""
