"""``qrun run``: supervise worker processes for the queues of an app."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

import click

from .. import settings
from ..app_loader import AppLoader
from ..errors import ConfigurationError
from ..metrics import MetricsError
from ..supervisor import Supervisor
from .options import OneLineError, remember_servers


@click.command()
@click.argument("targets", nargs=-1, required=True, metavar="MODULE:QUEUE...")
@click.option("-w", "--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes to keep running.")
@click.option("--burst", is_flag=True, help="Exit 0 once nothing is ready, delayed or in flight.")
@click.option("--grace-period", default=settings.DEFAULT_GRACE_PERIOD_S, show_default=True,
              type=click.FloatRange(min=0), help="Seconds workers get to finish their jobs on TERM/INT.")
@click.option("--cancel-grace", default=settings.CANCEL_GRACE_S, show_default=True, type=click.FloatRange(min=0),
              metavar="SECONDS", help="Seconds a cancelled running job gets to stop before its worker is killed.")
@click.option("--max-jobs-per-worker", type=click.IntRange(min=1), default=None, metavar="N",
              help="Replace a worker after about N jobs (each gets up to 10% more, at random).")
@click.option("--max-memory-per-worker", type=click.IntRange(min=1), default=None, metavar="MIB",
              help="Replace a worker, between jobs, once its RSS passes about MIB mebibytes.")
@click.option("--hung-worker-timeout", type=float, default=settings.HUNG_WORKER_S, show_default=True,
              metavar="SECONDS", help="Replace an idle worker that has not polled the server for this long.")
@click.option("--metrics-port", type=click.IntRange(min=0, max=65535), default=None, metavar="PORT",
              help="Serve Prometheus metrics on http://HOST:PORT/metrics (needs: pip install 'qrun[metrics]').")
@click.option("--metrics-host", default="0.0.0.0", show_default=True, metavar="HOST",
              help="The address --metrics-port listens on.")
def run(
    targets: tuple[str, ...],
    workers: int,
    burst: bool,
    grace_period: float,
    cancel_grace: float,
    max_jobs_per_worker: int | None,
    max_memory_per_worker: int | None,
    hung_worker_timeout: float,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run workers for the queue(s) named by MODULE:ATTRIBUTE (e.g. app:queue).

    Signals: TERM/INT stop gracefully (a second one stops at once), QUIT stops at once,
    HUP reloads the app's code into new workers, TTIN/TTOU add/remove a worker.

    qrun's --log-level and --log-format may be given here too (see qrun --help).
    """
    if os.getpid() == 1:
        # PID 1 (a container with no init): the kernel drops any signal PID 1 has no handler
        # for, so a TERM (`docker stop`, a pod deleted) while the app is still importing would
        # be lost, and the orchestrator would wait out its whole grace period before SIGKILL.
        # Until the supervisor installs its own handlers (graceful stop), a TERM ends qrun as
        # it ends any other process: no worker exists yet, so there is nothing to drain.
        signal.signal(signal.SIGTERM, _exit_on_term)
    loader = AppLoader(targets)
    try:
        queues = loader.load()
        supervisor = Supervisor(
            queues,
            workers=workers,
            burst=burst,
            grace_period_s=grace_period,
            cancel_grace_s=cancel_grace,
            max_jobs_per_worker=max_jobs_per_worker,
            max_memory_per_worker_mb=max_memory_per_worker,
            hung_worker_s=hung_worker_timeout,
            reload=loader.reload,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
        )
    except MetricsError as error:  # the extra is missing or the port cannot be bound: one line, nothing started
        raise OneLineError(str(error)) from None
    except ConfigurationError as error:
        raise click.UsageError(str(error)) from None
    remember_servers(queue.url for queue in queues)  # named if they cannot be reached
    sys.exit(supervisor.run())


def _exit_on_term(signum: int, _frame: FrameType | None) -> None:
    """Stop a qrun that is still starting, with the status a shell gives a TERMed process."""
    raise SystemExit(128 + signum)
