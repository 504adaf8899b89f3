"""``qrun queue create|update|list|info|purge|delete``, ``push``, ``pop``, ``ack``, ``extend``
and ``health``: operating queues without the app. Every verb calls :mod:`qrun.admin`,
:mod:`qrun.queue_settings` or :mod:`qrun.health`; this module parses, asks and prints.

Durations take ``30s``, ``15m``, ``1h``, ``7d`` (a bare number is seconds). Commands that
change data print what they did and exit non-zero when they did nothing they were asked to.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import click

from .. import admin, queue_settings
from ..errors import ConfigurationError, PayloadError
from ..health import check as health_check
from .options import DURATION, OneLineError, url_option
from .queues import _open, confirm, json_option, open_existing, prefix_option



def _settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The settings ``create`` and ``update`` take (stored in the server)."""
    for option in reversed([
        click.option("--visibility-timeout", type=DURATION, default=None, help="Seconds a delivered job stays hidden (e.g. 60s)."),
        click.option("--max-deliveries", type=click.IntRange(min=1), default=None, help="Deliveries without an ack before dead-lettering."),
        click.option("--dead-retention", default=None, metavar="DURATION|none", help="How long dead letters are kept (e.g. 7d; none: for ever)."),
        click.option("--retries", type=click.IntRange(min=0), default=None, help="Attempts after the first."),
        click.option("--backoff-base", type=DURATION, default=None, help="First retry delay."),
        click.option("--backoff-cap", type=DURATION, default=None, help="Longest retry delay."),
    ]):
        command = option(command)
    return command


def _values(**given: Any) -> dict[str, Any]:
    values = {name: value for name, value in given.items() if value is not None}
    if "dead_retention" in values:
        text = str(values["dead_retention"])
        if text.lower() == "none":
            values["dead_retention"] = None
        else:
            values["dead_retention"] = DURATION.convert(text, None, None)
    return values


@click.group()
def queue() -> None:
    """Create, change, list, inspect, purge and delete queues (settings live in the server)."""


@queue.command()
@click.argument("name", metavar="QUEUE")
@_settings_options
@url_option
@prefix_option
def create(name: str, url: str | None, prefix: str, **settings: Any) -> None:
    """Create QUEUE with its settings stored in the server (they win over the code's)."""
    target = _open(name, url, prefix)
    try:
        version = admin.create(target, _values(**settings))
    except ConfigurationError as error:
        raise OneLineError(str(error)) from None
    click.echo(f"created queue {name} (settings version {version}): {_describe(queue_settings.read(target)[1])}")


@queue.command()
@click.argument("name", metavar="QUEUE")
@_settings_options
@url_option
@prefix_option
def update(name: str, url: str | None, prefix: str, **settings: Any) -> None:
    """Change QUEUE's stored settings; running supervisors and workers apply them within seconds."""
    target = open_existing(name, url, prefix)
    values = _values(**settings)
    try:
        version = admin.update(target, values)
    except ConfigurationError as error:
        raise OneLineError(str(error)) from None
    click.echo(f"updated queue {name} (settings version {version}): {_describe(values)}")


@queue.command(name="list")
@json_option
@url_option
@prefix_option
def list_(as_json: bool, url: str | None, prefix: str) -> None:
    """List the queues that have keys on the server, with their counts."""
    probe = _open("probe", url, prefix)
    names = admin.existing_queues(probe)
    probe.close()
    rows = []
    for name in names:
        with _open(name, url, prefix) as each:
            rows.append({"queue": name, **each.stats(), "settings_version": queue_settings.read(each)[0]})
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo(f"no queues under prefix {prefix!r}")
        return
    columns = ["ready", "in_flight", "delayed", "dead", "settings_version"]
    click.echo("queue".ljust(24) + "".join(column.rjust(18) for column in columns))
    for row in rows:
        click.echo(str(row["queue"]).ljust(24) + "".join(str(row[column]).rjust(18) for column in columns))


