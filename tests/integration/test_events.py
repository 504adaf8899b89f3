"""Lifecycle events on a real server: the channels, the batch script, NOSCRIPT, and `qrun events`."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from qrun import scripts
from qrun.connection import make_raw_connection
from qrun.embedded import free_port
from qrun.events import EventBatch, all_channel, job_channel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def subscriber(client: redis.Redis) -> Iterator[Any]:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(all_channel("qrun"), job_channel("qrun", "j1"), job_channel("qrun", "j2"))
    yield pubsub
    pubsub.close()


def received(pubsub: Any, count: int, timeout_s: float = 5.0) -> list[tuple[str, Any]]:
    """The next ``count`` messages as (channel, decoded JSON)."""
    messages: list[tuple[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while len(messages) < count:
        assert time.monotonic() < deadline, f"only {len(messages)} of {count} messages arrived: {messages}"
        message = pubsub.get_message(timeout=0.1)
        if message is not None:
            messages.append((message["channel"].decode(), json.loads(message["data"])))
    return messages


def sample_batch() -> EventBatch:
    batch = EventBatch("qrun")
    batch.add("started", "emails", "j1", "app.send", 1, at_ms=1000)
    batch.add("failed", "emails", "j1", "app.send", 1, at_ms=1001, error="RuntimeError: boom")
    batch.add("dead", "emails", "j1", "app.send", 1, at_ms=1002, reason="failed 1 times; no retries left")
    batch.add("succeeded", "emails", "j2", "app.other", 3, at_ms=1003)
    return batch


EXPECTED = [
    {"event": "started", "job": "j1", "task": "app.send", "queue": "emails", "attempt": 1, "at_ms": 1000},
    {"event": "failed", "job": "j1", "task": "app.send", "queue": "emails", "attempt": 1, "at_ms": 1001,
     "error": "RuntimeError: boom"},
    {"event": "dead", "job": "j1", "task": "app.send", "queue": "emails", "attempt": 1, "at_ms": 1002,
     "reason": "failed 1 times; no retries left"},
    {"event": "succeeded", "job": "j2", "task": "app.other", "queue": "emails", "attempt": 3, "at_ms": 1003},
]


def test_each_event_reaches_its_job_channel_and_the_batch_reaches_all_as_one_array(
    client: redis.Redis, subscriber: Any
) -> None:
    scripts.load_all(client)
    sample_batch().publish(client)
    messages = received(subscriber, 5)
    per_job = [(channel, data) for channel, data in messages if channel != "qrun:events:all"]
    assert per_job == [
        ("qrun:events:job:j1", EXPECTED[0]), ("qrun:events:job:j1", EXPECTED[1]),
        ("qrun:events:job:j1", EXPECTED[2]), ("qrun:events:job:j2", EXPECTED[3]),
    ]
    assert [data for channel, data in messages if channel == "qrun:events:all"] == [EXPECTED]
    assert subscriber.get_message(timeout=0.2) is None  # nothing else: one all-message per batch


def test_commands_sent_over_a_raw_connection_publish_the_same(client: redis.Redis, subscriber: Any) -> None:
    scripts.load_all(client)
    connection = make_raw_connection(client)
    try:
        commands = sample_batch().commands()
        connection.send_packed_command([b"".join(connection.pack_command(*command)) for command in commands])
        assert [connection.read_response() for _ in commands] == [4]
    finally:
        connection.disconnect()
    messages = received(subscriber, 5)
    assert [data for channel, data in messages if channel == "qrun:events:all"] == [EXPECTED]
    assert [data for channel, data in messages if channel != "qrun:events:all"] == EXPECTED


def test_commands_through_a_pipeline_and_noscript_for_the_caller(client: redis.Redis, subscriber: Any) -> None:
    commands = sample_batch().commands()
    with client.pipeline(transaction=False) as pipe:  # the url fixture flushed the script cache
        for command in commands:
            pipe.execute_command(*command)
        with pytest.raises(redis.exceptions.NoScriptError):
            pipe.execute()
    scripts.load_all(client)  # what the caller does on NOSCRIPT; then it sends them again
    with client.pipeline(transaction=False) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        assert pipe.execute() == [4]
    assert len(received(subscriber, 5)) == 5


def test_publish_loads_the_script_after_a_flush_and_sends_again(client: redis.Redis, subscriber: Any) -> None:
    scripts.load_all(client)
    client.script_flush()  # what a server restart does to the cache
    batch = EventBatch("qrun")
    for n in range(2_500):  # three commands, all refused, all sent again
        batch.add("enqueued", "emails", "j1" if n == 0 else f"x{n}", "app.send", 1)
    batch.publish(client)
    assert client.script_exists(scripts.PUBLISH_EVENTS.sha.decode()) == [True]
    messages = received(subscriber, 4)  # j1's own message and three all-arrays
    arrays = [data for channel, data in messages if channel == "qrun:events:all"]
    assert [len(array) for array in arrays] == [1_000, 1_000, 500]
    assert [event["job"] for array in arrays for event in array][:2] == ["j1", "x1"]
    assert len(batch) == 0
    batch.publish(client)  # nothing to send: no command at all


def qrun_events(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "qrun", "events", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_subscriber(client: redis.Redis, channel: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while client.pubsub_numsub(channel)[0][1] < 1:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "qrun events never subscribed"
        time.sleep(0.02)


def finish(process: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_qrun_events_for_one_job_prints_its_events_then_exits(
    client: redis.Redis, subprocess_env: dict[str, str]
) -> None:
    scripts.load_all(client)
    process = qrun_events("--job", "j1", "--count", "2", "--timeout", "30", env=subprocess_env)
    wait_for_subscriber(client, "qrun:events:job:j1", process)
    sample_batch().publish(client)
    stdout, stderr = finish(process)
    assert process.returncode == 0, stderr
    lines = stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[1:] == ["started", "emails", "app.send", "j1", "attempt", "1"]
    assert re.split(r"\s{2,}", lines[1])[1:] == ["failed", "emails", "app.send", "j1", "attempt 1", "error: RuntimeError: boom"]
    assert "listening on qrun:events:job:j1" in stderr


def test_qrun_events_for_one_job_stops_at_its_terminal_event(client: redis.Redis, subprocess_env: dict[str, str]) -> None:
    scripts.load_all(client)
    process = qrun_events("--job", "j1", "--timeout", "30", env=subprocess_env)
    wait_for_subscriber(client, "qrun:events:job:j1", process)
    sample_batch().publish(client)
    stdout, stderr = finish(process)
    assert process.returncode == 0, stderr
    assert [line.split()[1] for line in stdout.splitlines()] == ["started", "failed", "dead"]
    assert stdout.splitlines()[2].endswith("reason: failed 1 times; no retries left")


def test_qrun_events_tails_all_until_sigterm(client: redis.Redis, subprocess_env: dict[str, str]) -> None:
    scripts.load_all(client)
    process = qrun_events(env=subprocess_env)
    wait_for_subscriber(client, "qrun:events:all", process)
    sample_batch().publish(client)
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(4)]  # each line is flushed as it is printed
    process.send_signal(signal.SIGTERM)
    _, stderr = finish(process)
    assert process.returncode == 0, stderr
    assert [line.split()[1] for line in lines] == ["started", "failed", "dead", "succeeded"]
    assert "Traceback" not in stderr and "Aborted" not in stderr


def test_qrun_events_timeout_exits_zero_when_nothing_happens(subprocess_env: dict[str, str]) -> None:
    process = qrun_events("--timeout", "0.5", env=subprocess_env)
    stdout, stderr = finish(process)
    assert (process.returncode, stdout) == (0, ""), stderr


def test_qrun_events_and_workers_report_an_unreachable_server_in_one_line(subprocess_env: dict[str, str]) -> None:
    env = {**subprocess_env, "QRUN_URL": f"redis://app:s3cret@127.0.0.1:{free_port()}/0"}
    for command in (["events", "--timeout", "5"], ["workers"]):
        result = subprocess.run(
            [sys.executable, "-m", "qrun", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 1, result.stderr
        assert "cannot reach the server at redis://app:***@127.0.0.1" in result.stderr
        assert "s3cret" not in result.stderr and "Traceback" not in result.stderr
