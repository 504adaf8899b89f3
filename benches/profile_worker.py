"""Where a qrun worker's time goes: ``python -m benches.profile_worker [JOBS]``.

Starts a valkey-server, enqueues JOBS no-op jobs, runs one Worker in this process under
cProfile until every job is marked, and prints the top functions by own time. One process,
so the server's share shows up as time waiting in ``recv_into``.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import tempfile
import time

from qrun.embedded import EmbeddedValkey


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    directory = tempfile.mkdtemp(prefix="qrun-profile-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.environ["BENCH_MARK_DIR"] = directory
    server = EmbeddedValkey().start()
    os.environ["QRUN_URL"] = server.url
    try:
        from qrun.worker import Worker

        from benches import marks
        from benches.apps import qrun_app

        qrun_app.queue.enqueue_many(qrun_app.noop, [()] * jobs)
        worker = Worker([qrun_app.queue], read_block_ms=10)
        worker.boot()
        run_batch = worker._run_batch  # noqa: SLF001 - stop the loop once every job is marked

        def run_batch_then_check(batch: list[tuple[object, ...]]) -> None:
            run_batch(batch)
            if marks.count_done(directory) >= jobs:
                worker.request_stop()

        worker._run_batch = run_batch_then_check  # type: ignore[method-assign]  # noqa: SLF001
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.runcall(worker.run)
        elapsed = time.perf_counter() - started
        print(f"{jobs:,} jobs in {elapsed:.2f}s under cProfile = {jobs / elapsed:,.0f} jobs/s (one worker)\n")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(14)
    finally:
        server.stop()
        for entry in os.scandir(directory):
            os.unlink(entry.path)
        os.rmdir(directory)


if __name__ == "__main__":
    main()
