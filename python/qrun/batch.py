"""A fetched batch, and the watcher that keeps it from holding jobs or acks behind a slow job.

A worker fetches fast jobs in batches (about ``BATCH_WORK_S`` of work each) and runs them one
at a time. Two things must not wait behind a job that turns out slow:

- the unstarted rest of the batch: idle workers should take it now, not once the slow job
  ends (Celery's best-known complaint);
- the acks of the jobs already finished: a worker killed during the slow job would
  otherwise hand them back and they would all run again.

The job runs on the worker's main thread, so a :class:`BatchWatcher` thread does both while
it runs. Who runs and who hands back a job is settled by :class:`Batch`: a deque from which
the main thread takes the next job and the watcher takes the whole rest, each with atomic
``popleft``/``pop`` calls, so a job is either started or handed back, never both, without a
lock on the hot path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from redis.exceptions import RedisError

from . import settings

log = logging.getLogger(__name__)

Entry = tuple[Any, ...]


class Batch:
    """The jobs of one read, handed out one at a time: ``for job in batch`` starts them in
    order; :meth:`cut` takes every job not started yet (from any thread)."""

    __slots__ = ("_jobs", "started_at", "cut_count")

    def __init__(self, jobs: list[Entry]) -> None:
        self._jobs = deque(jobs)
        self.started_at = time.perf_counter()
        #: jobs taken back by :meth:`cut` (by either thread)
        self.cut_count = 0

    def __iter__(self) -> Iterator[Entry]:
        take = self._jobs.popleft
        while True:
            try:
                yield take()  # atomic: a job taken here can no longer be cut
            except IndexError:
                return

    def __len__(self) -> int:
        return len(self._jobs)

    def cut(self) -> list[Entry]:
        """Take every job not started yet, in order; each one is now the caller's to hand back."""
        rest: list[Entry] = []
        take = self._jobs.pop
        while True:
            try:
                rest.append(take())  # atomic per job: the main thread cannot start it any more
            except IndexError:
                break
        rest.reverse()
        self.cut_count += len(rest)
        return rest


class BatchWatcher:
    """A daemon thread of the worker that looks at the running batch every ``tick_s``.

    It acts only when one job has run a whole tick (no job of the batch started since its
    last look); while jobs keep finishing it does nothing and costs nothing but its wake-up.

    - It sends the acks (and events) owed (``flush``), so a kill during that job reruns at
      most that job: the ones finished before it are acked.
    - Once the batch has run longer than ``cut_after_s`` (twice the work a batch is sized
      to), it cuts the unstarted rest and hands it back (``release``) so idle workers take it.

    It sleeps on an event while the worker is idle or runs one job at a time, so an idle
    worker pays nothing; :meth:`watch` costs the main thread an attribute write per batch.
    """

    def __init__(
        self,
        release: Callable[[list[Entry]], None],
        flush: Callable[[], None],
        *,
        tick_s: float = settings.BATCH_WORK_S,
        cut_after_s: float = 2 * settings.BATCH_WORK_S,
    ) -> None:
        self._release = release
        self._flush = flush
        self.tick_s = tick_s
        self.cut_after_s = cut_after_s
        self._batch: Batch | None = None
        self._wake = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="qrun-batch-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped = True
        self._batch = None
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def watch(self, batch: Batch | None) -> None:
        """The batch the main thread runs now (None: none, or one not worth watching)."""
        self._batch = batch
        if batch is not None and not self._wake.is_set():
            self._wake.set()

    def _loop(self) -> None:
        watched: Batch | None = None
        left = -1
        while not self._stopped:
            batch = self._batch
            if batch is None:
                self._wake.clear()
                if self._batch is None and not self._stopped:  # re-check: watch() may have run meanwhile
                    self._wake.wait()
                continue
            if batch is not watched:
                watched, left = batch, len(batch)
            time.sleep(self.tick_s)
            if self._batch is not batch:
                continue  # that batch ended (its acks went with the next read)
            if len(batch) != left:
                left = len(batch)  # jobs keep finishing: the main thread sends the acks itself
                continue
            # The same job has run a whole tick: send what is owed and, once the batch is
            # past its threshold, hand back the rest for idle workers.
            try:
                self._flush()
                if left and time.perf_counter() - batch.started_at > self.cut_after_s:
                    rest = batch.cut()
                    left = 0
                    if rest:
                        self._release(rest)
            except RedisError as error:  # the main thread reconnects; acks and jobs are kept for it
                log.debug("batch watcher: server unavailable (%s); leaving it to the main thread", error)
            except Exception:  # a bug: say so, but never let the thread die
                log.exception("batch watcher: could not send acks or hand back jobs now")