@queue.command()
@click.argument("name", metavar="QUEUE")
@json_option
@url_option
@prefix_option
def info(name: str, as_json: bool, url: str | None, prefix: str) -> None:
    """Show QUEUE's settings (and where each comes from), counts, consumers and lag."""
    target = open_existing(name, url, prefix)
    shown = admin.info(target)
    target.close()
    if as_json:
        click.echo(json.dumps(shown))
        return
    click.echo(f"queue {name} (prefix {prefix}), settings version {shown['settings_version']}")
    for setting, value in shown["settings"].items():
        click.echo(f"  {setting:<20} {_shown(value['value']):<14} ({value['source']})")
    counts = shown["counts"]
    click.echo("  " + ", ".join(f"{key} {value}" for key, value in counts.items()))
    age = shown["oldest_ready_age_s"]
    click.echo(f"  consumers {shown['consumers']}, oldest ready job {'-' if age is None else f'{age:.1f}s old'}")


@queue.command()
@click.argument("name", metavar="QUEUE")
@click.option("--yes", is_flag=True, help="Do not ask.")
@url_option
@prefix_option
def purge(name: str, yes: bool, url: str | None, prefix: str) -> None:
    """Delete QUEUE's jobs (ready, in flight, delayed), dead letters and counters; keep its settings."""
    target = open_existing(name, url, prefix)
    counts = target.stats()
    confirm(target, f"purge queue {name} ({counts['ready'] + counts['in_flight']} in the stream, "
                    f"{counts['delayed']} delayed, {counts['dead']} dead)", yes)
    target.purge()
    click.echo(f"purged queue {name}: {counts['ready']} ready, {counts['in_flight']} in flight, "
               f"{counts['delayed']} delayed, {counts['dead']} dead removed")


@queue.command()
@click.argument("name", metavar="QUEUE")
@click.option("--force", is_flag=True, help="Delete even if jobs are waiting or running, without asking.")
@url_option
@prefix_option
def delete(name: str, force: bool, url: str | None, prefix: str) -> None:
    """Delete QUEUE and everything of it: jobs, dead letters, settings, records."""
    target = open_existing(name, url, prefix)
    counts = target.stats()
    live = counts["ready"] + counts["in_flight"] + counts["delayed"]
    if live and not force:
        target.close()
        raise OneLineError(f"queue {name} still has {live} job(s) waiting or running; --force deletes them too")
    confirm(target, f"delete queue {name} and all its keys", force)
    removed = admin.delete(target)
    click.echo(f"deleted queue {name}: {removed} key(s)")


@click.command()
@click.argument("name", metavar="QUEUE")
@click.argument("task")
@click.option("--args", "args_json", default="[]", metavar="JSON", help="Positional arguments, a JSON array.")
@click.option("--kwargs", "kwargs_json", default="{}", metavar="JSON", help="Keyword arguments, a JSON object.")
@click.option("--delay", type=DURATION, default=None, help="Start after this long (e.g. 30s).")
@url_option
@prefix_option
def push(name: str, task: str, args_json: str, kwargs_json: str, delay: float | None, url: str | None, prefix: str) -> None:
    """Enqueue one job of TASK (its full name, e.g. app.send_email) on QUEUE; prints its id."""
    args, kwargs = _json_argument("--args", args_json, list), _json_argument("--kwargs", kwargs_json, dict)
    target = open_existing(name, url, prefix)
    try:
        job = target.enqueue(task, *args, **kwargs) if delay is None else target.enqueue_in(delay, task, *args, **kwargs)
    except (ConfigurationError, PayloadError) as error:
        raise OneLineError(str(error), exit_code=2) from None
    click.echo(job.id)  # alone on stdout, so ID=$(qrun push ...) works
    if delay:
        click.echo(f"due in {delay:g}s", err=True)


