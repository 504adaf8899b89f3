"""The metrics count table: layout, batch counting, failures, and folding a reaped worker's region."""

from __future__ import annotations

import qrun
from qrun.hooks import Outbox, hooks_for
from qrun.metrics.counts import OTHER_TASK, CountTable, Layout, rows


def make_queue() -> qrun.Queue:
    queue = qrun.Queue("q", "redis://127.0.0.1:1/0")

    @queue.task(name="app.a")
    def a() -> None: ...

    @queue.task(name="app.b")
    def b() -> None: ...

    return queue


def by_task(table: CountTable) -> dict[str, dict[str, int]]:
    return {row.task: row.counters for row in rows(table.layout, table.totals())}


def test_a_batch_is_counted_per_task_with_failures_told_by_the_hook() -> None:
    queue = make_queue()
    table = CountTable(Layout.of([queue]), 4)
    assert [label for label in table.layout.labels] == [("q", "app.a"), ("q", "app.b"), ("q", OTHER_TASK)]
    table.take(0)
    writer = table.writer(0)
    batches = writer.batches()
    [hook] = hooks_for(queue, None, Outbox(), "w", writer)
    assert not hook.every_job  # the worker does not call it for each job that starts and succeeds
    stream = queue.keys.stream.encode()
    jobs = [(stream, f"{n}-0", f"j{n}", task, (), {}, 1, 1_000) for n, task in enumerate(["app.a", "app.a", "app.b", "x.y"])]
    taken = iter([0, 3])

    def run(batch: list[tuple[object, ...]]) -> None:
        hook.failed("q", batch[1], RuntimeError())
        hook.retrying("q", batch[1], 1.0)

    batches.wrap(run, lambda: next(taken))(jobs)  # three of four taken: the unknown task was handed back
    counts = by_task(table)
    assert counts["app.a"] == {"started": 2, "succeeded": 1, "failed": 1, "retried": 1, "dead": 0, "cancelled": 0}
    assert counts["app.b"]["succeeded"] == 1 and counts[OTHER_TASK]["started"] == 0
    [a, *_] = rows(table.layout, table.totals())
    assert sum(a.duration_buckets) == 2 and sum(a.latency_buckets) == 2 and a.latency_sum_s > 0


def test_a_reaped_workers_counts_are_folded_and_its_region_starts_from_zero() -> None:
    queue = make_queue()
    table = CountTable(Layout.of([queue]), 4)
    table.take(1)
    writer = table.writer(1)
    writer.add(queue, "app.a", 0, 5)
    writer.add(queue, "nobody.declared", 0, 2)
    table.own_writer().add(queue, "app.b", 4)
    assert by_task(table)["app.a"]["started"] == 5 and by_task(table)[OTHER_TASK]["started"] == 2
    table.fold(1)
    table.take(1)  # the slot is reused by a new worker
    counts = by_task(table)
    assert counts["app.a"]["started"] == 5 and counts["app.b"]["dead"] == 1
    assert table.writer(1)._ints[table.region_ints] == 0  # noqa: SLF001 - the reused region is clear
