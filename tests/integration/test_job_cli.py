"""`qrun job` and `qrun cancel` as a user types them, against the real server and workers."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import qrun

from tests import lifecycle_tasks as lt
from tests.supervisors import run_cli, supervisors_of, ROOT, Supervisors, lines, wait_until


@pytest.fixture
def life(url: str) -> Iterator[qrun.Queue]:
    yield lt.queue
    lt.queue.close()


@pytest.fixture
def runs(subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Supervisors]:
    with supervisors_of(lt.queue, subprocess_env, tmp_path, "tests.lifecycle_tasks:queue") as started:
        yield started


qrun_cli = run_cli


def test_job_shows_a_queued_job_found_without_naming_its_queue(life: qrun.Queue, subprocess_env: dict[str, str]) -> None:
    job = lt.echo.enqueue({"a": 1})
    shown = qrun_cli(subprocess_env, "job", job.id)
    assert shown.returncode == 0, shown.stderr
    assert f"job {job.id}" in shown.stdout and "state:" in shown.stdout and "queued" in shown.stdout
    assert lt.echo.name in shown.stdout


def test_job_wait_exit_codes_say_how_it_ended(life: qrun.Queue, runs: Supervisors, subprocess_env: dict[str, str]) -> None:
    ok = lt.echo.enqueue([1, 2])
    failing = lt.boom.enqueue("kaput")
    slow = lt.sleeper.enqueue(30, 1)
    runs.wait_for_count(runs.start("--workers", "2"), 2)

    succeeded = qrun_cli(subprocess_env, "job", ok.id, "--wait", "--timeout", "20", "--json")
    assert succeeded.returncode == 0, succeeded.stderr
    shown = json.loads(succeeded.stdout)
    assert shown["state"] == "succeeded" and shown["result"] == [1, 2]

    dead = qrun_cli(subprocess_env, "job", failing.id, "--wait", "--timeout", "20")
    assert dead.returncode == 1
    assert "ValueError: kaput" in dead.stdout and "traceback:" in dead.stdout

    timed_out = qrun_cli(subprocess_env, "job", slow.id, "--queue", "life", "--wait", "--timeout", "0.5")
    assert timed_out.returncode == 4 and "did not settle" in timed_out.stderr

    cancelled = qrun_cli(subprocess_env, "cancel", slow.id)
    assert cancelled.returncode == 0 and "cancelling" in cancelled.stdout
    after = qrun_cli(subprocess_env, "job", slow.id, "--wait", "--timeout", "20")
    assert after.returncode == 3 and "cancelled" in after.stdout


def test_cancel_several_and_say_what_happened_to_each(life: qrun.Queue, runs: Supervisors, subprocess_env: dict[str, str], tmp_path: Path) -> None:
    queued = lt.mark.enqueue(1)
    delayed = lt.mark.enqueue_in(3600, 2)
    done = qrun_cli(subprocess_env, "cancel", queued.id, delayed.id)
    assert done.returncode == 0, done.stderr
    assert "cancelled (queued)" in done.stdout and "cancelled (scheduled)" in done.stdout
    again = qrun_cli(subprocess_env, "cancel", queued.id)
    assert again.returncode == 1 and "already cancelled" in again.stdout
    unknown = qrun_cli(subprocess_env, "cancel", "0" * 32)
    assert unknown.returncode == 5 and "not known" in unknown.stderr
    malformed = qrun_cli(subprocess_env, "job", "not a job")
    assert malformed.returncode == 2 and "not valid" in malformed.stderr
    runs.wait_for_count(runs.start("--workers", "1"), 1)
    ran = lt.mark.enqueue(3)
    assert ran.result(timeout=20) == 3
    assert lines(tmp_path / "ran.txt") == ["3"]


def test_events_for_a_job_show_progress(life: qrun.Queue, runs: Supervisors, subprocess_env: dict[str, str]) -> None:
    runs.wait_for_count(runs.start("--workers", "1"), 1)
    job_id = "cli-progress-1"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "qrun", "events", "--job", job_id, "--count", "2", "--timeout", "20"],
        cwd=ROOT, env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        channel = f"{life.prefix}:events:job:{job_id}"
        wait_until(lambda: life.redis.pubsub_numsub(channel)[0][1] >= 1, 20, "qrun events to subscribe")
        life.ensure_group()
        life.redis.xadd(life.keys.stream, {"id": job_id, "task": lt.reports.name, "args": "[2, 0.3]", "kwargs": "{}",
                                           "attempt": "1", "enqueued_at": "0"})
        wait_until(lambda: life.job(job_id).status().state == "succeeded", 20, "the job to finish")
        out, _err = watcher.communicate(timeout=30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert "progress" in out and "50%" in out and "step 1/2" in out and "100%" in out


def test_a_malformed_id_is_a_usage_error_with_or_without_queue(life: qrun.Queue, subprocess_env: dict[str, str]) -> None:
    for args in (["job", "bad/id"], ["job", "bad/id", "--queue", "life"], ["cancel", "bad/id", "--queue", "life"]):
        done = qrun_cli(subprocess_env, *args)
        assert done.returncode == 2 and "not valid" in done.stderr and "Traceback" not in done.stderr, args