def _json_argument(option: str, text: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise OneLineError(f"{option} is not valid JSON: {error}", exit_code=2) from None
    if not isinstance(value, kind):
        raise OneLineError(f"{option} must be a JSON {'array' if kind is list else 'object'}, got {text!r}", exit_code=2)
    return value


@click.command()
@click.argument("name", metavar="QUEUE")
@click.option("--count", type=click.IntRange(min=1, max=1000), default=1, show_default=True, help="Most jobs to take.")
@click.option("--visibility-timeout", type=DURATION, default=None,
              help="Keep them hidden this long (default: the queue's; a shorter one does not shorten it).")
@json_option
@url_option
@prefix_option
def pop(name: str, count: int, visibility_timeout: float | None, as_json: bool, url: str | None, prefix: str) -> None:
    """Take jobs to process by hand: each printed with its RECEIPT for ack / extend. Exit 1 if none."""
    target = open_existing(name, url, prefix)
    try:
        popped = admin.pop(target, count, visibility_timeout)
    except ConfigurationError as error:
        raise OneLineError(str(error), exit_code=2) from None
    if as_json:
        click.echo(json.dumps([{key: value for key, value in vars(job).items() if key != "raw"} for job in popped]))
    for job in [] if as_json else popped:
        until = datetime.fromtimestamp(job.hidden_until_ms / 1000, tz=timezone.utc).strftime("%H:%M:%S UTC")
        click.echo(f"receipt {job.receipt}  job {job.id}  {job.task}  attempt {job.attempt}  hidden until {until}")
        click.echo(f"    args: {json.dumps(job.args)}  kwargs: {json.dumps(job.kwargs)}")
    if not popped:
        if not as_json:
            click.echo(f"no ready job in {name}", err=True)
        sys.exit(1)


@click.command()
@click.argument("name", metavar="QUEUE")
@click.argument("receipts", nargs=-1, required=True, metavar="RECEIPT...")
@url_option
@prefix_option
def ack(name: str, receipts: tuple[str, ...], url: str | None, prefix: str) -> None:
    """Acknowledge jobs taken with pop: done, and deleted. Exit 1 if one was not pending."""
    target = open_existing(name, url, prefix)
    failed = 0
    for receipt in receipts:
        try:
            admin.ack(target, receipt)
            click.echo(f"acked {receipt}")
        except admin.ReceiptNotPending as error:
            click.echo(f"qrun: {error}", err=True)
            failed += 1
    if failed:
        sys.exit(1)


@click.command()
@click.argument("name", metavar="QUEUE")
@click.argument("receipt")
@click.argument("seconds", type=DURATION)
@url_option
@prefix_option
def extend(name: str, receipt: str, seconds: float, url: str | None, prefix: str) -> None:
    """Keep a popped (or running) job hidden SECONDS (e.g. 120 or 2m) from now."""
    target = open_existing(name, url, prefix)
    try:
        until_ms = admin.extend(target, receipt, seconds)
    except admin.ReceiptNotPending as error:
        raise OneLineError(str(error)) from None
    except ConfigurationError as error:
        raise OneLineError(str(error), exit_code=2) from None
    until = datetime.fromtimestamp(until_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    click.echo(f"extended {receipt}: hidden until {until}")


@click.command()
@click.option("-q", "--queue", "queue_names", multiple=True, metavar="QUEUE", help="A queue to check (repeatable; default: every queue).")
@click.option("--max-lag", type=DURATION, default=None, help="Fail if the oldest ready job waited longer (e.g. 60s).")
@click.option("--no-workers", is_flag=True, help="Do not require a live supervisor (a producer's readiness).")
@json_option
@url_option
@prefix_option
def health(queue_names: tuple[str, ...], max_lag: float | None, no_workers: bool, as_json: bool,
           url: str | None, prefix: str) -> None:
    """Exit 0 if the server answers, the queues have their group, a supervisor serves each and
    (with --max-lag) nothing waits too long; else exit 1, one line per failed check."""
    probe = _open("probe", url, prefix)
    names = list(queue_names)
    if not names:
        try:
            names = admin.existing_queues(probe)
        except Exception:  # the server check below says what is wrong
            names = []
    queues = [_open(name, url, prefix) for name in names] or [probe]
    checks = health_check(queues, max_lag, need_workers=not no_workers)
    if not names:
        checks = checks[:1]
    for opened in queues:
        opened.close()
    ok = all(result.ok for result in checks)
    if as_json:
        click.echo(json.dumps({"ok": ok, "checks": [vars(result) for result in checks]}))
    else:
        for result in checks:
            click.echo(f"{'ok  ' if result.ok else 'FAIL'}  {result.name}: {result.detail}", err=not result.ok)
    sys.exit(0 if ok else 1)


def _describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{name}={_shown(value)}" for name, value in values.items()) or "code defaults"


def _shown(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
