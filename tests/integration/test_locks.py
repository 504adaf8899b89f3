"""Distributed locks against a real server: one holder at a time, owner-checked release and
extend, a clear error when the lock stays busy, and automatic extension while held."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
import redis

import qrun

KEY = "{qrun:locks}:lock:report"


@pytest.fixture
def queue(url: str) -> Iterator[qrun.Queue]:
    with qrun.Queue("locks", url) as queue:
        yield queue


def test_a_lock_is_one_key_in_the_queue_slot_holding_a_random_token(queue: qrun.Queue, client: redis.Redis) -> None:
    with queue.lock("report", ttl=10) as lock:
        assert lock.held and not lock.lost
        token = client.get(KEY)
        assert token is not None and len(token) == 32
        assert 9000 < client.pttl(KEY) <= 10000
    assert not lock.held
    assert client.exists(KEY) == 0


def test_a_second_acquirer_waits_and_gets_the_lock_once_it_is_released(queue: qrun.Queue) -> None:
    first = queue.lock("report").acquire()
    timeline: list[str] = []

    def second() -> None:
        with queue.lock("report", wait=5):
            timeline.append("second acquired")

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.2)
    assert timeline == []  # still waiting
    timeline.append("first released")
    first.release()
    thread.join(timeout=5)
    assert timeline == ["first released", "second acquired"]


def test_a_busy_lock_raises_lock_not_acquired_naming_the_lock_and_the_fix(queue: qrun.Queue) -> None:
    with queue.lock("report", ttl=20):
        started = time.monotonic()
        with pytest.raises(qrun.LockNotAcquired) as caught:
            queue.lock("report", wait=0.3).acquire()
        waited = time.monotonic() - started
        message = str(caught.value)
        assert 0.3 <= waited < 1.0
        assert "'report'" in message and "wait=0.3s" in message
        assert "another holder has it for" in message and "longer wait=" in message
        assert caught.value.name == "report" and caught.value.waited_s is not None
        with pytest.raises(qrun.LockNotAcquired, match="after one try"):
            queue.lock("report", wait=0).acquire()


def test_other_names_and_other_queues_are_other_locks(queue: qrun.Queue, url: str) -> None:
    with queue.lock("report", wait=0), queue.lock("invoices", wait=0):
        with qrun.Queue("other", url) as other, other.lock("report", wait=0) as elsewhere:
            assert elsewhere.held


def test_releasing_an_expired_lock_never_deletes_the_next_holders(
    queue: qrun.Queue, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    stale = queue.lock("report", ttl=0.1, auto_extend=False).acquire()
    time.sleep(0.2)  # expired
    fresh = queue.lock("report", wait=0).acquire()
    with caplog.at_level(logging.WARNING, logger="qrun.locks"):
        stale.release()  # warns, does not raise
    assert stale.lost and not stale.held
    assert "already expired when released" in caplog.text
    assert client.get(KEY) is not None and fresh.held
    fresh.release()
    assert client.exists(KEY) == 0


def test_auto_extend_keeps_a_lock_alive_past_its_ttl(queue: qrun.Queue, client: redis.Redis) -> None:
    with queue.lock("report", ttl=0.3) as lock:
        time.sleep(1.0)
        assert client.pttl(KEY) > 0
        assert lock.held and not lock.lost
        with pytest.raises(qrun.LockNotAcquired):
            queue.lock("report", wait=0).acquire()
    assert client.exists(KEY) == 0


def test_without_auto_extend_the_lock_expires_after_its_ttl(queue: qrun.Queue) -> None:
    with queue.lock("report", ttl=0.2, auto_extend=False):
        time.sleep(0.35)
        with queue.lock("report", wait=0) as other:
            assert other.held


def test_an_auto_extended_lock_that_was_lost_says_so_once(
    queue: qrun.Queue, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="qrun.locks"):
        with queue.lock("report", ttl=0.3) as lock:
            client.delete(KEY)  # as if it expired while the process stalled
            time.sleep(0.35)
            assert lock.lost and not lock.held
    assert caplog.text.count("was lost") == 1
    assert "already expired" not in caplog.text  # the release does not warn a second time


def test_extend_resets_the_ttl_and_reports_a_lost_lock(queue: qrun.Queue, client: redis.Redis) -> None:
    lock = queue.lock("report", ttl=1, auto_extend=False)
    with pytest.raises(qrun.LockNotAcquired, match="not held, so it cannot be extended"):
        lock.extend()
    lock.acquire()
    assert lock.extend(5) is True
    assert 4000 < client.pttl(KEY) <= 5000
    client.set(KEY, "someone else")
    assert lock.extend() is False
    assert lock.lost
    assert client.get(KEY) == b"someone else"  # not touched
    lock.release()
    assert client.get(KEY) == b"someone else"
    with pytest.raises(qrun.ConfigurationError, match="ttl must be"):
        lock.extend(-1)


def test_a_lock_object_is_not_reentrant_but_can_be_taken_again_after_release(queue: qrun.Queue) -> None:
    lock = queue.lock("report", wait=0)
    with lock:
        with pytest.raises(qrun.LockNotAcquired, match="not re-entrant"):
            lock.acquire()
    with lock:
        assert lock.held
    lock.release()  # releasing what is not held does nothing


@pytest.mark.parametrize("name", ["", "a b", "x:y", "{tag}", None])
def test_lock_names_are_validated(queue: qrun.Queue, name: object) -> None:
    with pytest.raises(qrun.InvalidNameError, match="lock name"):
        queue.lock(name)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"ttl": 0}, "ttl must be"), ({"ttl": float("inf")}, "ttl must be"), ({"wait": -1}, "wait must be"),
     ({"wait": "5"}, "wait must be"), ({"auto_extend": 1}, "auto_extend")],
)
def test_lock_settings_are_validated(queue: qrun.Queue, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(qrun.ConfigurationError, match=match):
        queue.lock("report", **kwargs)  # type: ignore[arg-type]


def test_many_threads_never_hold_the_lock_at_once(queue: qrun.Queue) -> None:
    inside = 0
    most = 0
    guard = threading.Lock()

    def contend() -> None:
        nonlocal inside, most
        for _ in range(5):
            with queue.lock("report", ttl=5, wait=10):
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.005)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=contend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert most == 1
