"""Smoke check of the peer adapters: ``python -m benches.check_peers [peer ...]``.

For each peer (all four unless named), on one embedded valkey-server flushed between peers:
2000 no-op jobs filled (its rate is shown, not a benchmark figure), 2 worker processes started,
the time until all 2000 are marked done (bounded at 120 s; shown with and without worker
start-up), then one latency probe round trip (bounded at 30 s). One line per peer; exits
non-zero if any failed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback

from qrun.embedded import EmbeddedValkey

from . import harness, marks
from .systems.base import System
from .systems.celery import Celery
from .systems.dramatiq import Dramatiq
from .systems.huey import Huey
from .systems.rq import RQ

PEERS: list[type[System]] = [RQ, Dramatiq, Celery, Huey]
JOBS = 2000
WORKERS = 2
DRAIN_TIMEOUT_S = 120.0
PROBE_TIMEOUT_S = 30.0


def check(cls: type[System], url: str) -> tuple[bool, str]:
    harness.flush(url)
    system = cls(url)
    try:
        with harness.mark_dir() as directory:
            started = time.perf_counter()
            system.fill(JOBS)
            fill_s = time.perf_counter() - started
            log = os.path.join(tempfile.gettempdir(), f"check-peers-{cls.name}.log")
            workers = harness.Workers(system.worker_command(WORKERS), harness.worker_env(url, directory), log)
            try:
                started = time.perf_counter()
                harness.wait_until(lambda: marks.count_done(directory) > 0 or not workers.alive(), DRAIN_TIMEOUT_S, 0.005)
                first_at, first_done = time.perf_counter(), marks.count_done(directory)
                remaining_s = max(0.0, DRAIN_TIMEOUT_S - (first_at - started))
                drained = harness.wait_until(
                    lambda: marks.count_done(directory) >= JOBS or not workers.alive(), remaining_s, 0.005
                )
                finished_at = time.perf_counter()
                elapsed = finished_at - started
                done = marks.count_done(directory)
                if not drained or done < JOBS:
                    why = "workers exited" if not workers.alive() else f"timeout {DRAIN_TIMEOUT_S:.0f}s"
                    return False, f"{done}/{JOBS} done ({why}); log {log}:\n{workers.tail()}"
                rate = JOBS / elapsed  # includes worker start-up, as the workers start after the fill
                steady = (JOBS - first_done) / max(finished_at - first_at, 1e-9)  # from the first job done on
                system.enqueue_probe(time.time())
                if not harness.wait_until(lambda: marks.read_latencies(directory), PROBE_TIMEOUT_S, 0.005):
                    return False, f"{rate:,.0f} jobs/s but no latency probe in {PROBE_TIMEOUT_S:.0f}s; log {log}"
                latency_ms = marks.read_latencies(directory)[0] * 1000
                return True, (
                    f"{system.version():<8} fill {JOBS / fill_s:7,.0f} jobs/s ({'bulk' if system.has_bulk else 'one by one'}), "
                    f"drain {rate:7,.0f} jobs/s ({elapsed:.2f}s incl. worker start; {steady:,.0f} jobs/s after the first job), "
                    f"probe {latency_ms:.1f} ms"
                )
            finally:
                workers.stop()
    finally:
        system.close()


def main(argv: list[str]) -> int:
    chosen = [cls for cls in PEERS if not argv or cls.name in argv]
    failed = 0
    server = EmbeddedValkey().start()
    try:
        for cls in chosen:
            try:
                ok, line = check(cls, server.url)
            except Exception:  # noqa: BLE001 - report and go on with the next peer
                ok, line = False, traceback.format_exc().strip()
            failed += not ok
            print(f"{cls.name:<9} {'ok  ' if ok else 'FAIL'} {line}", flush=True)
    finally:
        server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
