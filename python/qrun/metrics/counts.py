"""Job counts in shared memory: written by each worker, summed by its supervisor at scrape time.

The supervisor lays the table out before it forks (:class:`Layout`): one row per (queue,
task) the app declares, plus one ``(other)`` row per queue for tasks nobody declared (an
unknown task, a task a HUP reload added). A row is a run of int64 fields::

    started succeeded failed retried dead cancelled
    duration_sum_us duration_bucket[0..len(DURATION_BOUNDS_S)]     (the last one is +Inf)
    latency_sum_ms  latency_bucket[0..len(LATENCY_BOUNDS_MS)]      (the last one is +Inf)

The table (:class:`CountTable`) is one anonymous shared mapping with a region of rows per
worker slot (:mod:`qrun.slots` numbers them) and one more for the supervisor itself (jobs it
settles: one killed for its time limit, one the claimer dead-lettered). Each region has a
single writer, which only adds to its own integers (one aligned 8-byte store each), so no
lock and no seqlock are needed: a reader may see a job counted as started and not yet as
succeeded, never a torn number. When a worker is reaped, the supervisor folds its region
into ``base`` (a plain list in its own memory) and zeroes it before the slot is reused, so the
counts of a worker that died, was killed or recycled are never lost, and totals only grow.
"""

from __future__ import annotations

import mmap
import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ..hooks import Entry, JobHooks

if TYPE_CHECKING:
    from ..queue import Queue

#: The row of a queue's tasks that no queue declares (task names cannot contain parentheses).
OTHER_TASK = "(other)"

#: Upper bounds of the job duration buckets, in seconds (a task's run time).
DURATION_BOUNDS_S: tuple[float, ...] = (
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)
#: Upper bounds of the enqueue-to-start buckets, in milliseconds (now - the entry's enqueued_at).
LATENCY_BOUNDS_MS: tuple[int, ...] = (
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
    300_000, 900_000, 3_600_000,
)

STARTED, SUCCEEDED, FAILED, RETRIED, DEAD, CANCELLED = range(6)
#: The counters of a row, by the name each one has in a metric (``qrun_jobs_<name>_total``).
COUNTERS = ("started", "succeeded", "failed", "retried", "dead", "cancelled")
DURATION_SUM = len(COUNTERS)
DURATION_BUCKETS = DURATION_SUM + 1
LATENCY_SUM = DURATION_BUCKETS + len(DURATION_BOUNDS_S) + 1
LATENCY_BUCKETS = LATENCY_SUM + 1
ROW = LATENCY_BUCKETS + len(LATENCY_BOUNDS_MS) + 1


@dataclass(frozen=True)
class Layout:
    """Which row counts which (queue, task): fixed when the supervisor starts.

    ``labels[row]`` is the (queue label, task label) of each row; ``rows[queue key][task]``
    its index, with ``other[queue key]`` the row of that queue's undeclared tasks. A queue is
    keyed by its stream key (unique per prefix and name); its label is its name, or
    ``prefix:name`` when two prefixes serve a queue of the same name.
    """

    labels: tuple[tuple[str, str], ...]
    rows: dict[str, dict[str, int]]
    other: dict[str, int]

    @classmethod
    def of(cls, queues: Sequence[Queue]) -> Layout:
        names = [queue.name for queue in queues]
        labels: list[tuple[str, str]] = []
        rows: dict[str, dict[str, int]] = {}
        other: dict[str, int] = {}
        for queue in queues:
            key = queue.keys.stream
            if key in rows:
                continue
            label = queue.name if names.count(queue.name) == 1 else f"{queue.prefix}:{queue.name}"
            rows[key] = {}
            for task in sorted(queue.tasks):
                rows[key][task] = len(labels)
                labels.append((label, task))
            other[key] = len(labels)
            labels.append((label, OTHER_TASK))
        return cls(tuple(labels), rows, other)

    def row_of(self, queue: Queue, task: str) -> int | None:
        """The row counting ``task`` of ``queue`` (None: a queue added after the layout)."""
        key = queue.keys.stream
        if key not in self.other:
            return None
        return self.rows[key].get(task, self.other[key])


