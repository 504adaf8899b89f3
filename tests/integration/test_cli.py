"""The `qrun` command as a real subprocess: burst runs, graceful stop, errors, stats, demo."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis

from qrun.embedded import free_port
from tests import tasks

ROOT = Path(__file__).resolve().parents[2]


def qrun(*args: str, env: dict[str, str], timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qrun", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
    )


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_burst_processes_every_job_then_exits_zero(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    tasks.queue.enqueue_many(tasks.record, [(n,) for n in range(300)])
    tasks.always_fails.enqueue("doomed")
    tasks.record.enqueue_in(0.3, 1000)
    result = qrun("--workers", "2", "--burst", "tests.tasks:queue", env=subprocess_env)
    assert result.returncode == 0, result.stderr
    assert sorted(map(int, _lines(tmp_path / "ran.txt"))) == [*range(300), 1000]
    stats = tasks.queue.stats()
    assert (stats["succeeded"], stats["retried"], stats["dead_lettered"]) == (301, 2, 1)
    assert "burst: every queue is empty" in result.stderr


def test_sigterm_lets_the_running_job_finish_and_ack_before_exit(
    subprocess_env: dict[str, str], tmp_path: Path, client: redis.Redis
) -> None:
    tasks.sleep_then_record.enqueue(1.0, 42)
    process = subprocess.Popen(
        [sys.executable, "-m", "qrun", "--workers", "1", "tests.tasks:queue"],
        cwd=ROOT, env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "started.txt").exists():
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert _lines(tmp_path / "ran.txt") == ["42"]
    assert client.xlen("{qrun:tests}:stream") == 0
    assert "finish their current jobs" in stderr


def test_a_target_that_cannot_be_imported_is_a_usage_error(subprocess_env: dict[str, str]) -> None:
    result = qrun("no_such_module:queue", env=subprocess_env)
    assert result.returncode == 2
    assert "cannot import 'no_such_module'" in result.stderr


def test_a_target_that_is_not_a_queue_is_a_usage_error(subprocess_env: dict[str, str]) -> None:
    result = qrun("tests.tasks:record", env=subprocess_env)
    assert result.returncode == 2
    assert "must name a qrun.Queue" in result.stderr


def test_zero_workers_is_refused_with_the_fix(subprocess_env: dict[str, str]) -> None:
    result = qrun("--workers", "0", "tests.tasks:queue", env=subprocess_env)
    assert result.returncode == 2
    assert "--workers" in result.stderr and ">=1" in result.stderr.replace(" ", "")


def test_stats_prints_the_counts_of_a_queue(subprocess_env: dict[str, str]) -> None:
    tasks.queue.enqueue_many(tasks.noop, [()] * 5)
    result = qrun("stats", "tests", env=subprocess_env)
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split()[:3] == ["queue", "ready", "in_flight"]
    assert row.split()[:2] == ["tests", "5"]


def test_demo_starts_an_embedded_server_when_nothing_answers(subprocess_env: dict[str, str]) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    result = qrun("demo", "--jobs", "3000", "--workers", "2", "--url", nowhere, env=subprocess_env, timeout_s=120)
    assert result.returncode == 0, result.stderr
    assert "started an embedded valkey-server" in result.stderr
    assert "enqueue_many: 3,000 jobs" in result.stdout
    assert "2,997 succeeded, 36 retried, 3 dead-lettered" in result.stdout
    assert "Traceback" not in result.stderr  # the intended failures are counted, not logged


def test_an_unreachable_server_is_reported_in_one_line(subprocess_env: dict[str, str]) -> None:
    env = {**subprocess_env, "QRUN_URL": f"redis://app:s3cret@127.0.0.1:{free_port()}/0"}
    result = qrun("tests.tasks:queue", env=env)
    assert result.returncode == 1
    assert "cannot reach the server at redis://app:***@127.0.0.1" in result.stderr
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr


def test_dead_shows_why_each_job_died(subprocess_env: dict[str, str]) -> None:
    tasks.always_fails.enqueue("boom 7")
    assert qrun("--burst", "tests.tasks:queue", env=subprocess_env).returncode == 0
    result = qrun("dead", "list", "tests", "--traceback", env=subprocess_env)
    assert result.returncode == 0, result.stderr
    assert "tests.tasks.always_fails  attempt 3" in result.stdout
    assert "reason: failed 3 times; no retries left" in result.stdout
    assert "error:  RuntimeError: boom 7" in result.stdout
    assert 'raise RuntimeError(message)' in result.stdout  # the traceback
    empty = qrun("dead", "list", "tests", "--task", "tests.tasks.noop", env=subprocess_env)
    assert empty.stdout.strip() == "no dead-lettered jobs in tests of task tests.tasks.noop"


def test_events_says_at_once_that_only_queues_created_with_events_publish(subprocess_env: dict[str, str]) -> None:
    process = subprocess.Popen(  # as the README tour runs it: no --timeout, so it would wait for ever
        [sys.executable, "-m", "qrun", "events", "--job", "some-job-id"],
        cwd=ROOT, env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    stop = threading.Timer(20, process.send_signal, (signal.SIGTERM,))  # a missing line fails, not hangs
    stop.start()
    try:
        assert process.stderr is not None
        first, second = process.stderr.readline(), process.stderr.readline()  # printed before it waits
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=20)
    finally:
        stop.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert first.startswith("listening on qrun:events:job:some-job-id at redis://127.0.0.1:")
    assert "only queues created with qrun.Queue(..., events=True) publish events (off by default)" in second
    assert (process.returncode, stdout) == (0, "")
