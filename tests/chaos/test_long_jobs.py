"""Long jobs: never redelivered while their worker lives; on SIGTERM finished within the
grace period, or handed to the next worker past it."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from tests.chaos import chaos_tasks
from tests.supervisors import Supervisors, wait_until

queue = chaos_tasks.queue


def test_a_job_longer_than_the_visibility_timeout_runs_exactly_once_while_its_worker_lives(
    supervisors: Supervisors, lines: Callable[[str], list[str]], report: Callable[..., None]
) -> None:
    job_s = 3 * queue.visibility_timeout_s
    queue.enqueue(chaos_tasks.long_job, 1, job_s)
    started = time.monotonic()
    supervisors.start("--workers", "2")
    wait_until(lambda: len(lines("long_done.txt")) == 1, job_s + 20, "the long job to finish")
    time.sleep(queue.visibility_timeout_s + 0.5)  # room for a wrong redelivery to show
    seconds = time.monotonic() - started

    runs = len(lines("long_started.txt"))
    report(jobs=1, job_seconds=job_s, visibility_timeout=queue.visibility_timeout_s, runs=runs,
           lost=0 if lines("long_done.txt") else 1, duplicates=runs - 1, seconds=f"{seconds:.1f}")
    assert runs == 1
    stats = queue.stats()
    assert stats["redelivered"] == 0 and stats["succeeded"] == 1 and stats["in_flight"] == 0


def test_sigterm_lets_a_long_job_finish_within_the_grace_period_and_acks_it(
    supervisors: Supervisors, lines: Callable[[str], list[str]], report: Callable[..., None]
) -> None:
    queue.enqueue(chaos_tasks.long_job, 1, 2.0)
    supervisor = supervisors.start("--workers", "1", "--grace-period", "10")
    wait_until(lambda: len(lines("long_started.txt")) == 1, 20, "the job to start")
    term_at = time.monotonic()
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=15) == 0, supervisors.log()
    seconds = time.monotonic() - term_at

    report(jobs=1, grace_period=10, runs=len(lines("long_started.txt")), finished=len(lines("long_done.txt")),
           lost=0 if lines("long_done.txt") else 1, duplicates=0, seconds_after_term=f"{seconds:.1f}")
    assert len(lines("long_done.txt")) == 1
    stats = queue.stats()
    assert stats["succeeded"] == 1 and stats["in_flight"] == 0 and stats["ready"] == 0


def test_a_job_still_running_past_the_grace_period_is_redelivered_to_the_next_worker(
    supervisors: Supervisors, lines: Callable[[str], list[str]], report: Callable[..., None]
) -> None:
    queue.enqueue(chaos_tasks.long_job, 1, 4.0)
    first = supervisors.start("--workers", "1", "--grace-period", "0.5")
    wait_until(lambda: len(lines("long_started.txt")) == 1, 20, "the job to start")
    term_at = time.monotonic()
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=15) == 0, supervisors.log(0)
    stop_s = time.monotonic() - term_at
    assert lines("long_done.txt") == []
    stats = queue.stats()
    assert stats["in_flight"] == 0 and stats["ready"] == 1, stats  # handed back at once, not after a timeout

    second = supervisors.start("--workers", "1", "--burst")
    assert second.wait(timeout=30) == 0, supervisors.log(1)
    runs = len(lines("long_started.txt"))
    report(jobs=1, grace_period=0.5, supervisor_stop_seconds=f"{stop_s:.1f}", runs=runs,
           finished=len(lines("long_done.txt")), lost=0 if lines("long_done.txt") else 1, duplicates=0)
    assert runs == 2 and len(lines("long_done.txt")) == 1
    assert "killed by SIGKILL" in supervisors.log(0)
