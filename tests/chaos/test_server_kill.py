"""The server is SIGKILLed during enqueue and processing, and restarted on the same port
from its append-only file: every enqueue that returned is processed, and the same worker
processes carry on (they reconnect; nobody restarts them)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

import qrun
from qrun.embedded import EmbeddedValkey
from tests.chaos import chaos_tasks
from tests.supervisors import Supervisors, wait_until


@pytest.fixture
def durable_server() -> Iterator[EmbeddedValkey]:
    """A server of this test's own, with appendonly yes and appendfsync always."""
    server = EmbeddedValkey(appendonly=True).start()
    data_dir = server.data_dir
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


def test_every_returned_enqueue_is_processed_across_a_server_kill_and_workers_resume(
    durable_server: EmbeddedValkey,
    supervisors: Supervisors,
    lines: Callable[[str], list[str]],
    report: Callable[..., None],
    tmp_path: Path,
) -> None:
    url = durable_server.url
    supervisors.env = {**supervisors.env, "QRUN_URL": url}
    producer_queue = qrun.Queue("chaos", url)  # enqueues by task name, as another service would
    returned: list[int] = []
    failed: list[int] = []
    stop_producing = threading.Event()

    def produce() -> None:
        n = 0
        while not stop_producing.is_set() and n < 20_000:
            try:
                producer_queue.enqueue("tests.chaos.chaos_tasks.mark", n, 0.0005)
                returned.append(n)
            except redis.RedisError:
                failed.append(n)
                time.sleep(0.01)
            n += 1
            time.sleep(0.0005)

    started = time.monotonic()
    supervisor = supervisors.start("--workers", "2")
    workers_before = {p.pid for p in supervisors.wait_for_count(supervisor, 2)}
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        wait_until(lambda: len(lines("done.txt")) >= 300, 30, "processing to get going")
        durable_server.stop(kill=True, keep_data=True)  # SIGKILL, mid-enqueue and mid-processing
        time.sleep(1.0)
        restarted = EmbeddedValkey(port=durable_server.port, data_dir=str(durable_server.data_dir), appendonly=True)
        restarted.start()
        durable_server.process = restarted.process  # so the fixture stops it
        time.sleep(2.0)  # enqueue and process on the restarted server for a while
    finally:
        stop_producing.set()
        producer.join(timeout=10)
        producer_queue.close()

    wanted = {str(n) for n in returned}
    wait_until(lambda: wanted <= set(lines("done.txt")), 60, "every returned enqueue to be processed", poll_s=0.2)
    seconds = time.monotonic() - started
    workers_after = {p.pid for p in supervisors.workers(supervisor)}

    done = lines("done.txt")
    report(enqueued=len(returned), enqueue_errors=len(failed), kills=1,
           lost=len(wanted - set(done)), duplicates=len(done) - len(set(done)),
           worker_restarts=len(workers_before - workers_after), seconds=f"{seconds:.1f}")
    assert failed, "the kill should have interrupted at least one enqueue"
    assert workers_after == workers_before, supervisors.log()
    assert "reconnected" in supervisors.log()
    chaos_tasks.queue.close()
