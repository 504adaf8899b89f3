"""The claimer and its friends against a real server, called directly (no supervisor).

A fake consumer reads entries with XREADGROUP and never acks them: that is what a worker
that died mid-job leaves behind. Each test then runs one piece of ``qrun.recovery`` and
looks at the stream, the pending list, the dead stream and the counters.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import qrun
import qrun.job
import redis
from qrun import recovery, settings

from .drain import drain

GROUP = settings.CONSUMER_GROUP
VISIBILITY_S = 1.0  # the least a queue accepts


@pytest.fixture
def queue(url: str) -> Iterator[qrun.Queue]:
    with qrun.Queue("recovery", url, visibility_timeout=VISIBILITY_S, max_deliveries=3, retries=0) as queue:
        queue.ensure_group()
        yield queue


def _task(queue: qrun.Queue, seen: list[Any] | None = None) -> Any:
    sink = seen if seen is not None else []
    return queue.task(name="t.job")(sink.append)


def _read(client: redis.Redis, queue: qrun.Queue, consumer: str, count: int = 1) -> list[str]:
    """Deliver up to ``count`` new entries to ``consumer`` (left pending: it never acks)."""
    reply = client.xreadgroup(GROUP, consumer, {queue.keys.stream: ">"}, count=count)
    return [entry_id.decode() for _, entries in reply for entry_id, _ in entries]


def _pending(client: redis.Redis, queue: qrun.Queue, consumer: str | None = None) -> list[dict[str, Any]]:
    return client.xpending_range(queue.keys.stream, GROUP, "-", "+", 10_000, consumername=consumer)


def _entries(client: redis.Redis, queue: qrun.Queue) -> list[tuple[str, dict[bytes, bytes]]]:
    return [(entry_id.decode(), fields) for entry_id, fields in client.xrange(queue.keys.stream)]


def _wait_idle(seconds: float = VISIBILITY_S) -> None:
    time.sleep(seconds + 0.05)


# -- redelivery ---------------------------------------------------------------------------


def test_an_entry_idle_past_the_visibility_timeout_is_redelivered_as_a_new_entry_with_its_deliveries(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    seen: list[Any] = []
    task = _task(queue, seen)
    job = task.enqueue({"n": 1})
    [old_id] = _read(client, queue, "dead-worker")
    _wait_idle()

    done = recovery.reclaim(queue)

    assert (done.looked_at, done.redelivered, done.dead_lettered) == (1, 1, 0)
    [(new_id, fields)] = _entries(client, queue)
    assert new_id != old_id and client.xrange(queue.keys.stream, old_id, old_id) == []
    assert fields[b"id"] == job.id.encode() and fields[b"task"] == b"t.job"
    assert json.loads(fields[b"args"]) == [{"n": 1}]
    assert fields[b"attempt"] == b"1"  # a redelivery is not a retry
    assert fields[b"deliveries"] == b"1"
    assert _pending(client, queue) == []
    assert queue.stats()["redelivered"] == 1
    drain(queue)  # the new entry is a job a worker runs like any other
    assert seen == [{"n": 1}]
    assert queue.stats()["succeeded"] == 1


def test_an_entry_not_yet_idle_for_the_visibility_timeout_is_left_alone(client: redis.Redis, url: str) -> None:
    with qrun.Queue("patient", url, visibility_timeout=30) as queue:
        queue.ensure_group()
        _task(queue).enqueue(1)
        [entry_id] = _read(client, queue, "busy-worker")
        time.sleep(0.3)

        done = recovery.reclaim(queue)

        assert (done.looked_at, done.redelivered, done.dead_lettered) == (0, 0, 0)
        [pending] = _pending(client, queue)
        assert (pending["message_id"].decode(), pending["consumer"].decode()) == (entry_id, "busy-worker")
        assert pending["times_delivered"] == 1
        assert queue.stats()["redelivered"] == 0


def test_a_job_delivered_max_deliveries_times_without_ack_is_dead_lettered_with_the_reason(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    job = _task(queue).enqueue("payload")
    first_id = None
    for delivery in range(1, queue.max_deliveries):
        [entry_id] = _read(client, queue, f"doomed-{delivery}")
        first_id = first_id or entry_id
        _wait_idle()
        done = recovery.reclaim(queue)
        assert (done.redelivered, done.dead_lettered) == (1, 0)
        [(_, fields)] = _entries(client, queue)
        assert fields[b"deliveries"] == str(delivery).encode()
    [last_id] = _read(client, queue, "doomed-last")
    _wait_idle()

    done = recovery.reclaim(queue)

    assert (done.redelivered, done.dead_lettered) == (0, 1)
    assert client.xlen(queue.keys.stream) == 0 and _pending(client, queue) == []
    [dead] = queue.dead_letters()
    assert dead["id"] == job.id and dead["task"] == "t.job" and json.loads(dead["args"]) == ["payload"]
    assert dead["dead_reason"] == f"delivered {queue.max_deliveries} times without ack (worker died?)"
    assert dead["dead_reason"] == "delivered 3 times without ack (worker died?)"
    assert dead["dead_entry_id"] == last_id and last_id != first_id
    assert dead["dead_error_type"] == ""
    assert abs(int(dead["dead_at"]) - time.time() * 1000) < 10_000
    stats = queue.stats()
    assert (stats["redelivered"], stats["dead_lettered"], stats["dead"]) == (2, 1, 1)


def test_deliveries_counted_by_the_pending_list_itself_also_reach_the_dead_stream(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    """XCLAIM (another claimer, an operator) bumps an entry's delivery count in place: those count too."""
    _task(queue).enqueue(1)
    [entry_id] = _read(client, queue, "a")
    client.xclaim(queue.keys.stream, GROUP, "b", 0, [entry_id])
    client.xclaim(queue.keys.stream, GROUP, "c", 0, [entry_id])
    assert _pending(client, queue)[0]["times_delivered"] == 3
    _wait_idle()

    done = recovery.reclaim(queue)

    assert (done.redelivered, done.dead_lettered) == (0, 1)
    [dead] = queue.dead_letters()
    assert dead["dead_reason"] == "delivered 3 times without ack (worker died?)"


