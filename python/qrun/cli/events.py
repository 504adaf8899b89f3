"""``qrun events``: tail job lifecycle events as they are published (see ``qrun.events``)."""

from __future__ import annotations

import json

import os
import signal
import sys
import time
from collections.abc import Generator
from contextlib import closing
from types import FrameType
from typing import Any

import click
import redis

from ..connection import make_client, redact, resolve_url
from ..errors import ConfigurationError
from ..events import TERMINAL_EVENTS, all_channel, decode_message, job_channel
from ..keys import validate_name
from .options import ServerError, url_option
from .queues import prefix_option

#: Width of the event column: the longest event name.
_EVENT_WIDTH = len("succeeded")

#: Printed on stderr once subscribed: events are off unless a queue asks (settings.DEFAULT_EVENTS).
NOTE = (
    "only queues created with qrun.Queue(..., events=True) publish events (off by default); "
    "jobs of other queues show only progress and cancellation here"
)


@click.command()
@click.option("--job", "job_id", default=None, metavar="ID",
              help="Only this job's events; exit after its last one (succeeded or dead) unless --follow.")
@click.option("--follow", is_flag=True, help="With --job: keep listening after the job's last event.")
@click.option("--count", default=None, type=click.IntRange(min=1), metavar="N", help="Exit after N events.")
@click.option("--timeout", default=None, type=click.FloatRange(min=0), metavar="SECONDS",
              help="Exit after this many seconds, whatever arrived.")
@url_option
@prefix_option
def events(
    job_id: str | None, follow: bool, count: int | None, timeout: float | None, url: str | None, prefix: str
) -> None:
    """Print job lifecycle events as they happen, one line each, until Ctrl+C or SIGTERM.

    Only queues created with events=True publish events (it is off by default). Events are
    pub/sub: only those published after this command subscribed are shown.
    """
    if follow and job_id is None:
        raise click.UsageError("--follow only applies with --job")
    if job_id is not None and not job_id:
        raise click.UsageError("--job needs a job id")
    try:
        prefix = validate_name("prefix", prefix)
        resolved = resolve_url(url)
    except ConfigurationError as error:
        raise click.UsageError(str(error)) from None
    channel = all_channel(prefix) if job_id is None else job_channel(prefix, job_id)
    client = make_client(resolved)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with closing(_receive(client, channel, resolved, timeout)) as received:  # unsubscribes on the way out
            for shown, event in enumerate(received, start=1):
                if not _echo(format_event(event)):
                    break
                if count is not None and shown >= count:
                    break
                if job_id is not None and not follow and event.get("event") in TERMINAL_EVENTS:
                    break
    except KeyboardInterrupt:  # Ctrl+C, or SIGTERM through _interrupt: a normal way to stop
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        client.close()


def _receive(client: redis.Redis, channel: str, url: str, timeout_s: float | None) -> Generator[dict[str, Any], None, None]:
    """Every event that arrives on ``channel`` until ``timeout_s`` runs out (if given).

    A server that cannot be reached raises ``redis.RedisError``, which the ``qrun`` group
    reports in one line. Once subscribed, says so on stderr, and that queues publish events
    only when created with ``events=True`` (supervisors' presence records do not say which
    queues do, so this cannot be checked here).
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(channel)
        click.echo(f"listening on {channel} at {redact(url)} (Ctrl+C to stop)", err=True)
        click.echo(NOTE, err=True)
        while True:
            wait = 1.0 if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                return
            try:
                message = pubsub.get_message(timeout=min(wait, 1.0))
            except redis.ConnectionError as error:
                raise ServerError(f"lost the connection to the server at {redact(url)}: {error}") from None
            if message is None or message.get("type") != "message":
                continue
            try:
                received = decode_message(message["data"])
            except ValueError:
                click.echo(f"skipped a message that is not a qrun event: {message['data']!r:.200}", err=True)
                continue
            yield from received
    finally:
        pubsub.close()


def format_event(event: dict[str, Any]) -> str:
    """``HH:MM:SS.mmm  event  queue  task  job-id  attempt N`` then error, delay or reason (local time)."""
    at_ms = event.get("at_ms")
    if isinstance(at_ms, int) and not isinstance(at_ms, bool) and at_ms >= 0:
        when = time.strftime("%H:%M:%S", time.localtime(at_ms // 1000)) + f".{at_ms % 1000:03d}"
    else:
        when = "??:??:??.???"
    parts = [
        when,
        str(event.get("event", "?")).ljust(_EVENT_WIDTH),
        str(event.get("queue", "?")),
        str(event.get("task", "?")),
        str(event.get("job", "?")),
        f"attempt {event.get('attempt', '?')}",
    ]
    if event.get("delay_s") is not None:
        delay = event["delay_s"]
        parts.append(f"retry in {delay:g}s" if isinstance(delay, (int, float)) else f"retry in {delay}s")
    if event.get("error"):
        parts.append(f"error: {event['error']}")
    if event.get("reason"):
        parts.append(f"reason: {event['reason']}")
    if event.get("event") == "progress":
        fraction = event.get("progress")
        if isinstance(fraction, (int, float)) and not isinstance(fraction, bool):
            parts.append(f"{fraction:.0%}")
        if event.get("note"):
            parts.append(str(event["note"]))
        if event.get("fields"):
            parts.append(json.dumps(event["fields"], ensure_ascii=False))
    if event.get("event") == "cancelled":
        parts.append("interrupted while running" if event.get("interrupted") else "before it started")
    return "  ".join(parts)


def _echo(line: str) -> bool:
    """Print and flush one line; False once the reader went away (``| head``): stop quietly."""
    try:
        click.echo(line)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # so the interpreter's final flush does not fail again
        os.dup2(devnull, sys.stdout.fileno())
        return False
    return True


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
