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
from functools import partial

# sequence | pid, booted_at (wall) | last_poll (monotonic), jobs_done, job_started (monotonic,
# 0 = idle), job_deadline (monotonic, 0 = none), job_started_at (wall), queue index, entry id,
# job id, task | running: queue index (-1 = none) and entry id of the job started last
_SEQ = struct.Struct("<Q")
_HEAD = struct.Struct("<qd")
_JOB = struct.Struct("<dQdddh48s64s96s")
_RUNNING = struct.Struct("<h48s")
_SLOT_SIZE = _SEQ.size + _HEAD.size + _JOB.size + _RUNNING.size
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
    #: (queue index, entry id) of the job this worker started last in its current batch;
    #: (-1, "") between batches. Written without the seqlock (one small write per job), so
    #: it is exact only once the worker is dead: the supervisor reads it after reaping.
    running_queue_index: int = -1
    running_entry_id: str = ""

    @property
    def busy(self) -> bool:
        return self.job_started > 0


class SlotTable:
    """``capacity`` slots in memory shared with every child forked after it was made."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._memory = mmap.mmap(-1, capacity * _SLOT_SIZE)  # anonymous + MAP_SHARED
        self._free = list(range(capacity - 1, -1, -1))

    def take(self) -> int:
        """Reserve a slot (cleared) for a worker about to be forked; IndexError when full."""
        index = self._free.pop()
        self._memory[index * _SLOT_SIZE : (index + 1) * _SLOT_SIZE] = bytes(_SLOT_SIZE)
        return index

    def give_back(self, index: int) -> None:
        self._free.append(index)

    def writer(self, index: int) -> SlotWriter:
        return SlotWriter(self._memory, index * _SLOT_SIZE)

    def read(self, index: int) -> SlotView:
        start = index * _SLOT_SIZE
        memory = self._memory
        for _ in range(10_000):  # a writer holds the slot for about a microsecond (longer when preempted)
            before = _SEQ.unpack_from(memory, start)[0]
            raw = memory[start : start + _SLOT_SIZE]
            if before % 2 == 0 and _SEQ.unpack_from(memory, start)[0] == before:
                break
        # else: a writer died mid-write (its sequence stays odd); the last copy is the best there is
        pid, booted_at = _HEAD.unpack_from(raw, _SEQ.size)
        last_poll, done, started, deadline, started_at, queue_index, entry, job, task = _JOB.unpack_from(
            raw, _SEQ.size + _HEAD.size
        )
        running_index, running_entry = _RUNNING.unpack_from(raw, _SEQ.size + _HEAD.size + _JOB.size)
        return SlotView(
            pid, booted_at, last_poll, done, started, deadline, started_at, queue_index,
            _text(entry), _text(job), _text(task), running_index, _text(running_entry),
        )

    def close(self) -> None:
        self._memory.close()


class SlotWriter:
    """The child's side: a few ``pack_into`` calls per batch (per job for jobs described)."""

    def __init__(self, memory: mmap.mmap, offset: int) -> None:
        self._memory = memory
        self._offset = offset
        self._head_offset = offset + _SEQ.size
        self._job_offset = self._head_offset + _HEAD.size
        self._running_offset = self._job_offset + _JOB.size
        self._pack_running = partial(_RUNNING.pack_into, memory, self._running_offset)
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
        self._pack_running(-1, b"")

    def running(self, queue_index: int, entry_id: bytes) -> None:
        """The job about to start (one write per job, no seqlock): if the worker dies now,
        this job, and only this one, is charged a delivery; the rest of its batch is handed
        back uncharged (see :mod:`qrun.recovery`)."""
        self._pack_running(queue_index, entry_id)


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode("utf-8", "replace")
