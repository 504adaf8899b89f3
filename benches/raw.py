"""The raw Redis limit, measured from the same Python on the same server.

No framework: the same six fields qrun writes, sent as plainly as Python allows. These are
the ceilings qrun's figures are divided by.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import uuid
from urllib.parse import urlsplit

import redis

STREAM = "{raw:bench}:stream"
GROUP = "workers"


def job_fields() -> dict[str, str]:
    return {
        "id": uuid.uuid4().hex, "task": "bench.noop", "args": "[]", "kwargs": "{}",
        "attempt": "1", "enqueued_at": str(time.time_ns() // 1_000_000),
    }


def xadd_round_trips(url: str, count: int) -> list[float]:
    """One XADD per round trip through redis-py: seconds per call."""
    client = redis.Redis.from_url(url)
    client.xadd(STREAM, job_fields())  # connect outside the timing
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        client.xadd(STREAM, job_fields())
        latencies.append(time.perf_counter() - started)
    client.close()
    return latencies


def xadd_pipelined(url: str, count: int, batch: int = 1000) -> float:
    """redis-py pipelines of ``batch`` XADDs: seconds for ``count`` entries."""
    client = redis.Redis.from_url(url)
    client.ping()
    started = time.perf_counter()
    for start in range(0, count, batch):
        with client.pipeline(transaction=False) as pipe:
            for _ in range(min(batch, count - start)):
                pipe.xadd(STREAM, job_fields())
            pipe.execute()
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed


def _resp(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


def xadd_server_bound(url: str, count: int, chunk: int = 1000) -> float:
    """Pre-built RESP for ``count`` XADDs written to a raw socket while a thread counts the
    replies: seconds from the first byte sent to the last reply read. Building the
    commands is not timed: this is what the server can take, not what Python can build."""
    parts = urlsplit(url)
    commands = [
        _resp(b"XADD", STREAM.encode(), b"*", *[piece for pair in job_fields().items() for piece in (pair[0].encode(), pair[1].encode())])
        for _ in range(count)
    ]
    chunks = [b"".join(commands[start : start + chunk]) for start in range(0, count, chunk)]
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    replies_needed = 2 * count  # each XADD reply is "$n\r\n<id>\r\n"
    seen = 0

    def read_replies() -> None:
        nonlocal seen
        deadline = time.monotonic() + 120
        while seen < replies_needed and time.monotonic() < deadline:
            data = sock.recv(1 << 20)
            if not data:
                return
            if b"-" in data[:1]:
                raise RuntimeError(data[:200].decode(errors="replace"))
            seen += data.count(b"\r\n")

    reader = threading.Thread(target=read_replies)
    started = time.perf_counter()
    reader.start()
    for block in chunks:
        sock.sendall(block)
    reader.join(timeout=130)
    elapsed = time.perf_counter() - started
    sock.close()
    if seen < replies_needed:
        raise RuntimeError(f"server-bound XADD: {seen // 2} of {count} replies")
    return elapsed


class RawProbe:
    """Latency probes as plain XADDs for the raw runner (its floor for enqueue-to-start)."""

    name = "raw: XADD + minimal runner"

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)

    def prepare(self) -> None:
        self.client.delete(STREAM)
        self.client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)

    def enqueue_probe(self, sent_at: float) -> None:
        fields = job_fields()
        fields.update(task="bench.probe", args=f"[{sent_at!r}]")
        self.client.xadd(STREAM, fields)

    def worker_command(self, workers: int) -> list[str]:
        return consumer_command(workers)

    def close(self) -> None:
        self.client.close()


def result_key(job_id: bytes | str) -> bytes:
    """Where the minimal runner LPUSHes a ``bench.echo`` job's return value."""
    return b"{raw:bench}:result:" + (job_id if isinstance(job_id, bytes) else job_id.encode())


class RawResults:
    """The result round trip's floor: one XADD, the minimal runner LPUSHes the return value,
    the caller BLPOPs it (no record, no TTL, no outcome JSON)."""

    name = "raw: XADD + minimal runner + BLPOP"
    note = ""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)

    def prepare(self) -> None:
        self.client.delete(STREAM)
        self.client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)

    def worker_command(self, workers: int) -> list[str]:
        return consumer_command(workers)

    def round_trip(self, value: int, timeout_s: float) -> object:
        fields = job_fields()
        fields.update(task="bench.echo", args=f"[{value}]")
        self.client.xadd(STREAM, fields)
        reply = self.client.blpop([result_key(fields["id"])], timeout=timeout_s)
        if reply is None:
            raise TimeoutError(f"raw: no result within {timeout_s}s")
        return json.loads(reply[1])

    def close(self) -> None:
        self.client.close()


def fill_for_consumer(url: str, count: int) -> None:
    client = redis.Redis.from_url(url)
    client.delete(STREAM)
    client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    xadd_pipelined(url, count)
    client.close()


def consumer_command(processes: int, *, decode: bool = True) -> list[str]:
    return [sys.executable, "-m", "benches.raw_consumer", str(processes), *([] if decode else ["--no-decode"])]
