"""Guards of the recovery path: a claimer never takes its own live workers' entries, and an
entry too large to copy in one script call is dead-lettered instead of stuck."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

import qrun
from qrun import recovery, scripts, settings


@pytest.fixture
def queue(url: str) -> Iterator[qrun.Queue]:
    with qrun.Queue("guards", url, visibility_timeout=1.0) as queue:
        queue.ensure_group()
        yield queue


def _deliver(client: redis.Redis, queue: qrun.Queue, consumer: str, count: int = 1) -> list[str]:
    reply = client.xreadgroup(settings.CONSUMER_GROUP, consumer, {queue.keys.stream: ">"}, count=count)
    return [entry_id.decode() for entry_id, _ in reply[0][1]]


def test_the_claimer_never_takes_entries_of_consumers_it_knows_are_alive(queue: qrun.Queue, client: redis.Redis) -> None:
    queue.enqueue("t.any", 1)
    queue.enqueue("t.any", 2)
    [mine] = _deliver(client, queue, "alive-worker")
    [theirs] = _deliver(client, queue, "dead-worker")
    time.sleep(1.1)  # both idle past the visibility timeout

    done = recovery.reclaim(queue, alive=["alive-worker"])

    assert (done.redelivered, done.dead_lettered) == (1, 0)
    pending = client.xpending_range(queue.keys.stream, settings.CONSUMER_GROUP, "-", "+", 10)
    assert [p["message_id"].decode() for p in pending] == [mine]
    assert theirs not in [entry_id.decode() for entry_id, _ in client.xrange(queue.keys.stream)]


def test_handing_back_an_entry_too_large_to_copy_dead_letters_it_with_the_reason(
    queue: qrun.Queue, client: redis.Redis
) -> None:
    fields = {"id": "j1", "task": "t.any"} | {f"extra{n}": "x" for n in range(4_000)}
    client.xadd(queue.keys.stream, fields)
    [entry_id] = _deliver(client, queue, "w1")

    handed_back = scripts.RELEASE(
        queue.redis,
        [queue.keys.stream, queue.keys.dead, queue.keys.stats, queue.keys.cancelled],
        [settings.CONSUMER_GROUP, entry_id],
    )

    assert handed_back == [0, []]
    assert client.xlen(queue.keys.stream) == 0
    assert client.xpending(queue.keys.stream, settings.CONSUMER_GROUP)["pending"] == 0
    [dead] = queue.dead_letters(limit=1)
    assert dead["dead_reason"] == "entry has 4002 fields, too many to hand back"
    assert dead["fields_dropped"] == "4002" and dead["dead_entry_id"] == entry_id
    assert queue.stats()["dead_lettered"] == 1


def test_the_claimer_dead_letters_an_entry_too_large_to_redeliver(queue: qrun.Queue, client: redis.Redis) -> None:
    fields = {"id": "j1", "task": "t.any"} | {f"extra{n}": "x" for n in range(4_000)}
    client.xadd(queue.keys.stream, fields)
    _deliver(client, queue, "gone")
    time.sleep(1.1)

    done = recovery.reclaim(queue)

    assert (done.redelivered, done.dead_lettered) == (0, 1)
    [dead] = queue.dead_letters(limit=1)
    assert dead["dead_reason"] == "entry has 4002 fields, too many to redeliver"
    assert client.xlen(queue.keys.stream) == 0


def test_purge_deletes_every_key_of_the_queue_leases_included(queue: qrun.Queue, client: redis.Redis) -> None:
    queue.enqueue("t.any", 1)
    queue.enqueue_in(60, "t.any", 2)
    client.zadd(queue.keys.leases, {"1-1": time.time() * 1000 + 60_000})
    client.xadd(queue.keys.dead, {"id": "j", "dead_reason": "x"})
    queue.purge()
    keys = [queue.keys.stream, queue.keys.delayed, queue.keys.dead, queue.keys.stats, queue.keys.leases]
    assert client.exists(*keys) == 0
