"""The shared-memory slots a supervisor reads, and the soft time limit a worker enforces."""

from __future__ import annotations

import os
import signal
import time

import pytest

from qrun import TimeLimitExceeded
from qrun.slots import SlotTable
from qrun.time_limit import soft_time_limit


def test_a_slot_written_by_a_forked_child_is_read_by_the_parent() -> None:
    table = SlotTable(4)
    index = table.take()
    pid = os.fork()
    if pid == 0:  # the child writes, as a worker does, then leaves without cleanup
        writer = table.writer(index)
        writer.booted(os.getpid())
        writer.polled()
        writer.job_started(7, 1, "1700000000000-3", "job-id", "app.task", 2.5)
        os._exit(0)
    os.waitpid(pid, 0)
    view = table.read(index)
    assert view.pid == pid and view.busy
    assert (view.jobs_done, view.queue_index, view.entry_id, view.job_id, view.task) == (
        7, 1, "1700000000000-3", "job-id", "app.task"
    )
    assert view.job_deadline == pytest.approx(view.job_started + 2.5)
    assert abs(view.last_poll - time.monotonic()) < 5
    table.close()


def test_idle_clears_the_job_and_counts_it_and_busy_marks_a_batch_without_a_deadline() -> None:
    table = SlotTable(1)
    writer = table.writer(table.take())
    writer.job_started(0, 0, "1-1", "j", "t", 5.0)
    assert table.read(0).busy and table.read(0).job_deadline > 0
    writer.busy(1)  # the rest of a batch: busy, but no job described and no deadline
    view = table.read(0)
    assert view.busy and view.job_deadline == 0.0 and view.queue_index == -1 and view.jobs_done == 1
    writer.idle(2)
    view = table.read(0)
    assert not view.busy and view.job_deadline == 0.0 and view.jobs_done == 2
    assert abs(view.last_poll - time.monotonic()) < 5
    table.close()


def test_long_names_are_cut_to_fit_their_field() -> None:
    table = SlotTable(1)
    writer = table.writer(table.take())
    writer.job_started(0, 0, "1-1", "j" * 100, "t" * 200, None)
    view = table.read(0)
    assert view.job_id == "j" * 64 and view.task == "t" * 96
    table.close()


def test_a_taken_slot_is_cleared_and_a_full_table_says_so() -> None:
    table = SlotTable(1)
    table.writer(table.take()).booted(123)
    table.give_back(0)
    assert table.read(table.take()).pid == 0
    with pytest.raises(IndexError):
        table.take()
    table.close()


def test_the_soft_limit_raises_inside_the_block_and_restores_the_previous_handler() -> None:
    def previous(_signum: int, _frame: object) -> None:
        pass

    signal.signal(signal.SIGALRM, previous)
    started = time.monotonic()
    with pytest.raises(TimeLimitExceeded, match="soft time limit of 0.05s"):
        with soft_time_limit(0.05):
            time.sleep(2)
    assert time.monotonic() - started < 1
    assert signal.getsignal(signal.SIGALRM) is previous
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)


def test_a_block_that_ends_in_time_leaves_no_timer_behind() -> None:
    with soft_time_limit(5):
        pass
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    with soft_time_limit(None):  # no limit: nothing is armed
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_reader_never_sees_a_half_written_slot_while_a_child_writes_flat_out() -> None:
    table = SlotTable(1)
    index = table.take()
    pid = os.fork()
    if pid == 0:  # the child rewrites the slot as fast as it can for a while
        writer = table.writer(index)
        n = 0
        stop_at = time.monotonic() + 1.0
        while time.monotonic() < stop_at:
            n += 1
            writer.job_started(n, n % 3, f"{n}-0", f"job{n}", f"task{n}" * (n % 7), None)
        os._exit(0)
    torn = reads = 0
    try:
        while reads < 20_000:
            view = table.read(index)
            reads += 1
            if view.entry_id and (view.entry_id != f"{view.jobs_done}-0" or view.job_id != f"job{view.jobs_done}"):
                torn += 1
    finally:
        os.waitpid(pid, 0)
        table.close()
    assert torn == 0


def test_a_slot_whose_writer_died_mid_write_is_still_read() -> None:
    table = SlotTable(1)
    writer = table.writer(table.take())
    writer.booted(42)
    writer._writing()  # noqa: SLF001 - what SIGKILL mid-write leaves: an odd sequence number
    assert table.read(0).pid == 42
    table.close()


def test_the_supervisor_finds_the_job_a_dead_worker_was_running_from_its_batch_and_count() -> None:
    table = SlotTable(2)
    index = table.take()
    writer = table.writer(index)
    assert table.progress(index) is None and table.running(index) is None  # no batch yet
    writer.batch_began(40, ["1-0", "1-1", "2-0"], None)
    assert table.progress(index) == 40 and table.running(index) is None  # none started yet
    writer.ints[writer.started_at] = 41
    assert table.running(index) == (0, "1-0")
    writer.ints[writer.started_at] = 42
    assert table.progress(index) == 42 and table.running(index) == (0, "1-1")
    writer.batch_ended()
    assert table.progress(index) is None and table.running(index) is None  # between batches
    writer.batch_began(42, ["9-0", "9-1"], bytes([1, 0]))  # a worker of two queues
    writer.ints[writer.started_at] = 43
    assert table.running(index) == (1, "9-0")
    writer.ints = memoryview(b"")  # drop the writer's view so the table can close
    table.close()


def test_a_batch_whose_ids_do_not_fit_charges_nobody_rather_than_the_wrong_job() -> None:
    table = SlotTable(1)
    index = table.take()
    writer = table.writer(index)
    writer.batch_began(0, ["9" * 41 + f"-{n}" for n in range(512)], None)
    writer.ints[writer.started_at] = 1
    assert table.running(index) is None