class CountTable:
    """``capacity`` worker regions and the supervisor's own, in memory shared with every child
    forked after it was made; the supervisor's ``base`` holds what reaped workers counted."""

    def __init__(self, layout: Layout, capacity: int) -> None:
        self.layout = layout
        self.capacity = capacity
        self.region_ints = max(1, len(layout.labels)) * ROW
        self._memory = mmap.mmap(-1, (capacity + 1) * self.region_ints * 8)  # anonymous + MAP_SHARED
        self._ints = memoryview(self._memory).cast("q")
        self._base = [0] * self.region_ints
        self._in_use: set[int] = set()
        #: held while folding a reaped region and while summing: a scrape never sees a
        #: region's counts twice (in base and in the region) nor not at all
        self._lock = threading.Lock()

    @property
    def own_index(self) -> int:
        """The supervisor's own region (written by its maintenance thread only)."""
        return self.capacity

    def take(self, index: int) -> None:
        """A worker is about to be forked into slot ``index``: its region counts from zero."""
        with self._lock:
            self._zero(index)
            self._in_use.add(index)

    def fold(self, index: int) -> None:
        """The worker of slot ``index`` was reaped: add its counts to ``base``, zero its region."""
        start = index * self.region_ints
        with self._lock:
            counted = self._ints[start : start + self.region_ints].tolist()
            self._base = [kept + more for kept, more in zip(self._base, counted)]
            self._zero(index)
            self._in_use.discard(index)

    def _zero(self, index: int) -> None:
        width = self.region_ints * 8
        self._memory[index * width : (index + 1) * width] = bytes(width)

    def totals(self) -> list[int]:
        """Every row's fields summed over base, the live workers' regions and the supervisor's."""
        with self._lock:
            total = list(self._base)
            for index in (*self._in_use, self.own_index):
                start = index * self.region_ints
                total = [kept + more for kept, more in zip(total, self._ints[start : start + self.region_ints].tolist())]
        return total

    def writer(self, index: int) -> CountWriter:
        return CountWriter(self.layout, self._ints, index * self.region_ints)

    def own_writer(self) -> CountWriter:
        return self.writer(self.own_index)

    def close(self) -> None:
        self._ints.release()
        try:
            self._memory.close()
        except BufferError:  # a writer made in this process (tests) still views it: freed with it
            pass


class CountWriter:
    """One region's writer: the worker's :class:`BatchCounter` and each queue's
    :class:`CountJobs` hook; also counts what is not a job's moment in a worker (the
    claimer's dead letters, in the supervisor's region)."""

    def __init__(self, layout: Layout, ints: memoryview, offset: int) -> None:
        self.layout = layout
        self._ints = ints
        self._offset = offset
        self._batch: BatchCounter | None = None

    def batches(self) -> BatchCounter:
        """The batch counter of the worker writing this region (made once)."""
        if self._batch is None:
            rows = {
                (stream.encode(), task): self._offset + row * ROW
                for stream, tasks in self.layout.rows.items() for task, row in tasks.items()
            }
            other = {stream.encode(): self._offset + row * ROW for stream, row in self.layout.other.items()}
            self._batch = BatchCounter(self._ints, rows, other)
        return self._batch

    def hook(self, queue: Queue) -> CountJobs | None:
        """The hook counting ``queue``'s failures (None: the queue came after the layout)."""
        key = queue.keys.stream
        if key not in self.layout.other:
            return None
        rows = {task: self._offset + row * ROW for task, row in self.layout.rows[key].items()}
        return CountJobs(self._ints, rows, self._offset + self.layout.other[key] * ROW, self._batch)

    def add(self, queue: Queue, task: str, field: int, count: int = 1) -> None:
        row = self.layout.row_of(queue, task)
        if row is not None:
            self._ints[self._offset + row * ROW + field] += count


_time = time.time
_BATCH_KEY = itemgetter(0, 3, 7)  # (stream, task, enqueued_at) of a decoded entry


