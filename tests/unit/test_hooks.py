"""Worker hooks: features act at the moments of a job's life without branches in the worker."""

from __future__ import annotations

import logging

import pytest

from qrun.events import EventBatch
from qrun.hooks import JobHooks, PublishEvents, call, hooks_for

ENTRY = (b"{qrun:q}:stream", "1-0", "j1", "app.send", (), {}, 2, 0)


def test_no_feature_on_means_no_hooks_at_all() -> None:
    assert hooks_for(None) == ()


def test_events_are_one_hook_publishing_every_moment_of_a_job() -> None:
    batch = EventBatch("qrun")
    [hook] = hooks_for(batch)
    assert isinstance(hook, PublishEvents)
    call([hook], "started", "q", ENTRY)
    call([hook], "failed", "q", ENTRY, ValueError("nope"))
    call([hook], "retrying", "q", ENTRY, 1.23456)
    call([hook], "dead", "q", ENTRY, "failed 2 times; no retries left", None)
    call([hook], "succeeded", "q", ENTRY)
    messages = [command[6::2] for command in batch.commands()][0]
    assert [m.split('"event":"')[1].split('"')[0] for m in messages] == [
        "started", "failed", "retrying", "dead", "succeeded"
    ]
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
    for moment, args in [("started", ()), ("succeeded", ()), ("failed", (ValueError(),)),
                         ("retrying", (1.0,)), ("dead", ("why", None))]:
        assert getattr(hooks, moment)("q", ENTRY, *args) is None
