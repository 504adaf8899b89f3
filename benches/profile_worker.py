"""Where a qrun worker's time goes: ``python -m benches.profile_worker [JOBS] [--results] [--cumulative]``.

``--results`` runs the no-op job of the results-on app (benches.apps.qrun_results_app: every
job's record and outcome kept) instead of the results-off one; ``--cumulative`` sorts by
cumulative time (the top 30) instead of own time (the top 14).

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
    numbers = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    jobs = int(numbers[0]) if numbers else 50_000
    keep_results = "--results" in sys.argv[1:]
    directory = tempfile.mkdtemp(prefix="qrun-profile-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
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
        worker = Worker([app.queue], read_block_ms=10)
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
        kind = "results on" if keep_results else "results off"
        print(f"{jobs:,} jobs ({kind}) in {elapsed:.2f}s under cProfile = {jobs / elapsed:,.0f} jobs/s (one worker)\n")
        if "--cumulative" in sys.argv[1:]:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        else:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(14)
    finally:
        server.stop()
        for entry in os.scandir(directory):
            os.unlink(entry.path)
        os.rmdir(directory)


if __name__ == "__main__":
    main()
