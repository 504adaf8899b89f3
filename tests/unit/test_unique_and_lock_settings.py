"""Unique-task and lock settings are checked where they are declared, with messages that say
the fix; digests and key names are pure functions (no server needed)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

import qrun
from qrun.keys import QueueKeys
from qrun.unique import DEFAULT_UNIQUE_FOR_S, UniquePolicy, unique_digest


@pytest.fixture
def queue() -> Iterator[qrun.Queue]:
    with qrun.Queue("unit", "redis://127.0.0.1:1/0") as queue:  # never connects
        yield queue


def test_unique_for_without_unique_says_to_add_unique(queue: qrun.Queue) -> None:
    with pytest.raises(qrun.ConfigurationError, match=r"add unique=True"):
        queue.task(unique_for=60)


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "60", True])
def test_bad_unique_for_values_are_refused(queue: qrun.Queue, value: object) -> None:
    with pytest.raises(qrun.ConfigurationError, match="unique_for must be a finite number of seconds"):
        queue.task(unique=True, unique_for=value)  # type: ignore[arg-type]


def test_unique_must_be_a_bool_and_unique_key_a_function(queue: qrun.Queue) -> None:
    with pytest.raises(qrun.ConfigurationError, match="unique must be True or False"):
        queue.task(unique="yes")  # type: ignore[arg-type]
    with pytest.raises(qrun.ConfigurationError, match="unique_key must be a function"):
        queue.task(unique_key="user_id")  # type: ignore[arg-type]


def test_the_policy_is_stored_on_the_task(queue: qrun.Queue) -> None:
    def key(n: int) -> str:
        return str(n)

    plain = queue.task(name="t.plain")(lambda n: None)
    unique = queue.task(unique=True, name="t.unique")(lambda n: None)
    keyed = queue.task(unique_key=key, unique_for=5, name="t.keyed")(lambda n: None)  # unique_key implies unique
    assert plain.unique is None
    assert unique.unique == UniquePolicy(None, DEFAULT_UNIQUE_FOR_S)
    assert keyed.unique == UniquePolicy(key, 5.0)
    assert DEFAULT_UNIQUE_FOR_S == 3600.0


def test_the_digest_is_sha1_of_the_task_and_the_canonical_arguments(queue: qrun.Queue) -> None:
    task = queue.task(unique=True, name="t.d")(lambda *a, **k: None)
    expected = hashlib.sha1('t.d\0[[1,"é"],{"a":{"x":1,"y":2},"b":null}]'.encode()).hexdigest()
    assert unique_digest(task, (1, "é"), {"b": None, "a": {"y": 2, "x": 1}}) == expected
    assert unique_digest(task, [1, "é"], {"a": {"x": 1, "y": 2}, "b": None}) == expected  # as a worker decodes it
    assert unique_digest(task, (2,), {}) != unique_digest(task, (1,), {})
    other = queue.task(unique=True, name="t.e")(lambda *a, **k: None)
    assert unique_digest(other, (1, "é"), {"b": None, "a": {"y": 2, "x": 1}}) != expected


def test_unique_key_replaces_the_arguments_in_the_digest(queue: qrun.Queue) -> None:
    task = queue.task(unique_key=lambda user, text: f"u{user}", name="t.k")(lambda user, text: None)
    assert unique_digest(task, (1, "a"), {}) == unique_digest(task, (), {"user": 1, "text": "b"})
    assert unique_digest(task, (1, "a"), {}) == hashlib.sha1(b"t.k\0u1").hexdigest()


def test_lock_and_unique_keys_share_the_queue_hash_tag() -> None:
    keys = QueueKeys("qrun", "emails")
    assert keys.lock("report") == "{qrun:emails}:lock:report"
    assert keys.unique("ab12") == "{qrun:emails}:unique:ab12"


def test_locks_validate_their_settings_without_a_server(queue: qrun.Queue) -> None:
    lock = queue.lock("nightly", ttl=2, wait=0)
    assert (lock.key, lock.ttl_s, lock.wait_s, lock.auto_extend) == ("{qrun:unit}:lock:nightly", 2.0, 0.0, True)
    assert not lock.held and not lock.lost
    with pytest.raises(qrun.InvalidNameError, match="lock name 'a:b'"):
        queue.lock("a:b")
    with pytest.raises(qrun.ConfigurationError, match="ttl must be a finite number of seconds >= 0.01"):
        queue.lock("x", ttl=0.001)


def test_lock_errors_and_duplicate_flag_are_public() -> None:
    assert issubclass(qrun.LockNotAcquired, qrun.QrunError)
    assert "LockNotAcquired" in qrun.__all__ and "Lock" in qrun.__all__
    assert qrun.EnqueuedJob("id", "t", "q").duplicate is False
