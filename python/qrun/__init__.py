"""qrun: a sync-first job queue and prefork worker runner on Redis/Valkey Streams.

    import qrun
    queue = qrun.Queue("emails")

    @queue.task(retries=3)
    def send_email(to: str, subject: str) -> None: ...

    send_email.enqueue(to="a@b.c", subject="hi")
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import (
    CodecError,
    ConfigurationError,
    InvalidNameError,
    JobCancelled,
    JobFailed,
    JobNotFound,
    JobTimeout,
    LockNotAcquired,
    PayloadError,
    QrunError,
    ResultError,
    Retry,
    ScriptError,
    TimeLimitExceeded,
    UnknownTaskError,
)
from .job import EnqueuedJob, Job, current_job
from .lifecycle import CancelResult, JobStatus
from .locks import Lock
from .queue import Queue
from .task import Task

try:
    __version__ = version("qrun")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "CancelResult",
    "CodecError",
    "ConfigurationError",
    "EnqueuedJob",
    "InvalidNameError",
    "Job",
    "JobCancelled",
    "JobFailed",
    "JobNotFound",
    "JobStatus",
    "JobTimeout",
    "Lock",
    "LockNotAcquired",
    "PayloadError",
    "QrunError",
    "Queue",
    "ResultError",
    "Retry",
    "ScriptError",
    "Task",
    "TimeLimitExceeded",
    "UnknownTaskError",
    "__version__",
    "current_job",
]
