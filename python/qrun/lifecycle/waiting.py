"""``job.result(timeout)``: block on the server until the job settles, never poll.

A settled job's outcome is one element of the list ``{prefix:queue}:done:<id>``. A waiter
runs ``BLMOVE done done RIGHT LEFT`` (the element moves onto the same list, so it stays for
the next waiter, and every blocked waiter is served in turn): it returns at once if the
outcome is already there, else the server wakes it when the worker writes it. One command per
waiter per RESULT_WAIT_CHUNK_S at most, however many waiters there are. A lost connection
(server restart, failover) is retried with backoff until the timeout; once back, the waiter
checks the job still exists (a server that restarted without its data raises JobNotFound).
"""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError, TimeoutError

from .. import settings
from ..errors import ConfigurationError, JobCancelled, JobFailed, JobNotFound, JobTimeout
from ..keys import validate_job_id
from .status import status

if TYPE_CHECKING:
    from ..queue import Queue


def wait_result(queue: Queue, job_id: str, timeout: float | None = None, task_name: str | None = None) -> Any:
    """The job's return value once it settles (see :meth:`qrun.EnqueuedJob.result`)."""
    validate_job_id(job_id)
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0):
        raise ConfigurationError(f"timeout must be a number of seconds >= 0 or None, got {timeout!r}")
    task = queue.tasks.get(task_name) if task_name else None
    if task is not None and task.result_ttl_s is None:
        raise ConfigurationError(
            f"task {task.name} keeps no results: declare it with @queue.task(result_ttl=SECONDS) "
            "(or Queue(..., result_ttl=SECONDS)) to wait for its return value"
        )
    # A handle from an id alone does not know whether its task keeps results: look first.
    outcome = wait_outcome(queue, job_id, timeout, look_first=task is None)
    return outcome_value(job_id, outcome)


def wait_outcome(queue: Queue, job_id: str, timeout: float | None, *, look_first: bool = False) -> dict[str, Any]:
    """The outcome of the job once settled; raises JobTimeout (with its state) after ``timeout``.

    Only a job whose task keeps results gets an outcome list; a job that ended without one
    (dead, or gone: succeeded without keeping a result) is noticed by a look at its status
    before blocking (``look_first``) and after every RESULT_WAIT_CHUNK_S of waiting.
    """
    done = queue.keys.done(job_id)
    if look_first and (ended := _ended_without_outcome(queue, job_id)) is not None:
        return ended
    deadline = None if timeout is None else time.monotonic() + timeout
    backoff_s = settings.RECONNECT_BASE_S
    reconnected = False
    while True:
        if reconnected:  # a restarted server may have lost the job: say so now, not at the timeout
            reconnected = False
            try:
                status(queue, job_id)
            except JobNotFound:
                raise JobNotFound(
                    f"job {job_id}: the connection to the server was lost, and the server no longer knows "
                    f"the job (it restarted without its data?)", job_id,
                ) from None
            except (ConnectionError, TimeoutError):
                reconnected = True
        remaining = settings.RESULT_WAIT_CHUNK_S if deadline is None else deadline - time.monotonic()
        block_s = min(remaining, settings.RESULT_WAIT_CHUNK_S)
        try:
            if block_s > 0:
                # BLMOVE's timeout is seconds as a float; 0 would mean forever.
                reply = queue.redis.blmove(done, done, max(block_s, 0.001), "RIGHT", "LEFT")  # type: ignore[arg-type]
            else:
                reply = queue.redis.lindex(done, 0)
            backoff_s = settings.RECONNECT_BASE_S
        except (ConnectionError, TimeoutError):
            if deadline is not None and time.monotonic() >= deadline:
                raise JobTimeout(f"job {job_id}: the server was unreachable until the timeout ({timeout}s)") from None
            time.sleep(min(backoff_s * (0.5 + random.random() / 2), max(0.0, remaining)))
            backoff_s = min(settings.RECONNECT_CAP_S, backoff_s * 2)
            reconnected = True
            continue
        if reply is not None:
            try:
                return json.loads(reply)
            except ValueError:
                raise JobFailed(job_id, message=f"its outcome is not qrun's JSON: {reply[:200]!r}") from None
        if deadline is not None and time.monotonic() >= deadline:
            break
        if (ended := _ended_without_outcome(queue, job_id)) is not None:  # a chunk went by: look
            return ended
    return _timed_out(queue, job_id, timeout)


def _ended_without_outcome(queue: Queue, job_id: str) -> dict[str, Any] | None:
    """The outcome of a job that settled without an outcome list (dead, from the dead
    stream), None while it is live or has one; JobNotFound when it is gone."""
    try:
        now = status(queue, job_id)
    except JobNotFound:
        raise JobNotFound(
            f"job {job_id} is not known to queue {queue.name!r}: it never existed there, or it settled "
            "without keeping a result (its task has no result_ttl) or its result expired", job_id,
        ) from None
    if now.state == "dead" and not now.has_result and now.error is not None and now.finished_at_ms is not None:
        return {"state": "dead", "error": now.error, "reason": now.reason, "attempt": now.attempt}
    return None


def _timed_out(queue: Queue, job_id: str, timeout: float | None) -> dict[str, Any]:
    """No outcome within the timeout: say where the job is (a cancel that left only its mark
    is an outcome too)."""
    try:
        now = status(queue, job_id)
    except JobNotFound:
        raise JobTimeout(f"job {job_id} did not settle within {timeout}s, and queue {queue.name!r} "
                         "does not know it (a wrong id or queue?)") from None
    if now.state == "cancelled":
        return {"state": "cancelled", "attempt": now.attempt}
    if now.state == "dead":
        return {"state": "dead", "error": now.error, "reason": now.reason, "attempt": now.attempt}
    raise JobTimeout(f"job {job_id} did not settle within {timeout}s (it is {now.state})")


def outcome_value(job_id: str, outcome: dict[str, Any]) -> Any:
    """The return value in an outcome, or the exception that says how the job ended."""
    state = outcome.get("state")
    if state == "succeeded":
        return outcome.get("result")
    if state == "dead":
        error = outcome.get("error") or {}
        raise JobFailed(
            job_id, type=error.get("type", ""), message=error.get("message", ""),
            traceback=error.get("traceback", ""), reason=outcome.get("reason") or "", attempts=outcome.get("attempt") or 0,
        )
    if state == "cancelled":
        raise JobCancelled(f"job {job_id} was cancelled")
    raise JobFailed(job_id, message=f"unknown outcome state {state!r}")
