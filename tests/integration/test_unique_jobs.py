"""Unique jobs against a real server: a duplicate enqueue returns the job already waiting or
running and adds nothing; the claim is freed when that job succeeds or is dead-lettered, kept
across retries, and expires after ``unique_for`` in any case."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

import qrun
from qrun.unique import unique_digest
from qrun.worker import Worker

from .drain import drain

STREAM, DELAYED, DEAD = "{qrun:uniq}:stream", "{qrun:uniq}:delayed", "{qrun:uniq}:dead"


@pytest.fixture
def queue(url: str) -> Iterator[qrun.Queue]:
    with qrun.Queue("uniq", url, retries=0, backoff_base=0.05, backoff_cap=0.1) as queue:
        yield queue


def claims(client: redis.Redis) -> list[bytes]:
    return sorted(client.scan_iter(match="{qrun:uniq}:unique:*"))


def test_a_duplicate_returns_the_waiting_job_and_enqueues_nothing(queue: qrun.Queue, client: redis.Redis) -> None:
    @queue.task(unique=True, name="t.report")
    def report(account: int, kind: str = "daily") -> None: ...

    first = report.enqueue(7, kind="weekly")
    second = report.enqueue(7, kind="weekly")
    assert not first.duplicate and first.due_at_ms is None
    assert second.duplicate and second.id == first.id and second.task == "t.report"
    assert client.xlen(STREAM) == 1
    assert queue.stats()["enqueued"] == 1
    key = "{qrun:uniq}:unique:" + unique_digest(report, (7,), {"kind": "weekly"})
    assert client.get(key) == first.id.encode()
    assert 3_599_000 < client.pttl(key) <= 3_600_000  # the default unique_for: one hour


def test_other_arguments_are_other_jobs_and_keyword_order_does_not_matter(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    @queue.task(unique=True, name="t.sync")
    def sync(a: int = 0, b: int = 0) -> None: ...

    one = sync.enqueue(a=1, b=2)
    assert sync.enqueue(b=2, a=1).id == one.id
    assert not sync.enqueue(a=1, b=3).duplicate
    assert not sync.enqueue(1, 2).duplicate  # positional is another identity (use unique_key to merge)
    assert client.xlen(STREAM) == 3
    assert len(claims(client)) == 3


def test_the_same_arguments_on_another_task_are_another_job(queue: qrun.Queue) -> None:
    first = queue.task(unique=True, name="t.a")(lambda n: None)
    second = queue.task(unique=True, name="t.b")(lambda n: None)
    assert not first.enqueue(1).duplicate
    assert not second.enqueue(1).duplicate


def test_unique_key_decides_what_makes_two_jobs_equal(queue: qrun.Queue, client: redis.Redis) -> None:
    @queue.task(unique_key=lambda user_id, message: f"user-{user_id}", name="t.notify")
    def notify(user_id: int, message: str) -> None: ...

    first = notify.enqueue(5, "hello")
    again = notify.enqueue(user_id=5, message="a different text")
    other = notify.enqueue(6, "hello")
    assert again.duplicate and again.id == first.id
    assert not other.duplicate
    assert client.xlen(STREAM) == 2


def test_a_unique_key_that_is_not_a_string_is_refused_before_anything_is_sent(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    notify = queue.task(unique_key=lambda n: n, name="t.bad_key")(lambda n: None)
    with pytest.raises(qrun.ConfigurationError, match="must return a str, got int"):
        notify.enqueue(5)
    assert client.xlen(STREAM) == 0


def test_bad_arguments_of_a_unique_task_fail_like_any_other(queue: qrun.Queue, client: redis.Redis) -> None:
    @queue.task(unique=True, name="t.args")
    def job(when: str) -> None: ...

    with pytest.raises(qrun.PayloadError, match="argument 'when'"):
        job.enqueue({1, 2})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot enqueue t.args"):
        job.enqueue(1, 2)  # type: ignore[call-arg]
    assert client.xlen(STREAM) == 0 and claims(client) == []


def test_the_claim_expires_after_unique_for(queue: qrun.Queue, client: redis.Redis) -> None:
    @queue.task(unique=True, unique_for=0.2, name="t.short")
    def short(n: int) -> None: ...

    first = short.enqueue(1)
    assert short.enqueue(1).duplicate
    time.sleep(0.3)
    again = short.enqueue(1)
    assert not again.duplicate and again.id != first.id
    assert client.xlen(STREAM) == 2


def test_a_success_frees_the_claim_so_the_same_job_can_be_enqueued_again(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    ran: list[int] = []

    @queue.task(unique=True, name="t.ok")
    def ok(n: int) -> None:
        ran.append(n)

    first = ok.enqueue(1)
    drain(queue)
    assert ran == [1]
    assert claims(client) == []
    again = ok.enqueue(1)
    assert not again.duplicate and again.id != first.id


def test_dead_lettering_frees_the_claim(queue: qrun.Queue, client: redis.Redis) -> None:
    @queue.task(unique=True, name="t.doomed")
    def doomed(n: int) -> None:
        raise RuntimeError("no")

    first = doomed.enqueue(1)
    drain(queue)
    assert client.xlen(DEAD) == 1
    assert claims(client) == []
    assert not doomed.enqueue(1).duplicate
    assert first.id != ""


def test_a_retry_keeps_the_claim(queue: qrun.Queue, client: redis.Redis) -> None:
    attempts: list[int] = []

    @queue.task(unique=True, retries=1, backoff_base=30, backoff_cap=30, name="t.flaky")
    def flaky(n: int) -> None:
        attempts.append(n)
        raise RuntimeError("not yet")

    first = flaky.enqueue(1)
    worker = Worker([queue], read_block_ms=50)
    worker.boot()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while client.zcard(DELAYED) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.request_stop()
        thread.join(timeout=5)
    assert attempts == [1] and client.zcard(DELAYED) == 1  # waiting for its second attempt
    again = flaky.enqueue(1)
    assert again.duplicate and again.id == first.id
    assert client.xlen(STREAM) == 0 and client.zcard(DELAYED) == 1


def test_enqueue_many_collapses_duplicates_within_the_batch_and_with_queued_jobs(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    @queue.task(unique=True, name="t.many")
    def many(n: int) -> None: ...

    waiting = many.enqueue(3)
    ids = queue.enqueue_many(many, [(1,), (2,), [1], (3,), (2,), {"n": 4}], batch_size=2)
    assert len(ids) == 6
    assert ids[2] == ids[0] and ids[4] == ids[1]
    assert ids[3] == waiting.id
    assert len({ids[0], ids[1], ids[3], ids[5]}) == 4
    entries = client.xrange(STREAM)
    assert [fields[b"id"].decode() for _, fields in entries] == [waiting.id, ids[0], ids[1], ids[5]]
    assert queue.stats()["enqueued"] == 4


def test_enqueue_many_of_a_unique_task_survives_a_flushed_script_cache(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    @queue.task(unique=True, name="t.reload")
    def reload(n: int) -> None: ...

    reload.enqueue(0)
    client.script_flush()
    ids = queue.enqueue_many(reload, [(n % 3,) for n in range(6)])
    assert ids[:3] == ids[3:] and client.xlen(STREAM) == 3
    client.script_flush()
    assert reload.enqueue(0).duplicate


def test_a_bad_item_in_a_unique_batch_enqueues_nothing(queue: qrun.Queue, client: redis.Redis) -> None:
    @queue.task(unique=True, name="t.batch")
    def batch(n: object) -> None: ...

    with pytest.raises(qrun.PayloadError, match="item 2 of the batch"):
        queue.enqueue_many(batch, [(1,), (2,), (float("nan"),)])
    assert client.xlen(STREAM) == 0 and claims(client) == []


def test_a_delayed_unique_job_holds_its_claim_through_the_delay(queue: qrun.Queue, client: redis.Redis) -> None:
    @queue.task(unique=True, unique_for=10, name="t.later")
    def later(n: int) -> None: ...

    scheduled = later.enqueue_in(60, 1)
    assert not scheduled.duplicate and scheduled.due_at_ms is not None
    now_dup = later.enqueue(1)
    later_dup = later.enqueue_in(5, 1)
    assert now_dup.duplicate and now_dup.id == scheduled.id
    assert later_dup.duplicate and later_dup.id == scheduled.id and later_dup.due_at_ms is None
    assert client.xlen(STREAM) == 0 and client.zcard(DELAYED) == 1
    [claim] = claims(client)
    assert 69_000 < client.pttl(claim) <= 70_000  # the delay plus unique_for
    assert queue.stats()["enqueued"] == 1


def test_a_delayed_unique_job_runs_then_frees_its_claim(queue: qrun.Queue, client: redis.Redis) -> None:
    ran: list[int] = []

    @queue.task(unique=True, name="t.soon")
    def soon(n: int) -> None:
        ran.append(n)

    soon.enqueue_in(0.05, 1)
    assert soon.enqueue_in(0.05, 1).duplicate
    drain(queue)
    assert ran == [1] and claims(client) == []


def test_enqueue_by_task_name_respects_uniqueness_when_the_queue_knows_the_task(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    @queue.task(unique=True, name="t.named")
    def named(n: int) -> None: ...

    first = named.enqueue(1)
    assert queue.enqueue("t.named", 1).id == first.id
    assert queue.enqueue_many("t.named", [(1,), (2,)])[0] == first.id
    assert client.xlen(STREAM) == 2


def test_ordinary_tasks_leave_no_claims(queue: qrun.Queue, client: redis.Redis) -> None:
    @queue.task(name="t.plain")
    def plain(n: int) -> None: ...

    assert not plain.enqueue(1).duplicate and not plain.enqueue(1).duplicate
    queue.enqueue_many(plain, [(1,), (1,)])
    plain.enqueue_in(10, 1)
    assert client.xlen(STREAM) == 4 and client.zcard(DELAYED) == 1
    assert claims(client) == []


def test_concurrent_producers_enqueue_one_job(queue: qrun.Queue, client: redis.Redis) -> None:
    @queue.task(unique=True, name="t.race")
    def race(n: int) -> None: ...

    results: list[qrun.EnqueuedJob] = []
    barrier = threading.Barrier(4)

    def produce() -> None:
        barrier.wait()
        for _ in range(20):
            results.append(race.enqueue(1))

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 80 and len({job.id for job in results}) == 1
    assert sum(not job.duplicate for job in results) == 1
    assert client.xlen(STREAM) == 1


def test_purge_drops_the_claims_of_the_jobs_it_deletes(queue: qrun.Queue, client: redis.Redis) -> None:
    @queue.task(unique=True, name="t.purged")
    def purged(n: int) -> None: ...

    purged.enqueue(1)
    with queue.lock("keep-me"):
        queue.purge()
        assert claims(client) == [] and client.exists("{qrun:uniq}:lock:keep-me") == 1
    assert not purged.enqueue(1).duplicate
