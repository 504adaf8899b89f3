"""Operator commands that look at queues without importing the app."""

from __future__ import annotations

import click

from .. import settings
from ..errors import ConfigurationError
from ..queue import Queue


@click.command()
@click.argument("names", nargs=-1, required=True, metavar="QUEUE...")
@click.option("--url", default=None, help="Server URL (default: $QRUN_URL, else redis://127.0.0.1:6379/0).")
@click.option("--prefix", default=settings.DEFAULT_PREFIX, show_default=True, help="Key prefix.")
def stats(names: tuple[str, ...], url: str | None, prefix: str) -> None:
    """Print job counts for each queue: ready, in flight, delayed, dead and lifetime totals."""
    try:
        queues = [Queue(name, url, prefix=prefix) for name in names]
    except ConfigurationError as error:
        raise click.UsageError(str(error)) from None
    columns = ["ready", "in_flight", "delayed", "dead", "enqueued", "succeeded", "retried", "dead_lettered"]
    click.echo("queue".ljust(20) + "".join(column.rjust(14) for column in columns))
    for queue in queues:
        counts = queue.stats()
        click.echo(queue.name.ljust(20) + "".join(str(counts[column]).rjust(14) for column in columns))
