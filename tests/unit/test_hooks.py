"""Worker hooks: features act at the moments of a job's life without branches in the worker."""

from __future__ import annotations

import logging

import pytest

import qrun
from qrun.events import EventBatch
from qrun.hooks import JobHooks, Outbox, PublishEvents, call, hooks_for, succeeded
from qrun.lifecycle.hooks import TrackJobs

ENTRY = (b"{qrun:q}:stream", "1-0", "j1", "app.send", (), {}, 2, 0)


def test_no_feature_on_means_no_hooks_at_all() -> None:
    assert hooks_for(qrun.Queue("q", "redis://127.0.0.1:1/0"), None, Outbox()) == ()


def test_a_queue_keeping_results_tracks_jobs_through_the_outbox() -> None:
    queue = qrun.Queue("q", "redis://127.0.0.1:1/0", result_ttl=60)

    @queue.task(name="app.send")
    def send() -> int:
        return 1

    outbox = Outbox()
    [hook] = hooks_for(queue, None, outbox, "w1")
    assert isinstance(hook, TrackJobs)
    call([hook], "started", "q", ENTRY)
    [(_, started_keys, started_args)] = outbox.peek()  # a job running while acks go out: its record
    assert started_keys == ["{qrun:q}:job:j1", "{qrun:q}:done:j1"]
    assert started_args[1] == b"" and "running" in started_args and "w1" in started_args
    assert succeeded([hook], "q", ENTRY, b"1")  # it settles the job itself: result and ack in one script
    second = (b"{qrun:q}:stream", "2-0", "j2", "app.send", (), {}, 1, 0)
    call([hook], "started", "q", second)
    assert succeeded([hook], "q", second, b"[2]")
    [(script, keys, args)] = outbox.take()  # no running records: they ended before the round trip
    assert script.name == "finish_jobs"
    assert keys == ["{qrun:q}:stream", "{qrun:q}:stats", "{qrun:q}:job:j1", "{qrun:q}:done:j1",
                    "{qrun:q}:job:j2", "{qrun:q}:done:j2"]
    assert args[1] == 60_000 and args[2] == "1-0" and args[4] == "2-0" and len(args) == 2 + 2 * 2
    assert args[3].startswith(b'{"state":"succeeded","result":1,"attempt":2,')
    assert b'"task":"app.send"' in args[3] and b'"worker":"w1"' in args[3]
    assert outbox.take() == [] and not outbox.owed


def test_a_task_without_results_on_a_tracking_queue_writes_nothing() -> None:
    queue = qrun.Queue("q", "redis://127.0.0.1:1/0")

    @queue.task(name="app.send")
    def send() -> None: ...

    @queue.task(name="app.other", result_ttl=10)
    def other() -> None: ...

    outbox = Outbox()
    [hook] = hooks_for(queue, None, outbox)
    for moment, args in [("started", ()), ("failed", (ValueError(),)), ("retrying", (1.0,)), ("dead", ("why", None))]:
        call([hook], moment, "q", ENTRY, *args)
    assert not succeeded([hook], "q", ENTRY, None)  # the worker acks it as usual
    assert outbox.take() == []


def test_events_are_one_hook_publishing_every_moment_of_a_job() -> None:
    batch = EventBatch("qrun")
    [hook] = hooks_for(qrun.Queue("q", "redis://127.0.0.1:1/0"), batch, Outbox())
    assert isinstance(hook, PublishEvents)
    call([hook], "started", "q", ENTRY)
    call([hook], "failed", "q", ENTRY, ValueError("nope"))
    call([hook], "retrying", "q", ENTRY, 1.23456)
    call([hook], "dead", "q", ENTRY, "failed 2 times; no retries left", None)
    call([hook], "succeeded", "q", ENTRY, None)
    call([hook], "cancelled", "q", ENTRY, True)
    messages = [command[6::2] for command in batch.commands()][0]
    assert [m.split('"event":"')[1].split('"')[0] for m in messages] == [
        "started", "failed", "retrying", "dead", "succeeded", "cancelled"
    ]
    assert '"interrupted":true' in messages[5]
    assert '"error":"ValueError: nope"' in messages[1] and '"delay_s":1.235' in messages[2]


def test_a_hook_that_raises_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    seen = []

    class Broken(JobHooks):
        def started(self, queue_name: str, entry: tuple[object, ...]) -> None:
            raise RuntimeError("bug in a feature")

    class Counting(JobHooks):
        def started(self, queue_name: str, entry: tuple[object, ...]) -> None:
            seen.append(entry[2])

    with caplog.at_level(logging.ERROR, logger="qrun.hooks"):
        call([Broken(), Counting()], "started", "q", ENTRY)
    assert seen == ["j1"]
    assert "hook Broken.started failed" in caplog.text


def test_the_base_hooks_do_nothing() -> None:
    hooks = JobHooks()
    for moment, args in [("started", ()), ("succeeded", (None,)), ("failed", (ValueError(),)),
                         ("retrying", (1.0,)), ("dead", ("why", None)), ("cancelled", (False,))]:
        assert getattr(hooks, moment)("q", ENTRY, *args) is None
