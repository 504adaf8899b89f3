"""The producer side against a real server: what enqueue writes, and what it refuses."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import redis

import qrun
from qrun.connection import ProcessLocalClient
from qrun.embedded import EmbeddedValkey
from qrun.errors import PayloadError


@pytest.fixture
def queue(url: str) -> Iterator[qrun.Queue]:
    with qrun.Queue("emails", url) as queue:

        @queue.task(name="app.send_email")
        def send_email(to: str, subject: str = "") -> None: ...

        yield queue


def test_enqueue_writes_one_entry_with_the_documented_fields_in_order(queue: qrun.Queue, client: redis.Redis) -> None:
    before_ms = time.time() * 1000
    job = queue.tasks["app.send_email"].enqueue(to="a@b.c", subject="hi")
    [(entry_id, fields)] = client.xrange("{qrun:emails}:stream")
    assert list(fields) == [b"id", b"task", b"args", b"kwargs", b"attempt", b"enqueued_at"]
    assert fields[b"id"] == job.id.encode()
    assert fields[b"task"] == b"app.send_email"
    assert fields[b"args"] == b"[]"
    assert json.loads(fields[b"kwargs"]) == {"to": "a@b.c", "subject": "hi"}
    assert fields[b"attempt"] == b"1"
    assert before_ms - 1 <= int(fields[b"enqueued_at"]) <= time.time() * 1000 + 1
    assert client.hget("{qrun:emails}:stats", "enqueued") == b"1"


def test_enqueue_many_adds_every_job_and_returns_ids_in_item_order(queue: qrun.Queue, client: redis.Redis) -> None:
    items = [{"to": f"u{i}@b.c"} for i in range(2_500)]
    ids = queue.enqueue_many(queue.tasks["app.send_email"], items, batch_size=1_000)
    entries = client.xrange("{qrun:emails}:stream")
    assert len(ids) == len(set(ids)) == 2_500
    assert [fields[b"id"].decode() for _, fields in entries] == ids
    assert json.loads(entries[1234][1][b"kwargs"]) == {"to": "u1234@b.c"}


def test_enqueue_many_accepts_tuples_of_positional_arguments(queue: qrun.Queue, client: redis.Redis) -> None:
    queue.enqueue_many("app.send_email", [("a@b.c", "hi"), ["c@d.e"]])
    entries = client.xrange("{qrun:emails}:stream")
    assert [json.loads(fields[b"args"]) for _, fields in entries] == [["a@b.c", "hi"], ["c@d.e"]]


def test_a_non_json_argument_is_refused_at_enqueue_naming_the_argument(queue: qrun.Queue, client: redis.Redis) -> None:
    with pytest.raises(TypeError, match=r"argument 'to'.*set") as caught:
        queue.tasks["app.send_email"].enqueue({"x"}, subject="hi")
    assert isinstance(caught.value, PayloadError)
    assert caught.value.path == "args[0]"
    assert client.exists("{qrun:emails}:stream") == 0


def test_a_bad_item_in_a_batch_enqueues_nothing_and_names_the_item(queue: qrun.Queue, client: redis.Redis) -> None:
    items = [{"to": "ok"}] * 1_500 + [{"to": float("nan")}]
    with pytest.raises(PayloadError, match=r"item 1500 of the batch.*'to'") as caught:
        queue.enqueue_many("app.send_email", items, batch_size=1_000)
    assert caught.value.job_index == 1500
    assert client.exists("{qrun:emails}:stream") == 0


def test_arguments_that_do_not_fit_the_signature_are_refused_at_enqueue(queue: qrun.Queue, client: redis.Redis) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'too'"):
        queue.tasks["app.send_email"].enqueue("a@b.c", too="x")
    assert client.exists("{qrun:emails}:stream") == 0


def test_enqueue_in_waits_in_the_delayed_set_until_promoted(queue: qrun.Queue, client: redis.Redis) -> None:
    job = queue.tasks["app.send_email"].enqueue_in(60, to="later")
    assert client.xlen("{qrun:emails}:stream") == 0
    [(member, score)] = client.zrange("{qrun:emails}:delayed", 0, -1, withscores=True)
    assert json.loads(member)[0] == job.id
    assert score == job.due_at_ms
    assert queue.promote_due() == 0
    assert queue.promote_due(now_ms=job.due_at_ms) == 1
    [(_, fields)] = client.xrange("{qrun:emails}:stream")
    assert fields[b"id"] == job.id.encode() and fields[b"kwargs"] == b'{"to":"later"}'
    assert client.zcard("{qrun:emails}:delayed") == 0


def test_enqueue_at_uses_the_datetime_as_the_due_time(queue: qrun.Queue) -> None:
    when = datetime.now(timezone.utc) + timedelta(hours=1)
    job = queue.tasks["app.send_email"].enqueue_at(when, to="x")
    assert job.due_at_ms == int(when.timestamp() * 1000)


def test_negative_delay_is_a_configuration_error(queue: qrun.Queue) -> None:
    with pytest.raises(qrun.ConfigurationError, match="delay"):
        queue.tasks["app.send_email"].enqueue_in(-1, to="x")


def test_enqueue_recovers_when_the_server_lost_its_scripts(queue: qrun.Queue, client: redis.Redis) -> None:
    queue.tasks["app.send_email"].enqueue(to="a")
    client.script_flush()  # what a restart or failover does to the script cache
    queue.enqueue_many("app.send_email", [{"to": "b"}, {"to": "c"}])
    assert client.xlen("{qrun:emails}:stream") == 3


def test_the_prefix_namespaces_every_key(url: str, client: redis.Redis) -> None:
    with qrun.Queue("emails", url, prefix="tenant-a") as tenant:
        tenant.enqueue("app.send_email", to="x")
    assert client.keys("*stream") == [b"{tenant-a:emails}:stream"]


def test_enqueue_reconnects_after_the_server_restarted() -> None:
    """The producer's kept connection died with the server: the next enqueue replaces it."""
    server = EmbeddedValkey().start()
    try:
        with qrun.Queue("emails", server.url) as queue:
            queue.enqueue("app.send_email", to="before")
            server.stop(keep_data=True)
            server.start()
            queue.enqueue("app.send_email", to="after")  # stale connection, empty script cache
            assert queue.stats()["enqueued"] == 1  # a restart without persistence forgot the first
    finally:
        server.stop()


def test_a_failed_send_is_never_replayed_so_no_job_is_enqueued_twice(url: str) -> None:
    client = ProcessLocalClient(url)
    client.call(lambda connection: connection.send_command("PING") or connection.read_response())
    calls = []

    def fails_midway(connection: object) -> None:
        calls.append(connection)
        raise redis.ConnectionError("connection lost after the first chunk was confirmed")

    with pytest.raises(redis.ConnectionError):
        client.call(fails_midway)
    assert len(calls) == 1
    assert client.call(lambda connection: connection.send_command("PING") or connection.read_response()) == b"PONG"
    client.close()
