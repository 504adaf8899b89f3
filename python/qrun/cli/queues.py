"""Operator commands that look at queues without importing the app."""

from __future__ import annotations

from datetime import datetime, timezone

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
        queue.close()


@click.command()
@click.argument("name", metavar="QUEUE")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="How many, newest first.")
@click.option("--traceback", "show_traceback", is_flag=True, help="Print each job's traceback too.")
@click.option("--url", default=None, help="Server URL (default: $QRUN_URL, else redis://127.0.0.1:6379/0).")
@click.option("--prefix", default=settings.DEFAULT_PREFIX, show_default=True, help="Key prefix.")
def dead(name: str, limit: int, show_traceback: bool, url: str | None, prefix: str) -> None:
    """Show the newest dead-lettered jobs of QUEUE: when, which job, why."""
    try:
        queue = Queue(name, url, prefix=prefix)
    except ConfigurationError as error:
        raise click.UsageError(str(error)) from None
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