def test_an_entry_deleted_while_pending_is_cleared_from_the_pending_list_and_not_redelivered(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    task = _task(queue)
    task.enqueue("gone")
    task.enqueue("kept")
    gone_id, _kept_id = _read(client, queue, "dead-worker", count=2)
    client.xdel(queue.keys.stream, gone_id)
    _wait_idle()

    done = recovery.reclaim(queue)

    assert (done.looked_at, done.redelivered, done.dead_lettered) == (2, 1, 0)
    [(_, fields)] = _entries(client, queue)
    assert json.loads(fields[b"args"]) == ["kept"]
    assert _pending(client, queue) == []
    assert client.xlen(queue.keys.dead) == 0
    assert queue.stats()["redelivered"] == 1


def test_reclaim_before_any_worker_created_the_group_does_nothing(client: redis.Redis, url: str) -> None:
    with qrun.Queue("never-served", url) as queue:
        _task(queue).enqueue(1)  # the stream exists, the group does not
        assert recovery.reclaim(queue, min_idle_ms=0) == recovery.Reclaimed()
        recovery.extend_visibility(queue, {"nobody": ["1-0"]})
        assert recovery.forget_consumer(queue, "nobody") is True
        assert recovery.forget_idle_consumers(queue, idle_s=0) == 0
        assert client.xlen(queue.keys.stream) == 1


# -- leases (Job.extend) ----------------------------------------------------------------------


def test_a_lease_from_job_extend_keeps_an_idle_entry_hidden_until_it_expires(
    queue: qrun.Queue, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qrun.job, "_consumer", "long-runner")  # what a worker's boot sets
    job_handle = _task(queue).enqueue(1)
    [entry_id] = _read(client, queue, "long-runner")
    job = qrun.job.Job(queue.name, entry_id, job_handle.id, "t.job", (1,), _queue=queue)
    job.extend(2.5)
    lease_ms = client.zscore(queue.keys.leases, entry_id)
    assert lease_ms is not None and lease_ms > time.time() * 1000 + 2300
    job.extend(0.1)  # a shorter extension never shortens the lease
    assert client.zscore(queue.keys.leases, entry_id) == lease_ms
    _wait_idle()  # idle past the visibility timeout, but leased

    held = recovery.reclaim(queue)

    assert (held.looked_at, held.redelivered, held.dead_lettered) == (1, 0, 0)
    assert [p["message_id"].decode() for p in _pending(client, queue)] == [entry_id]
    while time.time() * 1000 <= lease_ms + 20:
        time.sleep(0.05)

    freed = recovery.reclaim(queue)

    assert (freed.redelivered, freed.dead_lettered) == (1, 0)
    assert client.zcard(queue.keys.leases) == 0  # the expired lease is dropped
    assert _pending(client, queue) == []


def test_a_lease_in_the_leases_zset_is_respected_and_expired_leases_are_dropped(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    task = _task(queue)
    task.enqueue("leased")
    task.enqueue("free")
    leased_id, _free_id = _read(client, queue, "dead-worker", count=2)
    now_ms = int(time.time() * 1000)
    client.zadd(queue.keys.leases, {leased_id: now_ms + 60_000, "1-1": now_ms - 1, "2-1": now_ms - 60_000})
    _wait_idle()

    done = recovery.reclaim(queue)

    assert (done.looked_at, done.redelivered) == (2, 1)
    assert [p["message_id"].decode() for p in _pending(client, queue)] == [leased_id]
    assert client.zrange(queue.keys.leases, 0, -1) == [leased_id.encode()]
    [(_, fields)] = _entries(client, queue)[1:]  # the leased entry stays, the free one is re-added
    assert json.loads(fields[b"args"]) == ["free"]


def test_job_extend_outside_a_worker_is_refused_and_a_negative_lease_is_a_configuration_error(
    queue: qrun.Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qrun.job, "_consumer", None)
    job = qrun.job.Job(queue.name, "1-0", "x", "t.job", (), _queue=queue)
    with pytest.raises(RuntimeError, match="inside a job"):
        job.extend(5)
    with pytest.raises(qrun.ConfigurationError, match=r"extend\(seconds\)"):
        job.extend(-1)


# -- extend_visibility ------------------------------------------------------------------------


def test_extend_visibility_resets_idle_time_without_changing_owner_or_delivery_count(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    task = _task(queue)
    task.enqueue(1)
    task.enqueue(2)
    mine, settled = _read(client, queue, "live-worker", count=2)
    client.xack(queue.keys.stream, GROUP, settled)  # settled meanwhile: must be ignored
    time.sleep(0.35)
    [before] = _pending(client, queue)
    assert before["time_since_delivered"] >= 300

    recovery.extend_visibility(queue, {"live-worker": [mine, settled]})

    [after] = _pending(client, queue)
    assert after["message_id"].decode() == mine
    assert after["time_since_delivered"] < 250
    assert after["consumer"] == b"live-worker"
    assert after["times_delivered"] == before["times_delivered"] == 1
    assert recovery.reclaim(queue).redelivered == 0  # fresh again: the claimer leaves it
    recovery.extend_visibility(queue, {})  # nothing held: no round trip, no error


# -- many claimers, batches, one consumer -------------------------------------------------------


def test_two_claimers_at_once_redeliver_each_of_500_idle_entries_exactly_once(
    queue: qrun.Queue, client: redis.Redis, url: str
) -> None:
    jobs = 500
    task = _task(queue)
    ids = queue.enqueue_many(task, [(n,) for n in range(jobs)])
    assert len(_read(client, queue, "dead-worker", count=jobs)) == jobs
    _wait_idle()
    results: list[recovery.Reclaimed] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def claimer() -> None:
        with qrun.Queue("recovery", url, visibility_timeout=VISIBILITY_S, max_deliveries=3) as own:
            try:
                start.wait(timeout=5)
                results.append(recovery.reclaim(own, batch_size=25))
            except BaseException as error:  # noqa: BLE001 - reported by the main thread
                errors.append(error)

    threads = [threading.Thread(target=claimer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors and len(results) == 2

    assert sum(r.redelivered for r in results) == jobs
    assert sum(r.dead_lettered for r in results) == 0
    entries = _entries(client, queue)
    job_ids = [fields[b"id"].decode() for _, fields in entries]
    assert len(entries) == jobs and sorted(job_ids) == sorted(ids)  # each once, none lost
    assert all(fields[b"deliveries"] == b"1" for _, fields in entries)
    assert _pending(client, queue) == []
    assert queue.stats()["redelivered"] == jobs


def test_consumer_limits_the_pass_to_that_consumers_entries(queue: qrun.Queue, client: redis.Redis) -> None:
    task = _task(queue)
    queue.enqueue_many(task, [(n,) for n in range(6)])
    dead_ids = _read(client, queue, "dead-worker", count=3)
    live_ids = _read(client, queue, "live-worker", count=3)
    _wait_idle()

    done = recovery.reclaim(queue, consumer="dead-worker")

    assert (done.looked_at, done.redelivered) == (3, 3)
    assert sorted(p["message_id"].decode() for p in _pending(client, queue)) == sorted(live_ids)
    assert all(p["consumer"] == b"live-worker" for p in _pending(client, queue))
    assert not set(dead_ids) & {entry_id for entry_id, _ in _entries(client, queue)}
    assert recovery.reclaim(queue, consumer="nobody") == recovery.Reclaimed()


def test_min_idle_ms_overrides_the_visibility_timeout(client: redis.Redis, url: str) -> None:
    with qrun.Queue("overridden", url, visibility_timeout=30) as queue:
        queue.ensure_group()
        _task(queue).enqueue(1)
        _read(client, queue, "reaped-worker")
        time.sleep(0.15)
        assert recovery.reclaim(queue, min_idle_ms=5_000).redelivered == 0
        assert recovery.reclaim(queue, min_idle_ms=100).redelivered == 1


def test_a_pass_continues_past_batch_size_with_its_cursor_and_stops_at_max_batches(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    task = _task(queue)
    queue.enqueue_many(task, [(n,) for n in range(25)])
    assert len(_read(client, queue, "dead-worker", count=25)) == 25
    _wait_idle()

    bounded = recovery.reclaim(queue, batch_size=10, max_batches=2)

    assert (bounded.looked_at, bounded.redelivered) == (20, 20)
    assert len(_pending(client, queue)) == 5

    rest = recovery.reclaim(queue, batch_size=10)

    assert (rest.looked_at, rest.redelivered) == (5, 5)
    assert _pending(client, queue) == []
    args = sorted(json.loads(fields[b"args"])[0] for _, fields in _entries(client, queue))
    assert args == list(range(25))


def test_leased_entries_do_not_stop_a_pass_from_reaching_the_entries_after_them(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    """A full batch of leased entries still moves the cursor on to the idle ones behind it."""
    task = _task(queue)
    queue.enqueue_many(task, [(n,) for n in range(15)])
    ids = _read(client, queue, "dead-worker", count=15)
    until_ms = int(time.time() * 1000) + 60_000
    client.zadd(queue.keys.leases, {entry_id: until_ms for entry_id in ids[:10]})
    _wait_idle()

    done = recovery.reclaim(queue, batch_size=5)

    assert (done.looked_at, done.redelivered) == (15, 5)
    assert sorted(p["message_id"].decode() for p in _pending(client, queue)) == sorted(ids[:10])


# -- dead-letter retention -------------------------------------------------------------------


def test_trim_dead_removes_dead_letters_older_than_the_retention_and_keeps_newer_ones(
    client: redis.Redis, url: str
) -> None:
    with qrun.Queue("retained", url, dead_retention=60) as queue:
        now_ms = int(time.time() * 1000)
        for offset_ms in (3_600_000, 120_000, 61_000):
            client.xadd(queue.keys.dead, {"id": f"old-{offset_ms}", "dead_reason": "x"}, id=f"{now_ms - offset_ms}-0")
        client.xadd(queue.keys.dead, {"id": "recent", "dead_reason": "x"}, id=f"{now_ms - 30_000}-0")
        client.xadd(queue.keys.dead, {"id": "just-now", "dead_reason": "x"})

        assert recovery.trim_dead(queue) == 3

        assert [fields[b"id"] for _, fields in client.xrange(queue.keys.dead)] == [b"recent", b"just-now"]
        assert recovery.trim_dead(queue) == 0


def test_trim_dead_with_no_retention_keeps_every_dead_letter(client: redis.Redis, url: str) -> None:
    with qrun.Queue("forever", url, dead_retention=None) as queue:
        client.xadd(queue.keys.dead, {"id": "ancient"}, id="1000-0")
        client.xadd(queue.keys.dead, {"id": "now"})
        assert recovery.trim_dead(queue) == 0
        assert client.xlen(queue.keys.dead) == 2


def test_trim_dead_with_zero_retention_drops_every_dead_letter_already_written(
    client: redis.Redis, url: str
) -> None:
    with qrun.Queue("fleeting", url, dead_retention=0) as queue:
        client.xadd(queue.keys.dead, {"id": "a"}, id=f"{int(time.time() * 1000) - 10}-0")
        assert recovery.trim_dead(queue) == 1
        assert client.xlen(queue.keys.dead) == 0


# -- consumers of dead workers --------------------------------------------------------------------


def _consumers(client: redis.Redis, queue: qrun.Queue) -> dict[str, int]:
    return {
        (info["name"].decode() if isinstance(info["name"], bytes) else info["name"]): int(info["pending"])
        for info in client.xinfo_consumers(queue.keys.stream, GROUP)
    }


def test_forget_consumer_refuses_while_entries_are_pending_and_removes_the_consumer_after(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    _task(queue).enqueue(1)
    [entry_id] = _read(client, queue, "dead-worker")

    assert recovery.forget_consumer(queue, "dead-worker") is False

    assert _consumers(client, queue) == {"dead-worker": 1}
    assert [p["message_id"].decode() for p in _pending(client, queue)] == [entry_id]  # not dropped
    _wait_idle()
    assert recovery.reclaim(queue, consumer="dead-worker").redelivered == 1

    assert recovery.forget_consumer(queue, "dead-worker") is True

    assert _consumers(client, queue) == {}
    assert client.xlen(queue.keys.stream) == 1  # the job itself is still there, ready
    assert recovery.forget_consumer(queue, "never-existed") is True


def test_forget_idle_consumers_removes_only_idle_consumers_with_nothing_pending(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    _task(queue).enqueue(1)
    _read(client, queue, "holds-a-job")
    _read(client, queue, "idle-and-empty")  # nothing left to read: a consumer with nothing pending
    time.sleep(0.7)
    _read(client, queue, "recent-and-empty")
    assert _consumers(client, queue) == {"holds-a-job": 1, "idle-and-empty": 0, "recent-and-empty": 0}

    assert recovery.forget_idle_consumers(queue, idle_s=0.5) == 1

    assert _consumers(client, queue) == {"holds-a-job": 1, "recent-and-empty": 0}
