"""What qrun writes about a job beyond its stream entries: the record hash and the outcome.

``{prefix:queue}:job:<id>`` (hash) holds what no stream can say: ``state``, ``task``,
``attempt``, ``started_at_ms``, ``finished_at_ms``, ``worker``, ``progress``, ... .
``{prefix:queue}:done:<id>`` (list) holds one element once the job settled: the outcome JSON
that ``job.result()`` blocks on. Both expire with the task's ``result_ttl`` once settled.
See docs/wire-format.md for every field.
"""

from __future__ import annotations

import json
import time
import traceback
from typing import TYPE_CHECKING, Any

from .. import codec, scripts, settings
from ..errors import PayloadError, ResultError

if TYPE_CHECKING:
    from ..queue import Queue


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ttl_ms(queue: Queue, task_name: str) -> int:
    """How long a settled job's record and outcome live: its task's result_ttl, else the
    queue's, else CANCELLED_RECORD_TTL_S (a cancel is recorded even without results)."""
    task = queue.tasks.get(task_name)
    ttl_s = task.result_ttl_s if task is not None else queue.result_ttl_s
    if ttl_s is None:
        ttl_s = settings.CANCELLED_RECORD_TTL_S
    return max(1, int(ttl_s * 1000))


def encode_result(value: Any, max_bytes: int) -> bytes:
    """The JSON of a task's return value, checked like arguments (no NaN, string keys only);
    raises :class:`ResultError` when it is not JSON or larger than ``max_bytes``."""
    try:
        args_json, _ = codec.encode_payload((value,), {})
    except PayloadError as error:
        raise ResultError(f"the return value is not JSON-encodable: {str(error).replace('args[0]', 'result', 1)}") from None
    result = args_json[1:-1]
    if len(result) > max_bytes:
        raise ResultError(
            f"the return value is {len(result):,} bytes of JSON, more than max_result_bytes ({max_bytes:,}); "
            "store large results elsewhere and return a reference"
        )
    return result


def succeeded_outcome(
    result_json: bytes, attempt: int, at_ms: int, task: str = "", started_at_ms: int = 0, worker: str = ""
) -> bytes:
    """The outcome of a job that returned: it also carries what its record would (task,
    start time, worker), so a fast job needs no record of its own."""
    return b'{"state":"succeeded","result":%s,"attempt":%d,"finished_at_ms":%d,"task":%s,"started_at_ms":%d,"worker":%s}' % (
        result_json, attempt, at_ms, _json_text(task), started_at_ms, _json_text(worker),
    )


def _json_text(text: str) -> bytes:
    return json.dumps(text, ensure_ascii=False).encode()


def error_fields(error: BaseException | None) -> dict[str, str]:
    if error is None:
        return {"type": "", "message": "", "traceback": ""}
    return {
        "type": type(error).__name__,
        "message": str(error),
        "traceback": "".join(traceback.format_exception(error)),
    }


def dead_outcome(reason: str, error: dict[str, str], attempt: int, at_ms: int) -> bytes:
    return json.dumps(
        {"state": "dead", "reason": reason, "error": error, "attempt": attempt, "finished_at_ms": at_ms},
        separators=(",", ":"),
    ).encode()


def cancelled_outcome(attempt: int, at_ms: int, ran: bool) -> bytes:
    return b'{"state":"cancelled","attempt":%d,"finished_at_ms":%d,"interrupted":%s}' % (
        attempt, at_ms, b"true" if ran else b"false"
    )


def record_call(
    queue: Queue, job_id: str, ttl: int, outcome: bytes = b"", **fields: Any
) -> tuple[scripts.Script, list[str], list[Any]]:
    """``(script, keys, args)`` of one ``record_job.lua`` call (for an outbox or a pipeline)."""
    flat: list[Any] = []
    for name, value in fields.items():
        if value is not None:
            flat += [name, value]
    return scripts.RECORD_JOB, [queue.keys.job(job_id), queue.keys.done(job_id)], [ttl, outcome, *flat]


def finish_jobs_calls(
    queue: Queue, finished: list[tuple[tuple[Any, ...], int, bytes, int, int]]
) -> list[tuple[scripts.Script, list[str], list[Any]]]:
    """``(script, keys, args)`` calls that store the outcome of each succeeded job and ack the
    entries (``finish_jobs.lua``): one per result TTL among them (usually one); ``finished``
    holds (entry, ttl ms, outcome JSON, finished at ms, started at ms) per job."""
    by_ttl: dict[int, tuple[list[str], list[Any]]] = {}
    for entry, ttl, outcome, _finished_at, _started_at in finished:
        keys, args = by_ttl.setdefault(ttl, ([queue.keys.stream, queue.keys.stats], [settings.CONSUMER_GROUP, ttl]))
        keys += [queue.keys.job(entry[2]), queue.keys.done(entry[2])]
        args += [entry[1], outcome]
    return [(scripts.FINISH_JOBS, keys, args) for keys, args in by_ttl.values()]


def record(queue: Queue, job_id: str, ttl: int, outcome: bytes = b"", **fields: Any) -> None:
    """Write a job's record (and outcome) now, in one round trip."""
    script, keys, args = record_call(queue, job_id, ttl, outcome, **fields)
    script(queue.redis, keys, args)


def settle_cancelled_call(
    queue: Queue, entry_id: str, job_id: str, task_name: str, attempt: int, ran: bool
) -> tuple[scripts.Script, list[str], list[Any]]:
    """``(script, keys, args)`` that takes a cancelled job's entry out of the pending list and
    records it cancelled (``settle_cancelled.lua``)."""
    at = now_ms()
    keys = [
        queue.keys.stream, queue.keys.stats, queue.keys.cancelled, queue.keys.cancel_entries,
        queue.keys.job(job_id), queue.keys.done(job_id),
    ]
    return scripts.SETTLE_CANCELLED, keys, [
        settings.CONSUMER_GROUP, entry_id, job_id, at, ttl_ms(queue, task_name), cancelled_outcome(attempt, at, ran),
    ]


def record_reclaimed(queue: Queue, dead_jobs: list[tuple[str, str, int, str]]) -> None:
    """The claimer dead-lettered jobs of dead workers: record their outcome (for tasks that
    keep results), so their waiters wake."""
    calls = []
    at = now_ms()
    for job_id, task_name, attempt, reason in dead_jobs:
        task = queue.tasks.get(task_name)
        if job_id and task is not None and task.result_ttl_s is not None:
            outcome = dead_outcome(reason, error_fields(None), attempt, at)
            calls.append(record_call(queue, job_id, ttl_ms(queue, task_name), outcome, state="dead", finished_at_ms=at))
    if calls:
        for reply in scripts.run_pipelined(queue.redis, calls):
            if isinstance(reply, Exception):
                raise reply
