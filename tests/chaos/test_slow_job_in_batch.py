"""A worker that fetched a batch of fast jobs meets an unexpectedly slow one: the rest of its
batch goes back while the slow job runs, and an idle worker finishes it (Celery's
best-known complaint is these jobs waiting for the slow one)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

import qrun
from qrun.batch import LONG_JOB_SIGNAL, LongJobWatcher
from qrun.slots import SlotTable
from qrun.worker import Worker

SLOW_S = 3.0


@pytest.fixture
def queue(url: str) -> Iterator[qrun.Queue]:
    with qrun.Queue("slowbatch", url) as queue:
        yield queue


def test_the_rest_of_a_batch_stuck_behind_a_slow_job_is_finished_by_an_idle_worker_within_a_moment(
    queue: qrun.Queue, report: Callable[..., None]
) -> None:
    finished: dict[int, float] = {}
    runs: Counter[int] = Counter()
    slow_started = threading.Event()
    slow_started_at = [0.0]

    @queue.task(name="t.step")
    def step(n: int) -> None:
        runs[n] += 1
        if n == 13:
            slow_started_at[0] = time.monotonic()
            slow_started.set()
            time.sleep(SLOW_S)
        finished[n] = time.monotonic()

    queue.enqueue_many(step, [(n,) for n in range(60)])  # 13 fast, the slow one, 46 fast
    table = SlotTable(2)
    busy_slot = table.take()
    busy = Worker([queue], read_block_ms=50, slot=table.writer(busy_slot))  # runs in this (main) thread
    idle = Worker([queue], read_block_ms=50)
    busy.boot()
    idle.boot()
    # What a supervisor does: watch the busy worker's slot, signal it when its job runs long.
    previous = signal.signal(LONG_JOB_SIGNAL, busy.on_long_job)
    watcher = LongJobWatcher(lambda: [(os.getpid(), table.progress(busy_slot))])
    watcher.start()
    try:
        busy._prefetch = 60  # noqa: SLF001 - as after a run of fast batches
        jobs, _ = busy.wire.fetch(60)  # type: ignore[union-attr]
        assert len(jobs) == 60
        other = threading.Thread(target=idle.run, name="idle-worker")
        other.start()
        try:
            busy._run_batch(jobs)  # noqa: SLF001 - in this thread: 0..12, then the slow one
            busy.wire.flush()  # type: ignore[union-attr] - what its next read would send
            deadline = time.monotonic() + 10
            while len(finished) < 60 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            idle.request_stop()
            other.join(timeout=10)
    finally:
        watcher.stop()
        signal.signal(LONG_JOB_SIGNAL, previous)
        busy.close()
        idle.close()
        table.close()

    rest = [finished[n] - slow_started_at[0] for n in range(14, 60)]
    waited_s = max(rest)
    report(batch=60, slow_job_s=SLOW_S, handed_back=46, rest_done_after_s=f"{waited_s:.3f}",
           duplicates=sum(runs.values()) - len(runs), lost=60 - len(finished))
    assert sorted(runs) == list(range(60))
    assert set(runs.values()) == {1}  # none ran twice: a job handed back is never started here
    assert waited_s < SLOW_S / 3, f"the rest of the batch waited {waited_s:.2f}s behind the slow job"
    assert queue.stats()["succeeded"] == 60
