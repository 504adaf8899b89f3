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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
    """One region's writer: builds the hook of each queue, and counts what is not a job's
    moment in a worker (the claimer's dead letters)."""

    def __init__(self, layout: Layout, ints: memoryview, offset: int) -> None:
        self.layout = layout
        self._ints = ints
        self._offset = offset

    def hook(self, queue: Queue) -> CountJobs | None:
        """The hook counting ``queue``'s jobs (None: the queue came after the layout)."""
        key = queue.keys.stream
        if key not in self.layout.other:
            return None
        rows = {task: self._offset + row * ROW for task, row in self.layout.rows[key].items()}
        return CountJobs(self._ints, rows, self._offset + self.layout.other[key] * ROW)

    def add(self, queue: Queue, task: str, field: int, count: int = 1) -> None:
        row = self.layout.row_of(queue, task)
        if row is not None:
            self._ints[self._offset + row * ROW + field] += count


_perf_counter = time.perf_counter
_time_ns = time.time_ns


class CountJobs(JobHooks):
    """The metrics hook of one queue in one process: counts each moment of a job's life into
    its row, the enqueue-to-start latency when the job starts and its run time when it ends.

    Per job: one dict lookup and a few integer additions per moment, one clock read and one
    bisect when it starts (latency) and when it ends (duration). Hooks run one job at a time
    on the worker's main thread, so one start time per hook is enough.
    """

    __slots__ = ("_ints", "_rows", "_other", "_began")

    def __init__(self, ints: memoryview, rows: dict[str, int], other: int) -> None:
        self._ints = ints
        self._rows = rows
        self._other = other
        self._began = 0.0

    def started(self, queue_name: str, entry: Entry) -> None:
        base = self._rows.get(entry[3], self._other)
        ints = self._ints
        ints[base] += 1
        enqueued_at = entry[7]
        if enqueued_at:  # 0: unknown (an entry written by hand)
            waited = _time_ns() // 1_000_000 - enqueued_at
            if waited < 0:  # another host's clock ahead of this one
                waited = 0
            ints[base + LATENCY_SUM] += waited
            ints[base + LATENCY_BUCKETS + bisect_left(LATENCY_BOUNDS_MS, waited)] += 1
        self._began = _perf_counter()

    def _ended(self, entry: Entry, field: int) -> None:
        base = self._rows.get(entry[3], self._other)
        ints = self._ints
        ints[base + field] += 1
        began = self._began
        if began:  # it ran here (not: settled by the supervisor, cancelled before it started)
            self._began = 0.0
            took = _perf_counter() - began
            ints[base + DURATION_SUM] += int(took * 1_000_000)
            ints[base + DURATION_BUCKETS + bisect_left(DURATION_BOUNDS_S, took)] += 1

    def succeeded(self, queue_name: str, entry: Entry, result: object) -> None:
        self._ended(entry, SUCCEEDED)

    def failed(self, queue_name: str, entry: Entry, error: BaseException) -> None:
        self._ended(entry, FAILED)

    def retrying(self, queue_name: str, entry: Entry, delay_s: float) -> None:
        self._ints[self._rows.get(entry[3], self._other) + RETRIED] += 1

    def dead(self, queue_name: str, entry: Entry, reason: str, error: BaseException | None) -> None:
        self._ints[self._rows.get(entry[3], self._other) + DEAD] += 1

    def cancelled(self, queue_name: str, entry: Entry, interrupted: bool) -> None:
        self._ended(entry, CANCELLED)  # interrupted: its run time so far is its duration


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
