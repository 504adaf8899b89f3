"""Run a worker in this test process until every queue has settled."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from qrun.maintenance import Maintenance
from qrun.queue import Queue
from qrun.worker import Worker


def drain(queues: Queue | Sequence[Queue], timeout_s: float = 10.0) -> Worker:
    """Work until nothing is ready, in flight or delayed; fail the test on timeout."""
    queues = [queues] if isinstance(queues, Queue) else list(queues)
    worker = Worker(queues, read_block_ms=50)
    worker.boot()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    maintenance = Maintenance(queues)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            maintenance.tick()
            if maintenance.idle.is_set():
                return worker
            time.sleep(0.01)
        raise AssertionError(f"queues did not settle within {timeout_s}s: {[q.stats() for q in queues]}")
    finally:
        worker.request_stop()
        thread.join(timeout=5)
