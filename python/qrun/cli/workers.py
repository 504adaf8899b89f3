"""``qrun workers``: the supervisors and worker processes that are alive right now.

Reads the presence records supervisors refresh every few seconds (see ``qrun.presence``):
one key per supervisor, so it is an operator command, not something to poll per job.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from ..connection import make_client, redact, resolve_url
from ..errors import ConfigurationError
from ..presence import alive
from .options import url_option
from .queues import json_option, prefix_option

_COLUMNS = ("host", "supervisor", "worker", "queues", "up", "jobs", "current")


@click.command()
@json_option
@url_option
@prefix_option
def workers(as_json: bool, url: str | None, prefix: str) -> None:
    """List the live supervisors and their workers: uptime, jobs done, the job each one runs."""
    try:
        resolved = resolve_url(url)
        client = make_client(resolved)
    except ConfigurationError as error:
        raise click.UsageError(str(error)) from None
    try:
        records = alive(client, prefix)
    except ConfigurationError as error:  # a bad --prefix
        raise click.UsageError(str(error)) from None
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(records))
        return
    if not records:
        click.echo(f"no qrun supervisors are alive on {redact(resolved)} (prefix {prefix!r})")
        return
    for line in format_workers(records, time.time_ns() // 1_000_000):
        click.echo(line)


def format_workers(records: list[dict[str, Any]], now_ms: int) -> list[str]:
    """The table: per supervisor a header line, then one aligned row per worker process."""
    blocks: list[tuple[str, list[tuple[str, ...]]]] = []
    for record in records:
        host, pid = str(record.get("host", "?")), str(record.get("pid", "?"))
        queues = ",".join(str(queue) for queue in record.get("queues") or []) or "-"
        members = [worker for worker in record.get("workers") or [] if isinstance(worker, dict)]
        heartbeat = _ms(record.get("heartbeat_at_ms"))
        header = (
            f"supervisor {pid} on {host}: queues {queues}, up {_age(record.get('started_at_ms'), now_ms)}, "
            f"{len(members)} worker{'s' if len(members) != 1 else ''}, "
            f"heartbeat {human_duration(max(0, now_ms - heartbeat) / 1000) if heartbeat else '?'} ago"
        )
        rows: list[tuple[str, ...]] = [
            (host, pid, str(worker.get("pid", "?")), queues, _age(worker.get("started_at_ms"), now_ms),
             str(worker.get("jobs_done", "?")), _current(worker, now_ms))
            for worker in members
        ]
        blocks.append((header, rows))
    every_row = [_COLUMNS, *(row for _, rows in blocks for row in rows)]
    widths = [max(len(row[column]) for row in every_row) for column in range(len(_COLUMNS) - 1)]

    def line(row: tuple[str, ...]) -> str:
        return "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]

    lines = []
    for header, rows in blocks:
        lines.append(header)
        if rows:
            lines.append(line(_COLUMNS))
            lines.extend(line(row) for row in rows)
        else:
            lines.append("  (no workers running)")
    return lines


def human_duration(seconds: float) -> str:
    """``0.4s``, ``45s``, ``12m 5s``, ``3h 12m``, ``2d 4h``: two units at most."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _ms(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _age(since_ms: object, now_ms: int) -> str:
    since = _ms(since_ms)
    return human_duration(max(0, now_ms - since) / 1000) if since else "?"


def _current(worker: dict[str, Any], now_ms: int) -> str:
    job_id = worker.get("job_id")
    if not job_id:
        if worker.get("job_started_at_ms"):  # busy with a batch of fast jobs (none described)
            return f"a batch of fast jobs, for {_age(worker.get('job_started_at_ms'), now_ms)}"
        return "idle"
    queue = f" ({worker['queue']})" if worker.get("queue") else ""
    return f"{worker.get('task') or '?'} {job_id}{queue} running for {_age(worker.get('job_started_at_ms'), now_ms)}"
