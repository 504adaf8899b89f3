"""Shared-memory slots: what each worker is doing, readable by its supervisor without I/O.

The supervisor maps one anonymous shared page range before forking; each child writes only
its own slot (its last poll, and the job it runs with its deadline), and the supervisor reads
them to extend live jobs' visibility, enforce hard time limits, spot hung workers and report
presence. No sockets, no locks: a seqlock. The writer makes the slot's sequence number odd,
writes with one ``pack_into``, and makes it even again; a reader copies the slot and keeps the
copy only if the number was even and unchanged around it, so it never acts on a half-written
slot.
"""

from __future__ import annotations

import mmap
import struct
import time
from dataclasses import dataclass

# sequence | pid, booted_at (wall) | last_poll (monotonic), jobs_done, job_started (monotonic,
# 0 = idle), job_deadline (monotonic, 0 = none), job_started_at (wall), queue index, entry id,
# job id, task
_SEQ = struct.Struct("<Q")
_HEAD = struct.Struct("<qd")
_JOB = struct.Struct("<dQdddh48s64s96s")
_SLOT_SIZE = _SEQ.size + _HEAD.size + _JOB.size

# A reader retries a slot being written: it spins a little (a write takes about a
# microsecond), then naps (a writer preempted mid-write needs the CPU, not a spinning
# reader), and after about 5 ms takes what it has (a writer that died mid-write).
_READ_SPINS = 200
_READ_NAPS = 50
_READ_NAP_S = 0.0001

# The batch a worker runs, in a second shared mapping (no seqlock: written by the worker,
# read by the supervisor's long-job watcher, which only compares, and after the worker died):
# four int64 (jobs started so far, that count when the batch began, the batch's length, 0
# between batches; length of the ids), the batch's entry ids joined by newlines, and the
# queue index of each job. The worker writes the ids once per batch and one int per job.
_STARTED, _FIRST, _LENGTH, _IDS_LENGTH = range(4)
_MAX_BATCH = 512  # settings.MAX_PREFETCH
_IDS_BYTES = 42 * _MAX_BATCH  # an entry id is at most 41 characters, plus the newline
_BATCH_SLOT = 4 * 8 + _IDS_BYTES + _MAX_BATCH
_POLL = struct.Struct("<d")  # the first field of _JOB
_DONE = struct.Struct("<dQdd")  # the first four: last_poll, jobs_done, job_started, job_deadline
_BUSY = struct.Struct("<dQdddh")  # the first six: ... job_started_at, queue_index (-1: a batch)


@dataclass(frozen=True)
class SlotView:
    """A consistent copy of one worker's slot."""

    pid: int
    booted_at: float
    last_poll: float
    jobs_done: int
    job_started: float
    job_deadline: float
    job_started_at: float
    queue_index: int
    entry_id: str
    job_id: str
    task: str

    @property
    def busy(self) -> bool:
        return self.job_started > 0


class SlotTable:
    """``capacity`` slots in memory shared with every child forked after it was made."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._memory = mmap.mmap(-1, capacity * _SLOT_SIZE)  # anonymous + MAP_SHARED
        self._batch = mmap.mmap(-1, capacity * _BATCH_SLOT)  # pages are touched only by slots in use
        self._ints = memoryview(self._batch).cast("q")
        self._free = list(range(capacity - 1, -1, -1))

    def take(self) -> int:
        """Reserve a slot (cleared) for a worker about to be forked; IndexError when full."""
        index = self._free.pop()
        self._memory[index * _SLOT_SIZE : (index + 1) * _SLOT_SIZE] = bytes(_SLOT_SIZE)
        self._batch[index * _BATCH_SLOT : index * _BATCH_SLOT + 32] = bytes(32)
        queue_indexes = index * _BATCH_SLOT + 32 + _IDS_BYTES
        self._batch[queue_indexes : queue_indexes + _MAX_BATCH] = bytes(_MAX_BATCH)
        return index

    def give_back(self, index: int) -> None:
        self._free.append(index)

    def writer(self, index: int) -> SlotWriter:
        return SlotWriter(self._memory, index * _SLOT_SIZE, self._batch, index * _BATCH_SLOT)

    def read(self, index: int) -> SlotView:
        start = index * _SLOT_SIZE
        memory = self._memory
        for attempt in range(_READ_SPINS + _READ_NAPS):
            before = _SEQ.unpack_from(memory, start)[0]
            raw = memory[start : start + _SLOT_SIZE]
            if before % 2 == 0 and _SEQ.unpack_from(memory, start)[0] == before:
                break
            if attempt >= _READ_SPINS:  # the writer was preempted mid-write: let it run, do not spin
                time.sleep(_READ_NAP_S)
        # else: a writer died mid-write (its sequence stays odd); the last copy is the best there is
        pid, booted_at = _HEAD.unpack_from(raw, _SEQ.size)
        last_poll, done, started, deadline, started_at, queue_index, entry, job, task = _JOB.unpack_from(
            raw, _SEQ.size + _HEAD.size
        )
        return SlotView(
            pid, booted_at, last_poll, done, started, deadline, started_at, queue_index,
            _text(entry), _text(job), _text(task),
        )

    def progress(self, index: int) -> int | None:
        """How many jobs the worker in slot ``index`` has started, while it runs a batch
        (None between batches): the long-job watcher's sign of progress."""
        base = index * _BATCH_SLOT // 8
        return self._ints[base + _STARTED] if self._ints[base + _LENGTH] > 0 else None

    def running(self, index: int) -> tuple[int, str] | None:
        """(queue index, entry id) of the job the worker in slot ``index`` started last in
        its batch, None between batches. Exact once the worker is dead (the supervisor asks
        after reaping it); a live worker may be changing it."""
        base = index * _BATCH_SLOT // 8
        started, first, length, ids_length = (self._ints[base + field] for field in range(4))
        position = started - first - 1
        if not 0 <= position < length or not 0 < ids_length <= _IDS_BYTES:
            return None
        start = index * _BATCH_SLOT + 32
        ids = bytes(self._batch[start : start + ids_length]).split(b"\n")
        if position >= len(ids):
            return None
        return self._batch[start + _IDS_BYTES + position], ids[position].decode("utf-8", "replace")

    def close(self) -> None:
        self._ints.release()
        try:
            self._batch.close()
        except BufferError:  # a writer made in this process (tests) still views it: freed with it
            pass
        self._memory.close()


