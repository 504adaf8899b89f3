"""A fetched batch: the worker's main thread starts its jobs one by one, and the long-job
handler (the supervisor's watcher signals it) may take back the unstarted rest while a slow
job runs: each job must be started or handed back, never both, never neither."""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
from unittest import mock

from qrun import batch as batch_module
from qrun.batch import Batch, LongJobWatcher, waited_s


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


def test_the_long_job_watcher_signals_a_worker_once_when_one_job_runs_past_the_threshold() -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, _frame: received.append(signum))
    running = [b"1-0"]
    watcher = LongJobWatcher(lambda: [(os.getpid(), running[0])], tick_s=0.002, cut_after_s=0.02)
    try:
        watcher.look()  # first sight of job 1-0
        watcher.look()  # still on it: its own time is measured from here
        time.sleep(0.03)
        watcher.look()  # 30 ms more on the same job: signal
        watcher.look()  # and only once per job
        time.sleep(0.01)  # let the signal be handled
        assert received == [signal.SIGUSR1]
        running[0] = b"2-0"
        watcher.look()
        watcher.look()
        watcher.look()
        assert received == [signal.SIGUSR1]  # a new job starts its own clock
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_the_long_job_watcher_leaves_a_worker_alone_while_its_jobs_keep_changing_or_between_batches() -> None:
    sent: list[int] = []
    entries = iter(f"{n}-0".encode() for n in range(1000))
    watcher = LongJobWatcher(lambda: [(os.getpid(), next(entries))], cut_after_s=0.0)
    idle = LongJobWatcher(lambda: [(os.getpid(), None)], cut_after_s=0.0)
    with mock.patch("os.kill", lambda pid, signum: sent.append(signum)):
        for _ in range(20):
            watcher.look()
            idle.look()
    assert sent == []


def test_time_a_worker_waited_for_a_cpu_does_not_count_as_its_job_running() -> None:
    sent: list[int] = []
    clock = [0.0]
    watcher = LongJobWatcher(lambda: [(4242, b"1-0")], cut_after_s=0.01)
    with mock.patch("os.kill", lambda pid, signum: sent.append(pid)), \
            mock.patch.object(batch_module, "waited_s", lambda pid: clock[0]), \
            mock.patch.object(batch_module.time, "perf_counter", lambda: clock[0]):
        watcher.look()
        watcher.look()  # no job started since: measured from here
        clock[0] = 1.0  # one second on the wall clock, all of it spent waiting for a CPU
        watcher.look()
        assert sent == []
    with mock.patch("os.kill", lambda pid, signum: sent.append(pid)), \
            mock.patch.object(batch_module, "waited_s", lambda pid: 1.0), \
            mock.patch.object(batch_module.time, "perf_counter", lambda: clock[0]):
        clock[0] = 1.5  # then half a second really running it
        watcher.look()
    assert sent == [4242]


def test_a_worker_that_waited_is_read_from_schedstat() -> None:
    assert waited_s(os.getpid()) >= 0.0
    assert waited_s(2**30) == 0.0  # no such process: nothing known
