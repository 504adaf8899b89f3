"""Cancel and progress under faults: a cancelled job never runs even when the worker that
read it is SIGKILLed; a job that reports progress outlives the visibility timeout and runs
exactly once, while one that does not is claimed back and runs twice."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import qrun
import redis

from qrun import settings
from qrun.worker import Worker
from tests.chaos import lifecycle_chaos_tasks as lct
from tests.supervisors import Supervisors, wait_until

queue = lct.queue


@pytest.fixture
def runs(subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Supervisors]:
    queue.close()
    started = Supervisors(subprocess_env, tmp_path, "tests.chaos.lifecycle_chaos_tasks:queue")
    yield started
    started.stop_all()
    queue.close()


def _xadd_together(client: redis.Redis, jobs: list[tuple[str, qrun.Task, str]]) -> None:
    """Add several jobs in one MULTI, so a blocked worker reads them in one batch."""
    with client.pipeline(transaction=True) as pipe:
        for job_id, task, args in jobs:
            pipe.xadd(queue.keys.stream, {"id": job_id, "task": task.name, "args": args, "kwargs": "{}",
                                          "attempt": "1", "enqueued_at": str(int(time.time() * 1000))})
        pipe.execute()


def test_a_job_cancelled_while_its_dead_reader_holds_it_never_runs(
    url: str, runs: Supervisors, lines: Callable[[str], list[str]], report: Callable[..., None], client: redis.Redis
) -> None:
    """The reader is killed before anyone could tell it: the claimer drops the job."""
    job = lct.mark.enqueue(1)
    queue.ensure_group()
    client.xreadgroup(settings.CONSUMER_GROUP, "ghost-worker-that-died", {queue.keys.stream: ">"}, count=10)
    done = job.cancel()
    assert done.done and done.state == "running"  # a worker holds it: marked, not removed
    runs.wait_for_count(runs.start("--workers", "1"), 1)
    with pytest.raises(qrun.JobCancelled):
        job.result(timeout=30)  # the claimer took it back after the visibility timeout, and dropped it
    after = lct.mark.enqueue(2)
    assert after.result(timeout=30) == 2
    time.sleep(queue.visibility_timeout_s)  # nothing left to redeliver it later
    assert lines("ran.txt") == ["2"]
    assert job.status().state == "cancelled"
    assert client.zcard(queue.keys.cancelled) == 0 and client.zcard(queue.keys.cancel_entries) == 0
    report(cancelled_ran=0, other_ran=1)


def test_a_job_cancelled_in_the_batch_of_a_worker_that_is_sigkilled_never_runs(
    url: str, runs: Supervisors, lines: Callable[[str], list[str]], report: Callable[..., None], client: redis.Redis
) -> None:
    supervisor = runs.start("--workers", "1")
    runs.wait_for_count(supervisor, 1)
    queue.enqueue_many(lct.noop, [() for _ in range(3_000)])  # the worker's prefetch grows
    wait_until(lambda: queue.is_idle(), 30, "the warm-up to finish")
    rounds, ran = 5, 0
    for n in range(rounds):
        target = f"cancel-me-{n}"
        _xadd_together(client, [(f"holder-{n}", lct.hold, "[30]"), (target, lct.mark, f"[{100 + n}]")])
        wait_until(lambda: len(lines("held.txt")) == n + 1, 20, "the holder to start")
        worker_pid = int(lines("held.txt")[-1])
        os.kill(worker_pid, signal.SIGKILL)  # right after it read the batch: the target never started
        done = queue.job(target).cancel()
        assert done.done
        with pytest.raises(qrun.JobCancelled):
            queue.job(target).result(timeout=30)
        runs.wait_for_count(supervisor, 1)
    time.sleep(queue.visibility_timeout_s + 1)
    ran = sum(1 for line in lines("ran.txt") if int(line) >= 100)
    assert ran == 0
    report(rounds=rounds, cancelled_ran=ran)


@pytest.mark.parametrize("reports", [True, False])
def test_a_job_reporting_progress_outlives_the_visibility_timeout_and_runs_once(
    url: str, runs: Supervisors, lines: Callable[[str], list[str]], report: Callable[..., None], reports: bool,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An in-process worker (no supervisor extends its jobs) runs a job three times longer than
    the visibility timeout while another supervisor's claimer watches the queue."""
    monkeypatch.setenv("QRUN_TEST_OUT", str(tmp_path))  # where the in-process job writes too
    seconds = int(3 * queue.visibility_timeout_s)
    worker = Worker([queue])
    worker.boot()
    thread = threading.Thread(target=worker.run, daemon=True)
    job = lct.heartbeat.enqueue(seconds, reports)
    thread.start()
    try:
        wait_until(lambda: len(lines("started.txt")) >= 1, 20, "the job to start in the in-process worker")
        runs.wait_for_count(runs.start("--workers", "1"), 1)  # its claimer takes back what looks abandoned
        assert job.result(timeout=3 * seconds) == "done"
        time.sleep(2)
    finally:
        worker.request_stop()
        thread.join(timeout=10)
        worker.close()
    runs_seen = len(lines("started.txt"))
    report(reports_progress=reports, seconds=seconds, visibility_s=queue.visibility_timeout_s, runs=runs_seen)
    if reports:
        assert runs_seen == 1 and lines("ran.txt") == ["heartbeat"]
    else:  # the control: without heartbeats it looks abandoned, and is run again elsewhere
        assert runs_seen == 2
