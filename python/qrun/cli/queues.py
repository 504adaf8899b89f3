"""Operator commands that look at queues without importing the app."""

from __future__ import annotations

import click

from .. import settings
from ..connection import resolve_url
from ..errors import ConfigurationError
from ..queue import Queue
from .options import url_option

prefix_option = click.option("--prefix", default=settings.DEFAULT_PREFIX, show_default=True, help="Key prefix.")


def _open(name: str, url: str | None, prefix: str) -> Queue:
    """The named queue, or a usage error that says what makes a valid name or URL."""
    try:
        return Queue(name, resolve_url(url), prefix=prefix)  # resolved now: a bad $QRUN_URL is a usage error
    except ConfigurationError as error:
        raise click.UsageError(str(error)) from None


@click.command()
@click.argument("names", nargs=-1, required=True, metavar="QUEUE...")
@url_option
@prefix_option
def stats(names: tuple[str, ...], url: str | None, prefix: str) -> None:
    """Print job counts for each queue: ready, in flight, delayed, dead and lifetime totals."""
    queues = [_open(name, url, prefix) for name in names]
    columns = ["ready", "in_flight", "delayed", "dead", "enqueued", "succeeded", "retried", "redelivered", "dead_lettered", "cancelled", "requeued"]
    counted = []
    for queue in queues:  # every count first, so a server that fails leaves no half table
        counted.append((queue.name, queue.stats()))
        queue.close()
    click.echo("queue".ljust(20) + "".join(column.rjust(14) for column in columns))
    for name, counts in counted:
        click.echo(name.ljust(20) + "".join(str(counts[column]).rjust(14) for column in columns))
