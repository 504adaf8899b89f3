"""``qrun dead list|show|requeue|delete QUEUE``: dead-letter operations, without the app.

Every verb calls :mod:`qrun.deadletters`; this module only parses, asks and prints.
``qrun dead QUEUE [--limit N]`` (the form before the verbs existed) still works: it is
``qrun dead list QUEUE`` with a deprecation note on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import click

from .. import deadletters
from ..app_loader import load_queues
from ..errors import ConfigurationError, DeadLetterNotFound
from ..queue import Queue
from .options import DURATION, OneLineError, url_option
from .queues import confirm, open_existing, prefix_option


class _DeadGroup(click.Group):
    """``qrun dead QUEUE …`` (no verb) is routed to ``list``, with a deprecation note."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in {"--help", "-h"}:
            click.echo("qrun: 'qrun dead QUEUE' is deprecated; use 'qrun dead list QUEUE'", err=True)
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DeadGroup)
def dead() -> None:
    """Dead letters: list, show, requeue and delete them (QUEUE alone: deprecated, means list)."""


def _when(at_ms: str) -> str:
    if not at_ms.isdigit() or at_ms == "0":
        return "?"
    return datetime.fromtimestamp(int(at_ms) / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _error(letter: dict[str, str]) -> str:
    return f"{letter['dead_error_type']}: {letter.get('dead_error', '')}" if letter.get("dead_error_type") else ""


@dead.command("list")
@click.argument("name", metavar="QUEUE")
@click.option("--task", default=None, metavar="TASK", help="Only the dead letters of this task.")
@click.option("--since", "since_s", type=DURATION, default=None, metavar="DURATION",
              help="Only those dead-lettered in the last DURATION (30s, 15m, 1h, 7d).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="How many, newest first.")
@click.option("--traceback", "show_traceback", is_flag=True, help="Print each job's traceback too.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of objects (every field, as text).")
@url_option
@prefix_option
def list_(name: str, task: str | None, since_s: float | None, limit: int, show_traceback: bool, as_json: bool,
          url: str | None, prefix: str) -> None:
    """The newest dead letters of QUEUE: when, which entry and job, why."""
    queue = open_existing(name, url, prefix)
    letters = deadletters.list_dead(queue, task=task, since_s=since_s, limit=limit)
    queue.close()
    if as_json:
        click.echo(json.dumps(letters, ensure_ascii=False))
        return
    if not letters:
        click.echo(f"no dead-lettered jobs in {name}" + (f" of task {task}" if task else ""))
    for letter in letters:
        click.echo(f"{_when(letter.get('dead_at', ''))}  {letter['dead_id']}  {letter.get('id', '?')}  "
                   f"{letter.get('task', '?')}  attempt {letter.get('attempt', '?')}")
        click.echo(f"    reason: {letter.get('dead_reason', '?')}")
        if _error(letter):
            click.echo(f"    error:  {_error(letter)}")
        click.echo(f"    args:   {letter.get('args', '')}  kwargs: {letter.get('kwargs', '')}")
        if show_traceback and letter.get("dead_traceback"):
            click.echo("    " + letter["dead_traceback"].rstrip().replace("\n", "\n    "))


#: Fields ``show`` prints under their own label, in this order.
_SHOWN = [("id", "job"), ("task", "task"), ("attempt", "attempt"), ("args", "args"), ("kwargs", "kwargs"),
          ("dead_reason", "reason"), ("dead_entry_id", "was entry")]


@dead.command()
@click.argument("name", metavar="QUEUE")
@click.argument("ident", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (every field, as text).")
@url_option
@prefix_option
def show(name: str, ident: str, as_json: bool, url: str | None, prefix: str) -> None:
    """One dead letter of QUEUE with its traceback; ID is its dead entry id or its job id."""
    queue = open_existing(name, url, prefix)
    try:
        letter = deadletters.show(queue, ident)
    except DeadLetterNotFound as error:
        raise OneLineError(str(error)) from None
    finally:
        queue.close()
    if as_json:
        click.echo(json.dumps(letter, ensure_ascii=False))
        return
    click.echo(f"dead letter {letter['dead_id']} of {name}")
    rows = [(label, letter[key]) for key, label in _SHOWN if key in letter]
    rows[3:3] = [("enqueued", _when(letter.get("enqueued_at", ""))), ("died", _when(letter.get("dead_at", "")))]
    if _error(letter):
        rows.append(("error", _error(letter)))
    known = {key for key, _ in _SHOWN} | {"dead_id", "enqueued_at", "dead_at", "dead_error_type", "dead_error",
                                          "dead_traceback"}
    rows += [(key, value) for key, value in letter.items() if key not in known]  # deliveries, raw fields
    for label, value in rows:
        click.echo(f"  {label + ':':<11} {value}")
    if letter.get("dead_traceback"):
        click.echo("  traceback:")
        click.echo("    " + letter["dead_traceback"].rstrip().replace("\n", "\n    "))


def _selection(ids: tuple[str, ...], every: bool, task: str | None) -> str:
    """What the command was asked to act on, in words; a usage error unless exactly one way."""
    if sum((bool(ids), every, task is not None)) != 1:
        raise click.UsageError("name the dead letters: ID..., --all or --task TASK (exactly one)")
    if every:
        return "every dead letter"
    return f"the dead letters of task {task}" if task is not None else f"{len(ids)} dead letter(s)"


def _confirm(queue: Queue, what: str, verb: str, yes: bool) -> None:
    if not yes and what == "every dead letter":
        what = f"every dead letter ({queue.redis.xlen(queue.keys.dead)})"
    confirm(queue, f"{verb} {what} of {queue.name}", yes)


@contextmanager
def _progress(queue: Queue, ids: tuple[str, ...], label: str) -> Iterator[Callable[[int, deadletters.BulkResult], None]]:
    """A progress callback: click's bar on a terminal (length: the ids, or the dead stream)."""
    if not sys.stdout.isatty():
        yield lambda looked, result: None
        return
    length = len(ids) or int(queue.redis.xlen(queue.keys.dead))
    with click.progressbar(length=length, label=label) as bar:
        yield lambda looked, result: bar.update(looked)


def _run_bulk(queue: Queue, ids: tuple[str, ...], label: str, operation: Callable[..., deadletters.BulkResult],
              **options: Any) -> None:
    """Run ``operation`` with a progress bar, print what it did, exit 1 unless it did it all."""
    so_far = deadletters.BulkResult(label)
    with _progress(queue, ids, label) as progress:
        def on_batch(looked: int, result: deadletters.BulkResult) -> None:
            nonlocal so_far
            so_far = result
            progress(looked, result)

        try:
            result = operation(queue, ids, on_batch=on_batch, **options)
        except KeyboardInterrupt:
            click.echo(f"interrupted: {so_far.summary()} (the batch in flight, if any, was applied whole "
                       "or not at all); run the command again to finish", err=True)
            sys.exit(130)
        except ConfigurationError as error:
            raise OneLineError(str(error), exit_code=2) from None
        finally:
            queue.close()
    click.echo(result.summary())
    if not result.complete:
        sys.exit(1)


def _with_app_tasks(queue: Queue, app: str | None) -> Queue:
    """Give ``queue`` the tasks the app declares on its queue of the same name and prefix, so
    requeue knows which tasks are unique and how their claims are keyed."""
    if app is None:
        return queue
    try:
        loaded = load_queues(app)
    except ConfigurationError as error:
        raise click.UsageError(str(error)) from None
    for declared in loaded:
        if (declared.name, declared.prefix) == (queue.name, queue.prefix):
            queue.tasks.update(declared.tasks)
            return queue
    raise click.UsageError(f"{app} declares no queue {queue.name!r} with prefix {queue.prefix!r}")


@dead.command()
@click.argument("name", metavar="QUEUE")
@click.argument("ids", nargs=-1, metavar="[ID...]")
@click.option("--all", "every", is_flag=True, help="Every dead letter of QUEUE (asks first unless --yes).")
@click.option("--task", default=None, metavar="TASK", help="Every dead letter of this task.")
@click.option("--keep-attempts", is_flag=True, help="Keep each job's attempt number (default: start again at 1).")
@click.option("--app", default=None, metavar="MODULE:QUEUE",
              help="Import the app's queue to learn which tasks are unique (see docs/operations.md).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation (needed for --all off a terminal).")
@url_option
@prefix_option
def requeue(name: str, ids: tuple[str, ...], every: bool, task: str | None, keep_attempts: bool, app: str | None,
            yes: bool, url: str | None, prefix: str) -> None:
    """Move dead letters of QUEUE back onto its stream, atomically; ID is a dead entry id or a
    job id. Attempts start again at 1 unless --keep-attempts."""
    what = _selection(ids, every, task)
    queue = _with_app_tasks(open_existing(name, url, prefix), app)
    if every:
        _confirm(queue, what, "requeue", yes)
    _run_bulk(queue, ids, "requeued", deadletters.requeue, task=task, everything=every, keep_attempts=keep_attempts)


@dead.command()
@click.argument("name", metavar="QUEUE")
@click.argument("ids", nargs=-1, metavar="[ID...]")
@click.option("--all", "every", is_flag=True, help="Every dead letter of QUEUE.")
@click.option("--task", default=None, metavar="TASK", help="Every dead letter of this task.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation (needed off a terminal).")
@url_option
@prefix_option
def delete(name: str, ids: tuple[str, ...], every: bool, task: str | None, yes: bool, url: str | None,
           prefix: str) -> None:
    """Delete dead letters of QUEUE for good; ID is a dead entry id or a job id. Asks first
    unless --yes."""
    what = _selection(ids, every, task)
    queue = open_existing(name, url, prefix)
    _confirm(queue, what, "delete", yes)
    _run_bulk(queue, ids, "deleted", deadletters.delete, task=task, everything=every)