class BatchCounter:
    """A worker's counting of the jobs it runs, done once per batch, not per job.

    A no-op job costs a worker about 5 µs; calling two hooks per job (started, succeeded)
    that read the clock and bisect cost as much again, so started and succeeded jobs are
    counted around each fetched batch instead (:meth:`wrap` puts :meth:`ran` around the
    worker's ``_run_batch`` when metrics are on; a worker without metrics is not touched).
    The jobs that ran are grouped by (queue, task, enqueued_at) in C (``Counter``), so a
    batch costs a few additions per group. Failures are rare and counted when they happen,
    by :class:`CountJobs`, which also tells this counter which jobs of the batch did not
    succeed or did not run.

    What this gives up: a batch holds several jobs only when they are fast (the worker
    fetches slow jobs one at a time), and its jobs are timed together: each is observed at
    the batch's mean run time, and its enqueue-to-start latency is measured from the
    batch's start (understated by at most the batch's run time, about 5 ms). A job that
    runs alone is timed exactly. The batch a worker is running when it is killed is not
    counted (its outcome is: the supervisor or the claimer settles it).
    """

    def __init__(self, ints: memoryview, rows: dict[tuple[bytes, str], int], other: dict[bytes, int]) -> None:
        self._ints = ints
        self._rows = rows
        self._other = other
        #: entry ids of the running batch that did not succeed / never ran (told by CountJobs)
        self.not_succeeded: set[str] = set()
        self.not_run: set[str] = set()

    def wrap(self, run_batch: Callable[[list[Entry]], None], started: Callable[[], int]) -> Callable[[list[Entry]], None]:
        """``run_batch`` counted: ``started()`` is the worker's count of jobs taken so far
        (the jobs of a batch are taken in order, so the first ``after - before`` ran)."""
        ran = self.ran

        def counted(jobs: list[Entry]) -> None:
            self.not_succeeded.clear()
            self.not_run.clear()
            before = started()
            began = _time()
            try:
                run_batch(jobs)
            finally:
                ran(jobs, started() - before, began, _time())

        return counted

    def ran(self, jobs: list[Entry], taken: int, began: float, ended: float) -> None:
        """The first ``taken`` of ``jobs`` were taken between ``began`` and ``ended`` (wall clock)."""
        if taken <= 0:
            return
        taken_jobs = jobs[:taken] if taken < len(jobs) else jobs
        succeeded: Counter[tuple[Any, ...]] | None = None
        if self.not_succeeded or self.not_run:  # a failure in this batch: sort the jobs out one by one
            started: Counter[tuple[Any, ...]] = Counter()
            succeeded = Counter()
            for job in taken_jobs:
                if job[1] in self.not_run:
                    continue
                key = _BATCH_KEY(job)
                started[key] += 1
                if job[1] not in self.not_succeeded:
                    succeeded[key] += 1
        else:
            started = Counter(map(_BATCH_KEY, taken_jobs))
        count = sum(started.values())
        if not count:
            return
        took = max(0.0, ended - began) / count
        took_us = int(took * 1_000_000)
        took_bucket = DURATION_BUCKETS + bisect_left(DURATION_BOUNDS_S, took)
        began_ms = began * 1000.0
        ints, rows, other = self._ints, self._rows, self._other
        for (stream, task, enqueued_at), number in started.items():
            row = rows.get((stream, task))
            if row is None:
                row = other.get(stream)
                if row is None:  # a queue that came after the layout
                    continue
            ints[row + STARTED] += number
            ints[row + SUCCEEDED] += number if succeeded is None else succeeded[(stream, task, enqueued_at)]
            ints[row + DURATION_SUM] += took_us * number
            ints[row + took_bucket] += number
            if enqueued_at:  # 0: unknown (an entry written by hand)
                waited_ms = began_ms - enqueued_at
                if waited_ms < 0.0:  # another host's clock ahead of this one
                    waited_ms = 0.0
                ints[row + LATENCY_SUM] += int(waited_ms) * number
                ints[row + LATENCY_BUCKETS + bisect_left(LATENCY_BOUNDS_MS, waited_ms)] += number


class CountJobs(JobHooks):
    """The metrics hook of one queue in one process: counts the moments that are failures
    (failed, retried, dead, cancelled) when they happen. Started and succeeded jobs are
    counted per batch (:class:`BatchCounter`), so this hook is not called for every job
    (``every_job = False``); it tells the worker's batch counter, if there is one, which
    jobs of the running batch did not succeed or never ran."""

    every_job = False

    def __init__(self, ints: memoryview, rows: dict[str, int], other: int, batch: BatchCounter | None) -> None:
        self._ints = ints
        self._rows = rows
        self._other = other
        self._batch = batch

    def _count(self, entry: Entry, field: int) -> None:
        self._ints[self._rows.get(entry[3], self._other) + field] += 1

    def failed(self, queue_name: str, entry: Entry, error: BaseException) -> None:
        self._count(entry, FAILED)
        if self._batch is not None:
            self._batch.not_succeeded.add(entry[1])

    def retrying(self, queue_name: str, entry: Entry, delay_s: float) -> None:
        self._count(entry, RETRIED)

    def dead(self, queue_name: str, entry: Entry, reason: str, error: BaseException | None) -> None:
        self._count(entry, DEAD)
        if self._batch is not None and entry[1] not in self._batch.not_succeeded:  # never ran: an unknown task
            self._batch.not_run.add(entry[1])

    def cancelled(self, queue_name: str, entry: Entry, interrupted: bool) -> None:
        self._count(entry, CANCELLED)
        if self._batch is not None:
            (self._batch.not_succeeded if interrupted else self._batch.not_run).add(entry[1])


@dataclass(frozen=True)
class RowCounts:
    """One row of summed counts, as the exporter and tests read it."""

    queue: str
    task: str
    counters: dict[str, int]
    duration_buckets: list[int]  # per bucket, not cumulative; the last is +Inf
    duration_sum_s: float
    latency_buckets: list[int]
    latency_sum_s: float

    @property
    def empty(self) -> bool:
        return not any(self.counters.values())


def rows(layout: Layout, totals: list[int]) -> Iterable[RowCounts]:
    """The rows of ``totals`` (from :meth:`CountTable.totals`), labelled."""
    for row, (queue, task) in enumerate(layout.labels):
        fields: list[Any] = totals[row * ROW : (row + 1) * ROW]
        yield RowCounts(
            queue, task,
            dict(zip(COUNTERS, fields[: len(COUNTERS)])),
            fields[DURATION_BUCKETS:LATENCY_SUM], fields[DURATION_SUM] / 1_000_000,
            fields[LATENCY_BUCKETS:ROW], fields[LATENCY_SUM] / 1000,
        )
