"""Operator commands that look at queues without importing the app."""

from __future__ import annotations

import json
import sys

import click

from .. import admin, queue_settings, settings
from ..connection import redact, resolve_url
from ..errors import ConfigurationError
from ..queue import Queue
from .options import OneLineError, url_option

prefix_option = click.option("--prefix", default=settings.DEFAULT_PREFIX, show_default=True, help="Key prefix.")


def _open(name: str, url: str | None, prefix: str) -> Queue:
    """The named queue, or a usage error that says what makes a valid name or URL."""
    try:
        return Queue(name, resolve_url(url), prefix=prefix)  # resolved now: a bad $QRUN_URL is a usage error
    except ConfigurationError as error:
        raise click.UsageError(str(error)) from None


def open_existing(name: str, url: str | None, prefix: str) -> Queue:
    """The named queue if the server has any key of it (with the settings operators stored
    applied), else a one-line error naming the queues that exist: an admin verb never creates
    a queue by mistake."""
    queue = _open(name, url, prefix)
    if not admin.exists(queue):
        existing = admin.existing_queues(queue)
        queue.close()
        here = f"queues here: {', '.join(existing)}" if existing else "there are no queues here"
        raise OneLineError(f"no queue {name!r} under prefix {prefix!r} on {redact(queue.url)}: {here}")
    queue_settings.refresh(queue, quiet=True)
    return queue


def confirm(queue: Queue, question: str, yes: bool) -> None:
    """Ask ``question`` on a terminal; refuse in one line off one (a script must say --yes)."""
    if yes:
        return
    if not sys.stdin.isatty():
        queue.close()
        raise OneLineError(f"refusing to {question} without --yes (no terminal to ask on)")
    click.confirm(f"{question[0].upper()}{question[1:]}?", abort=True, err=True)


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


@click.command()
@click.argument("names", nargs=-1, required=True, metavar="QUEUE...")
@json_option
@url_option
@prefix_option
def stats(names: tuple[str, ...], as_json: bool, url: str | None, prefix: str) -> None:
    """Print job counts for each queue: ready, in flight, delayed, dead and lifetime totals."""
    queues = [_open(name, url, prefix) for name in names]
    columns = ["ready", "in_flight", "delayed", "dead", "enqueued", "succeeded", "retried", "redelivered", "dead_lettered", "cancelled", "requeued"]
    counted = []
    for queue in queues:  # every count first, so a server that fails leaves no half table
        counted.append((queue.name, queue.stats()))
        queue.close()
    if as_json:
        click.echo(json.dumps({name: counts for name, counts in counted}))
        return
    click.echo("queue".ljust(20) + "".join(column.rjust(14) for column in columns))
    for name, counts in counted:
        click.echo(name.ljust(20) + "".join(str(counts[column]).rjust(14) for column in columns))
