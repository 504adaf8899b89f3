"""Following a job after enqueue: its status, its result, cancelling it, its progress.

- :func:`status` derives the state from what the server holds (stream, pending list, delayed
  set, dead stream) plus the little qrun writes only where needed (qrun.lifecycle.records);
- :func:`wait_result` blocks on the server until the outcome is written (qrun.lifecycle.waiting);
- :func:`cancel` removes or marks a job atomically (qrun.lifecycle.cancel);
- ``current_job().progress()`` stores, publishes and heartbeats (qrun.lifecycle.progress);
- :class:`~qrun.lifecycle.hooks.TrackJobs` records tracked jobs from the worker's hooks.

``EnqueuedJob.status()/result()/cancel()``, ``queue.job(id)`` and the ``qrun job`` / ``qrun
cancel`` commands all call these functions.
"""

from __future__ import annotations

from .cancel import CancelResult, cancel
from .status import STATES, JobStatus, status
from .waiting import wait_result

__all__ = ["STATES", "CancelResult", "JobStatus", "cancel", "status", "wait_result"]
