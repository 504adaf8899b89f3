"""Presence records on a real server: beat, expiry by TTL, leave, and `qrun workers`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import redis

from qrun.presence import Presence, WorkerInfo, alive, index_key

ROOT = Path(__file__).resolve().parents[2]
ID = "6f1c2d9e" * 4


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def qrun(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qrun", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_a_beat_makes_a_supervisor_and_its_workers_alive(client: redis.Redis) -> None:
    started = now_ms() - 60_000
    presence = Presence(client, "qrun", "web-1", 4242, ["emails", "sms"], started)
    busy = WorkerInfo(4250, started + 100, 17, ID, "app.send_email", "emails", now_ms() - 1_500)
    presence.beat([busy, WorkerInfo(4251, started + 200, 3)])
    (record,) = alive(client, "qrun")
    assert record["host"] == "web-1" and record["pid"] == 4242 and record["queues"] == ["emails", "sms"]
    assert record["started_at_ms"] == started and now_ms() - record["heartbeat_at_ms"] < 5_000
    assert record["workers"] == [
        {"pid": 4250, "started_at_ms": started + 100, "jobs_done": 17, "job_id": ID, "task": "app.send_email",
         "queue": "emails", "job_started_at_ms": busy.job_started_at_ms},
        {"pid": 4251, "started_at_ms": started + 200, "jobs_done": 3, "job_id": None, "task": None,
         "queue": None, "job_started_at_ms": None},
    ]
    assert 0 < client.pttl("qrun:presence:web-1:4242") <= 6_000  # three heartbeats of 2 s
    assert alive(client, "other") == []  # prefixes do not see each other


def test_a_supervisor_that_stops_beating_expires_and_leaves_the_index(client: redis.Redis) -> None:
    gone = Presence(client, "qrun", "web-1", 1, ["q"], now_ms(), interval_s=0.1)
    staying = Presence(client, "qrun", "web-2", 2, ["q"], now_ms(), interval_s=0.1)
    gone.beat([])
    staying.beat([])
    assert [record["pid"] for record in alive(client, "qrun")] == [1, 2]
    deadline = time.monotonic() + 1.0  # web-2 keeps beating every 0.1 s; web-1 is silent for 3+ beats
    while time.monotonic() < deadline:
        time.sleep(0.1)
        staying.beat([])
    assert [record["pid"] for record in alive(client, "qrun")] == [2]
    assert client.zrange(index_key("qrun"), 0, -1) == [b"qrun:presence:web-2:2"]  # trimmed by a beat


def test_leave_removes_the_record_at_once(client: redis.Redis) -> None:
    presence = Presence(client, "qrun", "web-1", 4242, ["q"], now_ms())
    presence.beat([])
    presence.leave()
    assert alive(client, "qrun") == []
    assert client.exists("qrun:presence:web-1:4242", index_key("qrun")) == 0
    presence.leave()  # twice is fine


def test_index_members_whose_record_vanished_or_is_junk_are_skipped(client: redis.Redis) -> None:
    Presence(client, "qrun", "web-1", 1, ["q"], now_ms()).beat([])
    client.zadd(index_key("qrun"), {"qrun:presence:web-9:9": now_ms() + 60_000, "qrun:presence:junk:1": now_ms() + 60_000})
    client.set("qrun:presence:junk:1", "not json")
    assert [record["host"] for record in alive(client, "qrun")] == ["web-1"]


def test_qrun_workers_lists_each_worker_and_its_current_job(client: redis.Redis, subprocess_env: dict[str, str]) -> None:
    started = now_ms() - 3_700_000
    presence = Presence(client, "qrun", "web-1", 4242, ["emails"], started)
    presence.beat([
        WorkerInfo(4250, started, 1523, ID, "app.send_email", "emails", now_ms() - 2_000),
        WorkerInfo(4251, started, 9),
    ])
    result = qrun("workers", env=subprocess_env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("supervisor 4242 on web-1: queues emails, up 1h 1m, 2 workers, heartbeat ")
    assert lines[1].split() == ["host", "supervisor", "worker", "queues", "up", "jobs", "current"]
    busy = lines[2].split()
    assert busy[:7] == ["web-1", "4242", "4250", "emails", "1h", "1m", "1523"]
    assert busy[7:11] == ["app.send_email", ID, "(emails)", "running"] and busy[12].endswith("s")
    assert lines[3].split()[-2:] == ["9", "idle"]


def test_qrun_workers_says_so_when_nobody_is_alive(url: str, subprocess_env: dict[str, str]) -> None:
    result = qrun("workers", env=subprocess_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"no qrun supervisors are alive on {url} (prefix 'qrun')"
    other = qrun("workers", "--prefix", "acme", env=subprocess_env)
    assert other.stdout.strip() == f"no qrun supervisors are alive on {url} (prefix 'acme')"
