"""How a worker treats a fetched batch: acks survive errors, unstarted jobs are handed back,
reads outlive short socket timeouts, and a bad delayed member stops nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis

import qrun
from qrun import codec, settings
from qrun.maintenance import Maintenance
from qrun.worker import Worker

from .drain import drain

STREAM, DEAD, DELAYED = "{qrun:batch}:stream", "{qrun:batch}:dead", "{qrun:batch}:delayed"


@pytest.fixture
def queue(url: str) -> Iterator[qrun.Queue]:
    with qrun.Queue("batch", url, retries=1, backoff_base=0.05, backoff_cap=0.1) as queue:
        yield queue


def _one_batch(worker: Worker) -> None:
    jobs, _ = worker.wire.fetch(worker._read_count())  # noqa: SLF001 - one step of the loop
    worker._run_batch(jobs)  # noqa: SLF001


def test_jobs_that_finished_before_a_task_called_sys_exit_are_still_acked(
    queue: qrun.Queue, client: redis.Redis, make_worker: Callable[..., Worker]
) -> None:
    def step(n: int) -> None:
        if n == 2:
            raise SystemExit(3)

    task = queue.task(name="t.step")(step)
    queue.enqueue_many(task, [(n,) for n in range(5)])
    worker = make_worker([queue], read_block_ms=50)
    worker._prefetch = 5  # noqa: SLF001 - fetch the whole batch at once
    with pytest.raises(SystemExit):
        worker.run()
    stats = queue.stats()
    assert (stats["succeeded"], stats["in_flight"], stats["ready"]) == (2, 1, 2)  # 0, 1 acked; 2 pending; 3, 4 handed back


def test_a_batch_that_runs_past_its_budget_hands_back_the_jobs_it_did_not_start(
    queue: qrun.Queue, client: redis.Redis, make_worker: Callable[..., Worker]
) -> None:
    ran = []

    @queue.task(name="t.maybe_slow")
    def maybe_slow(n: int) -> None:
        ran.append(n)
        if n == 1:
            time.sleep(4 * settings.BATCH_WORK_S)

    queue.enqueue_many(maybe_slow, [(n,) for n in range(10)])
    first_ids = [entry_id for entry_id, _ in client.xrange(STREAM)]
    worker = make_worker([queue], read_block_ms=50)
    worker._prefetch = 10  # noqa: SLF001
    _one_batch(worker)
    assert ran == [0, 1]
    # The acks of the two that ran already left the worker (sent ahead, replies not read yet)
    assert client.xpending(STREAM, settings.CONSUMER_GROUP)["pending"] == 0
    handed_back = client.xrange(STREAM)
    assert [int(fields[b"args"][1:-1]) for _, fields in handed_back] == list(range(2, 10))
    assert all(entry_id not in first_ids for entry_id, _ in handed_back)  # fresh entries at the end
    assert all(fields[b"attempt"] == b"1" for _, fields in handed_back)  # never started: same attempt
    assert worker._prefetch == 1  # noqa: SLF001
    worker.wire.flush()  # what the next fetch would send
    drain(queue)
    assert sorted(ran) == list(range(10))


def test_a_stop_request_mid_batch_hands_back_the_rest(
    queue: qrun.Queue, client: redis.Redis, make_worker: Callable[..., Worker]
) -> None:
    worker = make_worker([queue], read_block_ms=50)
    ran = []

    @queue.task(name="t.stopper")
    def stopper(n: int) -> None:
        ran.append(n)
        if n == 0:
            worker.request_stop()  # what SIGTERM does

    queue.enqueue_many(stopper, [(n,) for n in range(6)])
    worker._prefetch = 6  # noqa: SLF001
    worker.run()
    assert ran == [0]
    stats = queue.stats()
    assert (stats["succeeded"], stats["in_flight"], stats["ready"]) == (1, 0, 5)


def test_a_blocking_read_outlives_a_shorter_socket_timeout(queue: qrun.Queue, url: str, make_worker: Callable[..., Worker]) -> None:
    with qrun.Queue("batch", f"{url}?socket_timeout=0.1") as impatient:
        worker = make_worker([impatient], read_block_ms=400)
        started = time.monotonic()
        assert worker.wire.fetch(worker._read_count()) == ([], [])  # noqa: SLF001 - an empty read, not a TimeoutError
        assert time.monotonic() - started >= 0.35


def test_a_worker_of_two_queues_splits_its_prefetch_between_them(url: str) -> None:
    with qrun.Queue("one", url) as one, qrun.Queue("two", url) as two:
        worker = Worker([one, two])
        worker._prefetch = 64  # noqa: SLF001
        assert worker._read_count() == 32  # noqa: SLF001


def test_a_delayed_member_with_a_null_is_dead_lettered_and_promotion_goes_on(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    seen = []
    task = queue.task(name="t.later")(seen.append)
    client.zadd(DELAYED, {'["j1","t.later","[]","{}","1",null]': 0})
    task.enqueue_in(0, "good")
    drain(queue)
    assert seen == ["good"]
    [(_, dead)] = client.xrange(DEAD)
    assert dead[b"delayed_member"] == b'["j1","t.later","[]","{}","1",null]'
    assert b"malformed entry" in dead[b"dead_reason"]


def test_burst_idleness_needs_two_empty_looks_in_a_row(queue: qrun.Queue) -> None:
    maintenance = Maintenance([queue])
    maintenance.tick()
    assert not maintenance.idle.is_set()
    maintenance.tick()
    assert maintenance.idle.is_set()


def test_enqueue_many_checks_every_item_against_the_signature(queue: qrun.Queue, client: redis.Redis) -> None:
    @queue.task(name="t.send")
    def send(to: str, subject: str = "") -> None: ...

    with pytest.raises(TypeError, match=r"cannot enqueue t.send: missing a required argument: 'to' \(item 2 of the batch\)"):
        queue.enqueue_many(send, [{"to": "a"}, {"to": "b", "subject": "s"}, {"too": "c"}])
    assert client.xlen(STREAM) == 0


def test_a_slow_queue_does_not_starve_the_other_queue_of_a_worker(url: str, make_worker: Callable[..., Worker]) -> None:
    ran: list[str] = []
    with qrun.Queue("slow", url) as slow, qrun.Queue("fast", url) as fast:
        slow_task = slow.task(name="t.slow")(lambda n: (ran.append("slow"), time.sleep(3 * settings.BATCH_WORK_S)))
        fast_task = fast.task(name="t.fast")(lambda n: ran.append("fast"))
        slow.enqueue_many(slow_task, [(n,) for n in range(4)])
        fast.enqueue_many(fast_task, [(n,) for n in range(2)])
        worker = make_worker([slow, fast], read_block_ms=50)
        for _ in range(3):
            _one_batch(worker)
        assert ran.count("fast") == 2  # the minimal read (one per queue) runs both queues' jobs


def test_an_ack_refused_by_the_server_hands_back_the_fetched_batch_and_fails_loudly(
    queue: qrun.Queue, client: redis.Redis, make_worker: Callable[..., Worker]
) -> None:
    task = queue.task(name="t.fine")(lambda n: None)
    queue.enqueue_many(task, [(n,) for n in range(4)])
    worker = make_worker([queue], read_block_ms=50)
    worker._prefetch = 2  # noqa: SLF001
    _one_batch(worker)  # two ran; their acks wait for the next fetch
    client.delete("{qrun:batch}:stats")
    client.set("{qrun:batch}:stats", "not a hash")  # ack.lua's HINCRBY now fails with WRONGTYPE
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        worker.wire.fetch(worker._read_count())  # noqa: SLF001
    pending = client.xpending(STREAM, settings.CONSUMER_GROUP)["pending"]
    assert pending == 0  # XACK ran before HINCRBY failed; the two fetched jobs went back
    assert client.xlen(STREAM) == 2  # the handed-back pair, ready for any worker
