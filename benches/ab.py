"""Two qrun installs, A B A B, end to end on one server: did a change cost throughput?

    python -m benches.ab OLD_PYTHON NEW_PYTHON [--workers 8] [--jobs 200000] [--rounds 7]
                         [--old-options '...'] [--new-options '...']

Each round fills the queue with JOBS no-op jobs, then times ``qrun --workers W --burst``
run by each interpreter (its own qrun install) until it exits, alternating which goes
first. Prints each side's median jobs/s, the CPU each side's supervisor and workers used
per job, the server's CPU per job (Linux), and NEW/OLD per pair with its median: the figure
to quote, since pairs share the machine's state.

The same interpreter twice with different ``--new-options`` (qrun options, one shell-quoted
string, given as ``--new-options='--log-format json'``) A/Bs a flag instead of a change.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import time
from pathlib import Path

import qrun
from qrun.embedded import EmbeddedValkey

ROOT = Path(__file__).resolve().parents[1]


def _server_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().split()
    except OSError:
        return 0.0
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--old-options", default="", help="extra qrun options of the old side")
    parser.add_argument("--new-options", default="", help="extra qrun options of the new side")
    options = parser.parse_args()
    sides = {"old": options.old, "new": options.new}
    extra = {"old": shlex.split(options.old_options), "new": shlex.split(options.new_options)}
    rates: dict[str, list[float]] = {side: [] for side in sides}
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    server_cpu: dict[str, list[float]] = {side: [] for side in sides}
    server = EmbeddedValkey().start()
    try:
        env = {**os.environ, "QRUN_URL": server.url, "PYTHONPATH": str(ROOT)}
        for round_ in range(options.rounds):
            order = list(sides.items()) if round_ % 2 == 0 else list(reversed(sides.items()))
            for side, python in order:
                with qrun.Queue("bench", server.url) as queue:
                    queue.purge()
                    queue.ensure_group()
                    queue.enqueue_many("bench.nothing", [() for _ in range(options.jobs)])
                before, server_before = resource.getrusage(resource.RUSAGE_CHILDREN), _server_cpu_s(server.process.pid)
                started = time.perf_counter()
                subprocess.run(
                    [python, "-m", "qrun", "--log-level", "WARNING", *extra[side], "--workers", str(options.workers),
                     "--burst", "benches.apps.noop_app:queue"],
                    env=env, cwd=ROOT, check=True, timeout=600,
                )
                rates[side].append(options.jobs / (time.perf_counter() - started))
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                cpu[side].append(used / options.jobs * 1e6)
                server_cpu[side].append((_server_cpu_s(server.process.pid) - server_before) / options.jobs * 1e6)
    finally:
        server.stop()
    for side in sides:
        print(f"{side}: median {statistics.median(rates[side]):,.0f} jobs/s "
              f"({', '.join(f'{rate:,.0f}' for rate in rates[side])}); "
              f"qrun CPU {statistics.median(cpu[side]):.2f} µs/job, server CPU {statistics.median(server_cpu[side]):.2f} µs/job")
    ratios = [new / old for new, old in zip(rates["new"], rates["old"])]
    print(f"new/old per pair: median {statistics.median(ratios):.3f} ({', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
