"""``qrun run``: supervise worker processes for the queues of an app."""

from __future__ import annotations

import sys

import click
import redis

from .. import settings
from ..app_loader import load_queues
from ..connection import redact
from ..errors import ConfigurationError
from ..supervisor import Supervisor


@click.command()
@click.argument("targets", nargs=-1, required=True, metavar="MODULE:QUEUE...")
@click.option("-w", "--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes to keep running.")
@click.option("--burst", is_flag=True, help="Exit 0 once nothing is ready, delayed or in flight.")
@click.option("--grace-period", default=settings.DEFAULT_GRACE_PERIOD_S, show_default=True,
              type=click.FloatRange(min=0), help="Seconds workers get to finish their jobs on TERM/INT.")
def run(targets: tuple[str, ...], workers: int, burst: bool, grace_period: float) -> None:
    """Run workers for the queue(s) named by MODULE:ATTRIBUTE (e.g. app:queue)."""
    try:
        queues = [queue for target in targets for queue in load_queues(target)]
        supervisor = Supervisor(queues, workers=workers, burst=burst, grace_period_s=grace_period)
    except ConfigurationError as error:
        raise click.UsageError(str(error)) from None
    try:
        sys.exit(supervisor.run())
    except redis.ConnectionError as error:
        urls = ", ".join(sorted({redact(queue.url) for queue in queues}))
        raise click.ClickException(f"cannot reach the server at {urls}: {error}") from None
