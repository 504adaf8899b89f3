"""A fetched batch, and the watcher that keeps it from holding jobs or acks behind a slow job.

A worker fetches fast jobs in batches (about ``BATCH_WORK_S`` of work each) and runs them one
at a time. Two things must not wait behind a job that turns out slow:

- the unstarted rest of the batch: idle workers should take it now, not once the slow job
  ends (Celery's best-known complaint);
- the acks of the jobs already finished: a worker killed during the slow job would
  otherwise hand them back and they would all run again.

The worker cannot notice while it runs the job, and a thread of its own would cost every
batch a wake-up and a GIL hand-off. So the supervisor watches: its :class:`LongJobWatcher`
thread reads each worker's slot every ``tick_s`` (the entry it started last, written once
per job), and when one job has been running for ``cut_after_s`` of its own time (time the
process sat waiting for a CPU does not count: Linux schedstat), it sends the worker
``SIGUSR1``. The worker's handler runs on its main thread, between two bytecodes of the
job: it takes the unstarted rest of the :class:`Batch`, sends the acks it owes and hands
the rest back, all on a connection of its own. The main thread then finds the batch empty.
Handler and loop run on one thread, so a job is started or handed back, never both.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from . import settings

log = logging.getLogger(__name__)

Entry = tuple[Any, ...]

#: The signal the supervisor sends a worker whose job runs long.
LONG_JOB_SIGNAL = signal.SIGUSR1

#: The signal the supervisor sends its workers when a job one of them may hold was cancelled
#: (qrun.lifecycle.cancel).
CANCEL_SIGNAL = signal.SIGUSR2


class Batch:
    """The jobs of one read. The worker's main thread starts them in order, each taken with
    ``batch.jobs.popleft()`` (or ``for job in batch``); :meth:`cut` takes every job not
    started yet. Each take is one atomic deque call, so a job goes to one side only, even
    if the cut runs on another thread."""

    __slots__ = ("jobs", "started_at", "cut_count")

    def __init__(self, jobs: list[Entry]) -> None:
        self.jobs = deque(jobs)
        self.started_at = time.perf_counter()
        #: jobs taken back by :meth:`cut`
        self.cut_count = 0

    def __iter__(self) -> Iterator[Entry]:
        take = self.jobs.popleft
        while True:
            try:
                yield take()  # atomic: a job taken here can no longer be cut
            except IndexError:
                return

    def cut(self) -> list[Entry]:
        """Take every job not started yet, in order; each one is now the caller's to hand back."""
        rest: list[Entry] = []
        take = self.jobs.pop
        while True:
            try:
                rest.append(take())  # atomic per job: the main thread cannot start it any more
            except IndexError:
                break
        rest.reverse()
        self.cut_count += len(rest)
        return rest


class LongJobWatcher:
    """The supervisor's thread that tells workers when their current job runs long.

    ``workers()`` returns ``(pid, progress)`` for each live worker, where ``progress`` is
    what its slot says (the count of jobs it started: changes with every job; None between
    batches). A worker
    is signalled once per job, and only when the job has run ``cut_after_s`` of the
    worker's own time: a worker preempted on a busy machine is not mistaken for a slow job.
    Costs the workers nothing; costs the supervisor one slot read per worker per tick.
    """

    def __init__(
        self,
        workers: Callable[[], Sequence[tuple[int, object]]],
        *,
        tick_s: float = 2 * settings.BATCH_WORK_S,
        cut_after_s: float = 2 * settings.BATCH_WORK_S,
        signum: int = LONG_JOB_SIGNAL,
    ) -> None:
        self._workers = workers
        self.tick_s = tick_s
        self.cut_after_s = cut_after_s
        self.signum = signum
        #: pid -> (progress, wall and CPU-wait seconds when first seen, signalled)
        self._seen: dict[int, tuple[object, float, float, bool]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="qrun-long-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.look()
            except Exception:  # never let the thread die
                log.exception("long-job watcher: unexpected error; continuing")

    def look(self) -> None:
        """One pass over the workers (the thread calls it every tick). Reads /proc only for
        a worker whose job has not changed since the last look."""
        now = time.perf_counter()
        alive = set()
        for pid, running in self._workers():
            alive.add(pid)
            if running is None:
                self._seen.pop(pid, None)
                continue
            seen = self._seen.get(pid)
            if seen is None or seen[0] != running:  # a new job since the last look
                self._seen[pid] = (running, now, -1.0, False)
                continue
            _running, since, waited_since, signalled = seen
            if signalled:
                continue
            if waited_since < 0:  # no job started for a tick: measure from here, CPU wait apart
                self._seen[pid] = (running, now, waited_s(pid), False)
                continue
            if now - since < self.cut_after_s:
                continue
            ran_s = (now - since) - (waited_s(pid) - waited_since)
            if ran_s >= self.cut_after_s:
                self._seen[pid] = (running, since, waited_since, True)
                try:
                    os.kill(pid, self.signum)
                except ProcessLookupError:
                    pass
        for pid in list(self._seen):
            if pid not in alive:
                del self._seen[pid]


def waited_s(pid: int) -> float:
    """Seconds process ``pid`` (its main thread) sat runnable but waiting for a CPU, from
    Linux schedstat; 0.0 where the kernel does not say."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0
