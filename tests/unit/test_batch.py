"""A fetched batch is shared by the worker's main thread (which starts its jobs one by one)
and its batch watcher (which takes back the unstarted rest while a slow job runs): each job
must be started or handed back, never both, never neither."""

from __future__ import annotations

import random
import sys
import threading
import time

from qrun.batch import Batch, BatchWatcher


def test_a_job_is_either_started_or_cut_never_both_even_when_the_cut_races_the_next_start() -> None:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows: force the race
    rng = random.Random(8)
    try:
        for _round in range(300):
            jobs = [(b"s", f"{n}-0") for n in range(200)]
            batch = Batch(jobs)
            started: list[tuple[bytes, str]] = []
            cut: list[tuple[bytes, str]] = []
            go = threading.Event()

            def cutter() -> None:
                go.wait()
                for _ in range(rng.randrange(0, 400)):  # cut at a random point of the run
                    pass
                cut.extend(batch.cut())

            thread = threading.Thread(target=cutter)
            thread.start()
            go.set()
            for job in batch:
                started.append(job)
            thread.join()
            assert not set(started) & set(cut)
            assert sorted(started + cut) == sorted(jobs)
            assert started == jobs[: len(started)]  # started in order, the rest cut in order
            assert cut == jobs[len(started) :]
            assert batch.cut_count == len(cut)
    finally:
        sys.setswitchinterval(previous)


def test_the_watcher_hands_back_the_rest_of_a_batch_that_runs_past_its_threshold() -> None:
    released: list[list[tuple[int]]] = []
    flushes = []
    watcher = BatchWatcher(released.append, lambda: flushes.append(1), tick_s=0.002, cut_after_s=0.01)
    watcher.start()
    try:
        batch = Batch([(n,) for n in range(5)])
        watcher.watch(batch)
        ran = []
        for job in batch:
            ran.append(job)
            if job == (1,):
                time.sleep(0.2)  # the slow one: the rest goes back while it runs
        watcher.watch(None)
    finally:
        watcher.stop()
    assert ran == [(0,), (1,)]
    assert released == [[(2,), (3,), (4,)]]
    assert flushes  # acks of finished jobs went out while the slow job ran


def test_the_watcher_leaves_a_fast_batch_alone_and_sleeps_while_the_worker_is_idle() -> None:
    released: list[object] = []
    watcher = BatchWatcher(released.append, lambda: None, tick_s=0.002, cut_after_s=0.05)
    watcher.start()
    try:
        for _ in range(20):
            batch = Batch([(n,) for n in range(10)])
            watcher.watch(batch)
            assert len(list(batch)) == 10
            watcher.watch(None)
        time.sleep(0.05)
    finally:
        watcher.stop()
    assert released == []
