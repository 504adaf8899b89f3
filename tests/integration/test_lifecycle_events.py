"""A queue with events=True tells watchers what happens to each job, without a round trip
per job: enqueued, started, succeeded / failed, retrying, dead, in order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import qrun
from qrun.events import all_channel, decode_message, job_channel
from qrun.worker import Worker
from tests.integration.drain import drain

watched = qrun.Queue("watched", events=True, retries=1, backoff_base=0.05, backoff_cap=0.1)


@watched.task(name="t.ok")
def ok() -> None:
    pass


@watched.task(name="t.broken")
def broken() -> None:
    raise ValueError("nope")


@watched.task(name="t.slow")
def slow(seconds: float) -> None:
    time.sleep(seconds)


@pytest.fixture
def events(client: redis.Redis, url: str) -> Iterator[Any]:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(all_channel("qrun"))
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    yield pubsub
    pubsub.close()
    watched.close()


def collect(pubsub: Any, until: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while len(found) < until and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message is not None:
            found.extend(decode_message(message["data"]))
    return found


def test_each_job_reports_its_life_on_the_all_channel_in_order(events: Any) -> None:
    good = watched.enqueue(ok)
    bad = watched.enqueue(broken)
    drain(watched)
    seen = collect(events, until=9)
    by_job: dict[str, list[str]] = {}
    for event in seen:
        by_job.setdefault(event["job"], []).append(event["event"])
    assert by_job[good.id] == ["enqueued", "started", "succeeded"]
    assert by_job[bad.id] == ["enqueued", "started", "failed", "retrying", "started", "failed", "dead"]
    dead = [event for event in seen if event["event"] == "dead"][0]
    assert dead["reason"] == "failed 2 times; no retries left" and dead["error"] == "ValueError: nope"
    assert all(event["queue"] == "watched" for event in seen)


def test_a_slow_job_reports_started_while_it_runs_on_its_own_channel(client: redis.Redis, url: str) -> None:
    job = watched.enqueue(slow, 1.0)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(job_channel("qrun", job.id))
    pubsub.get_message(timeout=1)
    arrivals: list[tuple[float, str]] = []
    started = time.monotonic()

    def listen() -> None:
        deadline = time.monotonic() + 10
        while len(arrivals) < 2 and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.1)
            if message is not None:
                arrivals.extend((time.monotonic() - started, e["event"]) for e in decode_message(message["data"]))

    listener = threading.Thread(target=listen)
    listener.start()
    drain(watched)
    listener.join(timeout=15)
    pubsub.close()
    watched.close()
    assert [name for _, name in arrivals] == ["started", "succeeded"]
    assert arrivals[0][0] < 0.8 < arrivals[1][0]  # "started" came before the second of work ended


def test_queues_publish_no_events_unless_asked(client: redis.Redis, url: str) -> None:
    quiet = qrun.Queue("quiet")
    assert quiet.events is False
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(all_channel("qrun"))
    pubsub.get_message(timeout=1)
    quiet.task(name="t.q")(lambda: None)
    quiet.enqueue("t.q")
    drain(quiet)
    assert collect(pubsub, until=1, timeout_s=0.5) == []
    pubsub.close()
    quiet.close()
    with pytest.raises(qrun.ConfigurationError, match="events must be True or False"):
        qrun.Queue("x", events="yes")  # type: ignore[arg-type]


def test_a_job_the_claimer_dead_letters_publishes_its_dead_event(events: Any, client: redis.Redis, url: str) -> None:
    from qrun import settings
    from qrun.maintenance import Maintenance

    fragile = qrun.Queue("fragile", events=True, visibility_timeout=1.0, max_deliveries=1)
    fragile.ensure_group()
    job = fragile.enqueue("t.gone")
    client.xreadgroup(settings.CONSUMER_GROUP, "a-worker-that-died", {fragile.keys.stream: ">"}, count=1)
    time.sleep(1.1)
    collect(events, until=1, timeout_s=0.5)  # drop the enqueued event

    Maintenance([fragile]).reclaim()

    [dead] = collect(events, until=1)
    assert (dead["event"], dead["job"], dead["task"], dead["queue"]) == ("dead", job.id, "t.gone", "fragile")
    assert dead["reason"] == "delivered 1 times without ack (worker died?)"
    fragile.close()


def test_a_job_with_a_hard_limit_in_a_batch_publishes_started_before_it_runs(events: Any, url: str) -> None:
    """The supervisor may SIGKILL it at its hard limit: its `started` must not wait in the
    worker's memory for the end of the batch (it would die with the worker)."""
    seen_while_running: list[bool] = []

    @watched.task(name="t.limited_checks", time_limit=30)
    def limited_checks() -> None:
        job = qrun.current_job()
        assert job is not None
        seen = collect(events, until=10, timeout_s=2.0)
        seen_while_running.append(any(e["event"] == "started" and e["job"] == job.id for e in seen))

    watched.enqueue(ok)
    watched.enqueue(limited_checks)
    worker = Worker([watched], read_block_ms=50)
    worker.boot()
    try:
        worker._prefetch = 2  # noqa: SLF001 - a batch of two, as after fast jobs
        jobs, _ = worker.wire.fetch(2)  # type: ignore[union-attr]
        assert len(jobs) == 2
        worker._run_batch(jobs)  # noqa: SLF001
    finally:
        worker.close()
    assert seen_while_running == [True]
