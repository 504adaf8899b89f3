"""The worker against a real server: every delivery is acked, retried or dead-lettered."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
import redis

import qrun
from qrun import settings
from qrun.worker import Worker

from .drain import drain

STREAM, DEAD, DELAYED = "{qrun:jobs}:stream", "{qrun:jobs}:dead", "{qrun:jobs}:delayed"


@pytest.fixture
def queue(url: str) -> Iterator[qrun.Queue]:
    with qrun.Queue("jobs", url, retries=2, backoff_base=0.05, backoff_cap=0.1) as queue:
        yield queue


def test_a_successful_job_is_acked_and_its_entry_deleted(queue: qrun.Queue, client: redis.Redis) -> None:
    seen = []

    @queue.task
    def add(a: int, b: int) -> None:
        seen.append(a + b)

    add.enqueue(2, b=3)
    drain(queue)
    assert seen == [5]
    assert client.xlen(STREAM) == 0
    assert client.xpending(STREAM, settings.CONSUMER_GROUP)["pending"] == 0
    assert queue.stats()["succeeded"] == 1


def test_jobs_enqueued_before_any_worker_existed_are_not_skipped(queue: qrun.Queue) -> None:
    seen = []
    task = queue.task(name="t.collect")(seen.append)
    queue.enqueue_many(task, [(n,) for n in range(50)])  # no consumer group exists yet
    drain(queue)
    assert sorted(seen) == list(range(50))


def test_a_failing_job_is_retried_with_backoff_then_dead_lettered_with_its_traceback(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    attempts: list[tuple[int, float]] = []

    @queue.task(name="t.flaky")
    def flaky(n: int) -> None:
        job = qrun.current_job()
        assert job is not None
        attempts.append((job.attempt, time.monotonic()))
        raise ValueError(f"bad {n}")

    job = flaky.enqueue(7)
    drain(queue)
    assert [attempt for attempt, _ in attempts] == [1, 2, 3]
    gaps = [later - earlier for (_, earlier), (_, later) in zip(attempts, attempts[1:])]
    assert gaps[0] >= 0.025 and gaps[1] >= 0.05  # jitter keeps at least half of base * 2**n
    [(_, dead)] = client.xrange(DEAD)
    assert dead[b"id"] == job.id.encode()
    assert dead[b"task"] == b"t.flaky"
    assert json.loads(dead[b"args"]) == [7]
    assert dead[b"attempt"] == b"3"
    assert dead[b"dead_reason"] == b"failed 3 times; no retries left"
    assert dead[b"dead_error_type"] == b"ValueError"
    assert dead[b"dead_error"] == b"bad 7"
    assert b"raise ValueError" in dead[b"dead_traceback"]
    assert client.xlen(STREAM) == 0 and client.zcard(DELAYED) == 0
    assert queue.stats() | {"enqueued": 0} == {
        "ready": 0, "in_flight": 0, "delayed": 0, "dead": 1,
        "enqueued": 0, "succeeded": 0, "retried": 2, "redelivered": 0, "dead_lettered": 1, "cancelled": 0, "requeued": 0,
    }


def test_raising_retry_uses_the_requested_delay(
    queue: qrun.Queue, client: redis.Redis, make_worker: Callable[..., Worker]
) -> None:
    @queue.task(name="t.later", retries=1)
    def later() -> None:
        job = qrun.current_job()
        if job is not None and job.attempt == 1:
            raise qrun.Retry(delay=30)

    later.enqueue()
    worker = make_worker([queue], read_block_ms=50)
    jobs, _ = worker.wire.fetch(1)  # one step of the loop, to look between steps
    started_ms = time.time() * 1000
    worker._run_batch(jobs)  # noqa: SLF001
    [(member, due_ms)] = client.zrange(DELAYED, 0, -1, withscores=True)
    assert json.loads(member)[4] == "2"  # the next attempt
    assert 29_000 <= due_ms - started_ms <= 31_000


def test_an_unknown_task_is_dead_lettered_and_the_worker_keeps_going(queue: qrun.Queue, client: redis.Redis) -> None:
    seen = []
    known = queue.task(name="t.known")(seen.append)
    queue.enqueue("t.missing", 1)
    known.enqueue(2)
    drain(queue)
    assert seen == [2]
    [(_, dead)] = client.xrange(DEAD)
    assert dead[b"task"] == b"t.missing"
    assert dead[b"dead_reason"].startswith(b"unknown task 't.missing'")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"id": "x", "task": "t.known", "args": "[1,"}, "malformed entry: field 'args' is not valid JSON"),
        ({"id": "x", "args": "[]"}, "malformed entry: missing field 'task'"),
        ({"id": "x", "task": "t.known", "kwargs": "[]"}, "malformed entry: field 'kwargs' is not a JSON object"),
        ({"id": "x", "task": "t.known", "attempt": "0"}, "malformed entry: field 'attempt' is not an integer >= 1"),
    ],
)
def test_a_malformed_entry_is_dead_lettered_with_the_reason_and_its_raw_fields(
    queue: qrun.Queue, client: redis.Redis, fields: dict[str, str], reason: str
) -> None:
    seen = []
    known = queue.task(name="t.known")(seen.append)
    client.xadd(STREAM, fields)
    known.enqueue("fine")
    drain(queue)
    assert seen == ["fine"]
    [(_, dead)] = client.xrange(DEAD)
    assert dead[b"dead_reason"].decode() == reason
    for name, value in fields.items():
        assert dead[name.encode()] == value.encode()


def test_a_job_written_by_another_language_with_only_id_and_task_runs(queue: qrun.Queue, client: redis.Redis) -> None:
    seen = []
    queue.task(name="t.ping")(lambda: seen.append("pong"))
    client.xadd(STREAM, {"id": "go-1", "task": "t.ping"})
    drain(queue)
    assert seen == ["pong"]


def test_prefetch_grows_for_fast_jobs_and_falls_back_to_one_for_a_slow_job(
    queue: qrun.Queue, make_worker: Callable[..., Worker]
) -> None:
    slow = queue.task(name="t.slow")(lambda: time.sleep(0.05))
    fast = queue.task(name="t.fast")(lambda: None)
    worker = make_worker([queue], read_block_ms=50)
    queue.enqueue_many(fast, [()] * 200)
    for _ in range(6):
        jobs, _ = worker.wire.fetch(worker._read_count())  # noqa: SLF001
        worker._run_batch(jobs)  # noqa: SLF001
    assert worker._prefetch > 16  # noqa: SLF001
    queue.enqueue_many(slow, [()] * 3)
    while True:
        jobs, _ = worker.wire.fetch(worker._read_count())  # noqa: SLF001
        worker._run_batch(jobs)  # noqa: SLF001
        if any(job[3] == "t.slow" for job in jobs):
            break
    assert worker._prefetch == 1  # noqa: SLF001


def test_acks_survive_a_script_cache_flush(
    queue: qrun.Queue, client: redis.Redis, make_worker: Callable[..., Worker]
) -> None:
    seen = []
    task = queue.task(name="t.collect")(seen.append)
    task.enqueue(1)
    worker = make_worker([queue], read_block_ms=50)
    jobs, _ = worker.wire.fetch(worker._read_count())  # noqa: SLF001
    worker._run_batch(jobs)  # noqa: SLF001
    client.script_flush()
    worker.wire.fetch(worker._read_count())  # noqa: SLF001 - sends the pending ack, meets NOSCRIPT, reloads, acks
    assert seen == [1]
    assert client.xlen(STREAM) == 0
    assert queue.stats()["succeeded"] == 1
