"""Workers die mid-job (SIGKILL from outside, or by their own job): nothing is lost."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import psutil
import redis

from qrun import settings
from tests.chaos import chaos_tasks
from tests.supervisors import Supervisors, wait_until

queue = chaos_tasks.queue


def test_random_sigkills_of_workers_lose_no_job_and_leave_nothing_pending(
    supervisors: Supervisors, lines: Callable[[str], list[str]], report: Callable[..., None], client: redis.Redis
) -> None:
    jobs = 20_000
    queue.enqueue_many(chaos_tasks.mark, [(n, 0.001) for n in range(jobs)])
    started = time.monotonic()
    supervisor = supervisors.start("--workers", "4")
    supervisors.wait_for_count(supervisor, 4)
    rng = random.Random(20261126)
    kills = 0
    kill_until = time.monotonic() + 4.0
    while time.monotonic() < kill_until:
        victims = supervisors.workers(supervisor)
        if victims:
            try:
                rng.choice(victims).kill()  # SIGKILL
                kills += 1
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.2)
    wait_until(lambda: len(set(lines("done.txt"))) == jobs, 90, "every job to run at least once")
    wait_until(lambda: queue.stats()["in_flight"] == 0 and queue.stats()["ready"] == 0, 20, "the stream to empty")
    seconds = time.monotonic() - started

    done = lines("done.txt")
    lost = jobs - len(set(done))
    duplicates = len(done) - len(set(done))
    report(jobs=jobs, workers=4, kills=kills, lost=lost, duplicates=duplicates,
           duplicates_per_kill=f"{duplicates / kills:.2f}", seconds=f"{seconds:.1f}")
    assert kills >= 10
    # A kill reruns the job it interrupted and at most the few finished in the last ack
    # window (ACK_WINDOW_S of work: here one or two 1 ms jobs), never a whole batch.
    assert duplicates <= 3 * kills
    assert set(done) == {str(n) for n in range(jobs)}
    assert client.xpending(queue.keys.stream, settings.CONSUMER_GROUP)["pending"] == 0
    assert queue.stats()["dead"] == 0
    assert queue.stats()["succeeded"] == jobs


def test_a_job_that_kills_its_worker_every_time_is_dead_lettered_after_max_deliveries(
    supervisors: Supervisors, lines: Callable[[str], list[str]], report: Callable[..., None]
) -> None:
    others = 200
    queue.enqueue(chaos_tasks.kill_own_worker)
    queue.enqueue_many(chaos_tasks.mark, [(n,) for n in range(others)])
    started = time.monotonic()
    supervisors.start("--workers", "2")
    wait_until(
        lambda: queue.stats()["dead"] == 1 and len(set(lines("done.txt"))) == others,
        60, "the killer job to be dead-lettered and the others to run",
    )
    seconds = time.monotonic() - started

    dead = queue.dead_letters(limit=5)
    deliveries = len(lines("kill_deliveries.txt"))
    report(jobs=others + 1, kills=deliveries, lost=others - len(set(lines("done.txt"))), dead=len(dead),
           duplicates=len(lines("done.txt")) - others, seconds=f"{seconds:.1f}")
    assert len(dead) == 1
    assert dead[0]["task"] == "tests.chaos.chaos_tasks.kill_own_worker"
    assert dead[0]["dead_reason"] == f"delivered {queue.max_deliveries} times without ack (worker died?)"
    assert deliveries == queue.max_deliveries
    assert sorted(set(lines("done.txt")), key=int) == [str(n) for n in range(others)]
    wait_until(lambda: queue.stats()["in_flight"] == 0, 10, "nothing left pending")
