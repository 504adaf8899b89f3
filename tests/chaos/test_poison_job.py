"""A job that kills its worker every time, in the middle of a batch of innocent jobs: only it
is charged a delivery each time, so only it reaches the dead-letter stream, and each kill
reruns at most the job that was running plus the few that finished just before it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import redis

from qrun import settings
from tests.chaos import chaos_tasks
from tests.supervisors import Supervisors, wait_until

queue = chaos_tasks.poison_queue

#: Reruns one kill may cause: the jobs that finished within the batch watcher's tick before
#: it (docs/operations.md: "a few milliseconds" of no-op jobs), with room for a loaded machine.
MOST_RERUNS_PER_KILL = 60


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

    runs = Counter(line.split()[0] for line in lines("innocent.txt"))
    kills = len(lines("poison_deliveries.txt"))
    duplicates = sum(runs.values()) - len(runs)
    dead = queue.dead_letters(limit=10)
    report(jobs=innocents + 1, kills=kills, dead=len(dead), lost=innocents - len(runs), duplicates=duplicates,
           duplicates_per_kill=f"{duplicates / max(kills, 1):.1f}", seconds=f"{seconds:.1f}")
    assert [letter["task"] for letter in dead] == ["tests.chaos.chaos_tasks.poison"]
    assert dead[0]["dead_reason"] == "delivered 3 times without ack (worker died?)"
    assert kills == 3
    assert set(runs) == {str(n) for n in range(innocents)}
    assert duplicates <= kills * MOST_RERUNS_PER_KILL
    assert client.xpending(queue.keys.stream, settings.CONSUMER_GROUP)["pending"] == 0
