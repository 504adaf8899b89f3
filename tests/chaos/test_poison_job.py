"""A job that kills its worker every time, in the middle of a batch of innocent jobs: only it
is charged a delivery each time, so only it reaches the dead-letter stream, and each kill
reruns at most the job that was running plus the few that finished just before it."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

import redis

from qrun import settings
from tests.chaos import chaos_tasks
from tests.supervisors import Supervisors, wait_until

queue = chaos_tasks.poison_queue

#: A rerun job must have finished at most this long before the kill that reran it: the ack
#: window, plus room for a loaded 2-core machine to preempt the worker between two jobs.
RERUN_WINDOW_S = settings.ACK_WINDOW_S + 0.05


def test_a_poison_job_among_a_thousand_innocent_ones_is_the_only_one_dead_lettered(
    supervisors: Supervisors, lines: Callable[[str], list[str]], report: Callable[..., None], client: redis.Redis
) -> None:
    innocents = 1_000
    queue.enqueue_many(chaos_tasks.innocent, [(n,) for n in range(innocents // 2)])
    queue.enqueue(chaos_tasks.poison)
    queue.enqueue_many(chaos_tasks.innocent, [(n,) for n in range(innocents // 2, innocents)])
    started = time.monotonic()
    supervisors.start("--workers", "2", target="tests.chaos.chaos_tasks:poison_queue")
    wait_until(
        lambda: queue.stats()["dead"] == 1 and len({line.split()[0] for line in lines("innocent.txt")}) == innocents,
        60, "the poison job to be dead-lettered and every innocent one to run", log=supervisors.log,
    )
    wait_until(lambda: queue.stats()["in_flight"] == 0 and queue.stats()["ready"] == 0, 20, "the stream to empty")
    seconds = time.monotonic() - started

    runs: dict[str, list[tuple[str, float]]] = defaultdict(list)  # job -> (worker pid, finished at) of each run
    for line in lines("innocent.txt"):
        n, pid, at = line.split()
        runs[n].append((pid, float(at)))
    killed_at = {pid: float(at) for pid, at in (line.split() for line in lines("poison_deliveries.txt"))}
    kills = len(killed_at)
    duplicates = sum(len(each) for each in runs.values()) - len(runs)
    # Every run that was run again must have ended in a worker the poison killed, just before
    # it died (its ack had not left yet): how long before.
    finished_before_kill = [
        killed_at[pid] - at if pid in killed_at else float("inf")
        for each in runs.values() for pid, at in each[:-1]
    ]
    dead = queue.dead_letters(limit=10)
    report(jobs=innocents + 1, kills=kills, dead=len(dead), lost=innocents - len(runs), duplicates=duplicates,
           duplicates_per_kill=f"{duplicates / max(kills, 1):.1f}",
           rerun_finished_before_kill_ms=f"{1000 * max(finished_before_kill, default=0):.1f}", seconds=f"{seconds:.1f}")
    assert [letter["task"] for letter in dead] == ["tests.chaos.chaos_tasks.poison"]
    assert dead[0]["dead_reason"] == "delivered 3 times without ack (worker died?)"
    assert kills == 3
    assert set(runs) == {str(n) for n in range(innocents)}
    assert len(finished_before_kill) == duplicates
    assert max(finished_before_kill, default=0) <= RERUN_WINDOW_S
    assert client.xpending(queue.keys.stream, settings.CONSUMER_GROUP)["pending"] == 0
    log = supervisors.log()
    assert "killed by SIGKILL while running" in log  # names the job, and
    assert "(out of memory?)" not in log and "(the kernel's out-of-memory killer)" not in log  # no OOM guess
