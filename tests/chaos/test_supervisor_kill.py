"""The whole supervisor dies (master and workers, as when a container is killed): a second
supervisor started afterwards finishes every job."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import redis

from qrun import settings
from tests.chaos import chaos_tasks
from tests.supervisors import Supervisors, wait_until

queue = chaos_tasks.queue


def test_a_second_supervisor_finishes_every_job_of_a_sigkilled_one(
    supervisors: Supervisors, lines: Callable[[str], list[str]], report: Callable[..., None], client: redis.Redis
) -> None:
    jobs = 5_000
    queue.enqueue_many(chaos_tasks.mark, [(n, 0.001) for n in range(jobs)])
    started = time.monotonic()
    first = supervisors.start("--workers", "2")
    workers = supervisors.wait_for_count(first, 2)
    wait_until(lambda: len(lines("done.txt")) >= 1_000, 30, "the first supervisor to get going")
    os.kill(first.pid, signal.SIGKILL)
    for worker in workers:
        worker.kill()
    first.wait(timeout=10)
    done_by_first = len(set(lines("done.txt")))
    stranded = client.xpending(queue.keys.stream, settings.CONSUMER_GROUP)["pending"]

    second = supervisors.start("--workers", "2", "--burst")
    assert second.wait(timeout=90) == 0, supervisors.log(1)
    seconds = time.monotonic() - started

    done = lines("done.txt")
    lost = jobs - len(set(done))
    report(jobs=jobs, kills=3, done_before_kill=done_by_first, stranded_pending=stranded, lost=lost,
           duplicates=len(done) - len(set(done)), seconds=f"{seconds:.1f}")
    assert done_by_first < jobs
    assert lost == 0
    assert client.xpending(queue.keys.stream, settings.CONSUMER_GROUP)["pending"] == 0
    assert queue.stats()["ready"] == 0
    assert "redelivered" in supervisors.log(1) or stranded == 0


def test_workers_orphaned_by_a_sigkilled_supervisor_stop_cleanly_and_a_second_one_finishes(
    supervisors: Supervisors, lines: Callable[[str], list[str]], report: Callable[..., None], client: redis.Redis
) -> None:
    jobs = 5_000
    queue.enqueue_many(chaos_tasks.mark, [(n, 0.001) for n in range(jobs)])
    started = time.monotonic()
    first = supervisors.start("--workers", "2")
    orphans = supervisors.wait_for_count(first, 2)
    wait_until(lambda: len(lines("done.txt")) >= 1_000, 30, "the first supervisor to get going")
    os.kill(first.pid, signal.SIGKILL)  # the master only: its workers live on, orphaned
    first.wait(timeout=10)
    wait_until(lambda: not any(worker.is_running() for worker in orphans), 20, "the orphaned workers to stop")
    done_by_first = len(set(lines("done.txt")))

    second = supervisors.start("--workers", "2", "--burst")
    assert second.wait(timeout=90) == 0, supervisors.log(1)
    seconds = time.monotonic() - started

    done = lines("done.txt")
    report(jobs=jobs, kills=1, done_by_first_and_its_orphans=done_by_first, lost=jobs - len(set(done)),
           duplicates=len(done) - len(set(done)), seconds=f"{seconds:.1f}")
    assert done_by_first < jobs
    assert set(done) == {str(n) for n in range(jobs)}
    assert client.xpending(queue.keys.stream, settings.CONSUMER_GROUP)["pending"] == 0