class SlotWriter:
    """The child's side: a few ``pack_into`` calls per batch (per job for jobs described)."""

    def __init__(self, memory: mmap.mmap, offset: int, batch: mmap.mmap, batch_offset: int) -> None:
        self._memory = memory
        self._offset = offset
        self._head_offset = offset + _SEQ.size
        self._job_offset = self._head_offset + _HEAD.size
        self._batch = batch
        self._batch_offset = batch_offset
        #: the worker stores its count of jobs started here, once per job: ``ints[started_at] = n``
        self.ints = memoryview(batch).cast("q")
        self.started_at = batch_offset // 8 + _STARTED
        self._sequence = _SEQ.unpack_from(memory, offset)[0]

    def _writing(self) -> None:
        self._sequence += 1  # odd: readers wait
        _SEQ.pack_into(self._memory, self._offset, self._sequence)

    def _written(self) -> None:
        self._sequence += 1  # even: the slot is whole again
        _SEQ.pack_into(self._memory, self._offset, self._sequence)

    def booted(self, pid: int) -> None:
        self.polled()
        self._writing()
        _HEAD.pack_into(self._memory, self._head_offset, pid, time.time())
        self._written()

    def polled(self) -> None:
        """Called before every read: the supervisor's proof that this worker is not hung."""
        self._writing()
        _POLL.pack_into(self._memory, self._job_offset, time.monotonic())
        self._written()

    def job_started(
        self, jobs_done: int, queue_index: int, entry_id: str, job_id: str, task: str, hard_limit_s: float | None
    ) -> None:
        now = time.monotonic()
        deadline = now + hard_limit_s if hard_limit_s else 0.0
        self._writing()
        _JOB.pack_into(
            self._memory, self._job_offset, now, jobs_done, now, deadline, time.time(), queue_index,
            entry_id.encode(), job_id.encode()[:64], task.encode()[:96],
        )
        self._written()

    def busy(self, jobs_done: int) -> None:
        """Running a batch (no job described, no deadline); counts as a poll."""
        now = time.monotonic()
        self._writing()
        _BUSY.pack_into(self._memory, self._job_offset, now, jobs_done, now, 0.0, time.time(), -1)
        self._written()

    def idle(self, jobs_done: int) -> None:
        """Idle again; counts as a poll, so a worker just out of a long job never looks hung."""
        self._writing()
        _DONE.pack_into(self._memory, self._job_offset, time.monotonic(), jobs_done, 0.0, 0.0)
        self._written()

    def batch_began(self, started: int, entry_ids: list[str], queue_indexes: bytes | None) -> None:
        """A batch is about to run, after ``started`` jobs so far: its entry ids (one write
        per batch). Then, per job, the worker stores its new count of jobs started in
        ``ints[started_at]``; if it dies, the supervisor finds the job it was running from
        the two, charges that one job a delivery and hands the rest back uncharged."""
        ints, base = self.ints, self._batch_offset // 8
        ints[base + _LENGTH] = 0  # invalid while it changes
        ids = "\n".join(entry_ids).encode()
        if len(ids) > _IDS_BYTES or len(entry_ids) > _MAX_BATCH:
            ints[base + _IDS_LENGTH] = 0  # cannot tell: nobody is charged
            return
        start = self._batch_offset + 32
        self._batch[start : start + len(ids)] = ids
        if queue_indexes is not None:  # one queue: all 0, as take() left them
            self._batch[start + _IDS_BYTES : start + _IDS_BYTES + len(queue_indexes)] = queue_indexes
        ints[base + _IDS_LENGTH] = len(ids)
        ints[base + _STARTED] = ints[base + _FIRST] = started
        ints[base + _LENGTH] = len(entry_ids)

    def batch_ended(self) -> None:
        self.ints[self._batch_offset // 8 + _LENGTH] = 0


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode("utf-8", "replace")
