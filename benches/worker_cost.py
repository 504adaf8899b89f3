"""What one qrun worker costs per job, with results off or on:
``python -m benches.worker_cost [JOBS] [--results]``.

Starts a valkey-server, enqueues JOBS no-op jobs (benches.apps.qrun_app, or with ``--results``
benches.apps.qrun_results_app, whose queue keeps every result), runs one Worker in this
process (no profiler) until every job is marked, and prints jobs/s, the worker's and the
server's CPU time per job, the batch sizes the worker chose and the server's busiest commands
(INFO commandstats). Bounded: the worker stops at JOBS marks or after 300 s.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time

import redis

from qrun.embedded import EmbeddedValkey

TIMEOUT_S = 300.0


def _server_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def main() -> None:
    numbers = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    jobs = int(numbers[0]) if numbers else 50_000
    keep_results = "--results" in sys.argv[1:]
    directory = tempfile.mkdtemp(prefix="qrun-cost-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.environ["BENCH_MARK_DIR"] = directory
    server = EmbeddedValkey().start()
    os.environ["QRUN_URL"] = server.url
    try:
        from qrun.worker import Worker

        from benches import marks

        if keep_results:
            from benches.apps import qrun_results_app as app
        else:
            from benches.apps import qrun_app as app  # type: ignore[no-redef]

        app.queue.enqueue_many(app.noop, [()] * jobs)
        client = redis.Redis.from_url(server.url)
        client.config_resetstat()
        worker = Worker([app.queue], read_block_ms=10)
        worker.boot()
        run_batch = worker._run_batch  # noqa: SLF001 - stop the loop once every job is marked
        batches: list[int] = []

        def run_batch_then_check(batch: list[tuple[object, ...]]) -> None:
            batches.append(len(batch))
            run_batch(batch)
            if marks.count_done(directory) >= jobs:
                worker.request_stop()

        worker._run_batch = run_batch_then_check  # type: ignore[method-assign]  # noqa: SLF001
        timer = threading.Timer(TIMEOUT_S, worker.request_stop)
        timer.start()
        cpu_before, server_before = time.process_time(), _server_cpu(client)
        started = time.perf_counter()
        worker.run()
        elapsed = time.perf_counter() - started
        cpu, server_cpu = time.process_time() - cpu_before, _server_cpu(client) - server_before
        timer.cancel()
        done = marks.count_done(directory)
        kind = "results on" if keep_results else "results off"
        print(f"{done:,} of {jobs:,} jobs ({kind}), one worker: {done / elapsed:,.0f} jobs/s")
        print(f"worker CPU {cpu / done * 1e6:.1f} µs/job, server CPU {server_cpu / done * 1e6:.1f} µs/job")
        print(f"{len(batches)} batches, {done / max(1, len(batches)):.0f} jobs per batch on average")
        stats = sorted(client.info("commandstats").items(), key=lambda item: -item[1]["usec"])
        for name, stat in stats[:8]:
            print(f"  {name.removeprefix('cmdstat_'):<12} {stat['calls']:>8} calls  {stat['usec'] / done:6.2f} µs/job  "
                  f"{stat['usec_per_call']:8.2f} µs/call")
        client.close()
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
