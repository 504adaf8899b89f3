"""Event messages, the commands that publish them, and the lines `qrun events` / `qrun workers` print."""

from __future__ import annotations

import json
import time

import pytest

from qrun import events, scripts
from qrun.cli.events import format_event
from qrun.cli.workers import format_workers, human_duration
from qrun.errors import InvalidNameError
from qrun.events import EventBatch, decode_message, encode_event, error_text
from qrun.presence import Presence, WorkerInfo, index_key, record_key

ID = "6f1c2d9e" * 4


def canonical(message: dict[str, object]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def test_channels_live_under_the_prefix() -> None:
    assert events.all_channel("acme") == "acme:events:all"
    assert events.job_channel("acme", "j1") == "acme:events:job:j1"
    assert events.job_channel_prefix("acme") == "acme:events:job:"
    assert index_key("acme") == "acme:presence"
    assert record_key("acme", "web-1", 42) == "acme:presence:web-1:42"


def test_an_event_message_is_compact_json_with_fixed_fields_first() -> None:
    text = encode_event("retrying", "emails", ID, "app.send", 2, 1_700_000_000_123, {"delay_s": 1.5, "error": None})
    assert text == canonical({
        "event": "retrying", "job": ID, "task": "app.send", "queue": "emails", "attempt": 2,
        "at_ms": 1_700_000_000_123, "delay_s": 1.5,
    })


def test_text_that_needs_escaping_stays_valid_json() -> None:
    odd = 'id "quoted" \\ é\n\u2028'
    text = encode_event("dead", "q", odd, "t", 1, 5, {"reason": "bad\targs", "error": "KeyError: 'x'"})
    assert json.loads(text) == {
        "event": "dead", "job": odd, "task": "t", "queue": "q", "attempt": 1, "at_ms": 5,
        "reason": "bad\targs", "error": "KeyError: 'x'",
    }
    assert text == canonical(json.loads(text))


def test_commands_carry_every_event_in_order_then_the_batch_is_empty() -> None:
    batch = EventBatch("qrun")
    batch.add("started", "emails", "j1", "app.send", 1, at_ms=10)
    batch.add("failed", "emails", "j1", "app.send", 1, at_ms=11, error="RuntimeError: boom")
    batch.add("retrying", "emails", "j1", "app.send", 1, at_ms=12, delay_s=0.5)
    assert len(batch) == 3
    (command,) = batch.commands()
    assert len(batch) == 0 and batch.commands() == []
    assert command[:5] == ("EVALSHA", scripts.PUBLISH_EVENTS.sha, 0, b"qrun:events:all", b"qrun:events:job:")
    assert command[5::2] == ("j1", "j1", "j1")
    messages = [json.loads(str(text)) for text in command[6::2]]
    assert [m["event"] for m in messages] == ["started", "failed", "retrying"]
    assert messages[0] == {"event": "started", "job": "j1", "task": "app.send", "queue": "emails", "attempt": 1, "at_ms": 10}
    assert messages[1]["error"] == "RuntimeError: boom" and messages[2]["delay_s"] == 0.5
    # the fast path (no extra fields) writes exactly what json.dumps writes
    assert command[6] == canonical(messages[0])


def test_add_takes_the_time_when_none_is_given() -> None:
    batch = EventBatch("qrun")
    before = time.time_ns() // 1_000_000
    batch.add("enqueued", "q", "j", "t", 1)
    (command,) = batch.commands()
    assert before <= json.loads(str(command[6]))["at_ms"] <= time.time_ns() // 1_000_000


def test_large_batches_are_chunked() -> None:
    batch = EventBatch("qrun")
    for n in range(events.EVENTS_PER_COMMAND * 2 + 1):
        batch.add("succeeded", "q", str(n), "t", 1)
    commands = batch.commands()
    assert [(len(command) - 5) // 2 for command in commands] == [events.EVENTS_PER_COMMAND, events.EVENTS_PER_COMMAND, 1]
    assert commands[2][5] == str(events.EVENTS_PER_COMMAND * 2)


def test_bad_events_and_prefixes_are_refused_when_added() -> None:
    batch = EventBatch("qrun")
    with pytest.raises(ValueError, match="must be one of enqueued, started"):
        batch.add("finished", "q", "j", "t", 1)
    with pytest.raises(ValueError, match="attempt an int"):
        batch.add("started", "q", "j", "t", "1")  # type: ignore[arg-type]
    assert len(batch) == 0
    with pytest.raises(InvalidNameError):
        EventBatch("bad prefix")


def test_decode_message_reads_arrays_and_objects_and_refuses_the_rest() -> None:
    one = encode_event("started", "q", "j", "t", 1, 5)
    assert decode_message(one) == [json.loads(one)]
    assert decode_message(f"[{one},{one}]".encode()) == [json.loads(one)] * 2
    for junk in (b"hello", b"[1,2]", b'{"no":"event"}'):
        with pytest.raises(ValueError):
            decode_message(junk)


def test_error_text_is_type_and_message_cut_short() -> None:
    assert error_text(RuntimeError("boom")) == "RuntimeError: boom"
    assert error_text(KeyError()) == "KeyError"
    long = error_text(ValueError("x" * 1000))
    assert len(long) == events.MAX_ERROR_CHARS and long.startswith("ValueError: xxx") and long.endswith("…")


def local_clock(at_ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at_ms // 1000)) + f".{at_ms % 1000:03d}"


def test_event_lines_read_left_to_right() -> None:
    at = 1_700_000_000_042
    base = {"job": "j1", "task": "app.send", "queue": "emails", "attempt": 2, "at_ms": at}
    assert format_event({"event": "started", **base}) == f"{local_clock(at)}  started    emails  app.send  j1  attempt 2"
    assert format_event({"event": "retrying", **base, "delay_s": 1.5}).endswith("attempt 2  retry in 1.5s")
    assert format_event({"event": "failed", **base, "error": "RuntimeError: boom"}).endswith("error: RuntimeError: boom")
    dead = format_event({"event": "dead", **base, "error": "E: x", "reason": "failed 2 times; no retries left"})
    assert dead.endswith("attempt 2  error: E: x  reason: failed 2 times; no retries left")
    assert format_event({"event": "started"}).startswith("??:??:??.???  started    ?  ?  ?  attempt ?")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.42, "0.4s"), (9.96, "10.0s"), (45, "45s"), (725, "12m 5s"), (3 * 3600 + 12 * 60 + 7, "3h 12m"), (2 * 86400 + 4 * 3600, "2d 4h")],
)
def test_durations_are_short(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_the_workers_table_has_a_header_per_supervisor_and_a_row_per_worker() -> None:
    now = 1_700_000_000_000
    presence = Presence(None, "qrun", "web-1", 4242, ["emails", "sms"], now - 3_600_000)  # type: ignore[arg-type]
    busy = WorkerInfo(4250, now - 600_000, 1523, ID, "app.send_email", "emails", now - 2_000)
    idle = WorkerInfo(4251, now - 5_000, 0)
    lonely = {**presence.record([], now - 400), "host": "web-2", "pid": 7}
    lines = format_workers([presence.record([busy, idle], now - 400), lonely], now)
    assert lines[0] == "supervisor 4242 on web-1: queues emails,sms, up 1h 0m, 2 workers, heartbeat 0.4s ago"
    assert lines[1].split() == ["host", "supervisor", "worker", "queues", "up", "jobs", "current"]
    assert lines[2].split() == [
        "web-1", "4242", "4250", "emails,sms", "10m", "0s", "1523", "app.send_email", ID, "(emails)", "running", "for", "2.0s"
    ]
    assert lines[3].split() == ["web-1", "4242", "4251", "emails,sms", "5.0s", "0", "idle"]
    assert lines[1].index("current") == lines[2].index("app.send_email") == lines[3].index("idle")
    assert lines[4:] == ["supervisor 7 on web-2: queues emails,sms, up 1h 0m, 0 workers, heartbeat 0.4s ago", "  (no workers running)"]
