"""Operator commands that look at queues without importing the app."""

from __future__ import annotations

from datetime import datetime, timezone

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
    columns = ["ready", "in_flight", "delayed", "dead", "enqueued", "succeeded", "retried", "redelivered", "dead_lettered", "cancelled"]
    counted = []
    for queue in queues:  # every count first, so a server that fails leaves no half table
        counted.append((queue.name, queue.stats()))
        queue.close()
    click.echo("queue".ljust(20) + "".join(column.rjust(14) for column in columns))
    for name, counts in counted:
        click.echo(name.ljust(20) + "".join(str(counts[column]).rjust(14) for column in columns))


@click.command()
@click.argument("name", metavar="QUEUE")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="How many, newest first.")
@click.option("--traceback", "show_traceback", is_flag=True, help="Print each job's traceback too.")
@url_option
@prefix_option
def dead(name: str, limit: int, show_traceback: bool, url: str | None, prefix: str) -> None:
    """Show the newest dead-lettered jobs of QUEUE: when, which job, why."""
    queue = _open(name, url, prefix)
    entries = queue.dead_letters(limit)
    if not entries:
        click.echo(f"no dead-lettered jobs in {name}")
    for entry in entries:
        when = _when(entry.get("dead_at", ""))
        failure = f"{entry['dead_error_type']}: {entry.get('dead_error', '')}" if entry.get("dead_error_type") else ""
        click.echo(f"{when}  {entry.get('id', '?')}  {entry.get('task', '?')}  attempt {entry.get('attempt', '?')}")
        click.echo(f"    reason: {entry.get('dead_reason', '?')}")
        if failure:
            click.echo(f"    error:  {failure}")
        click.echo(f"    args:   {entry.get('args', '')}  kwargs: {entry.get('kwargs', '')}")
        if show_traceback and entry.get("dead_traceback"):
            click.echo("    " + entry["dead_traceback"].rstrip().replace("\n", "\n    "))
    queue.close()


def _when(dead_at_ms: str) -> str:
    if not dead_at_ms.isdigit():
        return "?"
    return datetime.fromtimestamp(int(dead_at_ms) / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
