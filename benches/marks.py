"""What every benchmarked job does, whatever system runs it: leave one mark, nothing more.

A job appends one byte to a file of its own process under ``$BENCH_MARK_DIR`` (a tmpfs
folder under /dev/shm); the harness counts completions by summing file sizes. Every system
pays exactly this, so completion detection costs them all the same. A latency probe
appends the 8-byte delay between its ``sent_at`` (time.time() at enqueue) and its start.
"""

from __future__ import annotations

import os
import struct
import time

_fds: dict[str, int] = {}


def _fd(kind: str) -> int:
    key = f"{kind}-{os.getpid()}"
    fd = _fds.get(key)
    if fd is None:  # opened on first use in each process (workers are forked)
        path = os.path.join(os.environ["BENCH_MARK_DIR"], f"{kind}.{os.getpid()}")
        fd = _fds[key] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    return fd


def mark() -> None:
    """The no-op job's whole body."""
    os.write(_fd("done"), b"x")


def mark_latency(sent_at: float) -> None:
    """A latency probe's body: record how long after enqueue it started."""
    os.write(_fd("latency"), struct.pack("d", time.time() - float(sent_at)))


def count_done(directory: str) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(directory) if entry.name.startswith("done."))


def read_latencies(directory: str) -> list[float]:
    values: list[float] = []
    for entry in os.scandir(directory):
        if entry.name.startswith("latency."):
            with open(entry.path, "rb") as handle:
                data = handle.read()
            values += [value for (value,) in struct.iter_unpack("d", data[: len(data) // 8 * 8])]
    return values
