"""``qrun job ID`` and ``qrun cancel ID...``: follow and stop jobs from the shell.

Both find the job's queue themselves (``--queue`` skips the search) and call the same
functions as ``job.status()``, ``job.result()`` and ``job.cancel()`` (qrun.lifecycle).

Exit codes of ``qrun job``: 0 succeeded (or, without ``--wait``, the status was shown), 1 dead,
3 cancelled, 4 not settled within ``--timeout``, 5 no such job; 2 is a usage error.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any

import click

from ..connection import make_client, resolve_url
from ..errors import ConfigurationError, JobNotFound, JobTimeout
from ..keys import validate_job_id
from ..lifecycle import JobStatus, cancel as cancel_job, status as job_status
from ..lifecycle.status import find_job, queue_names
from ..lifecycle.waiting import wait_outcome
from ..queue import Queue
from .options import url_option
from .queues import _open, prefix_option

EXIT = {"succeeded": 0, "dead": 1, "cancelled": 3}
EXIT_TIMEOUT = 4
EXIT_UNKNOWN = 5

queue_option = click.option("-q", "--queue", "queue_name", metavar="QUEUE", default=None,
                            help="The job's queue (default: look in every queue under the prefix).")


def _queues(url: str | None, prefix: str, name: str | None) -> list[Queue]:
    if name is not None:
        return [_open(name, url, prefix)]
    try:
        client = make_client(resolve_url(url))
    except ConfigurationError as error:
        raise click.UsageError(str(error)) from None
    try:
        names = queue_names(client, prefix)
    finally:
        client.close()
    return [_open(found, url, prefix) for found in names]


def _locate(job_id: str, url: str | None, prefix: str, name: str | None) -> Queue:
    try:
        validate_job_id(job_id)
    except ConfigurationError as error:
        raise click.UsageError(str(error)) from None
    queues = _queues(url, prefix, name)
    try:
        return queues[0] if name is not None else find_job(queues, job_id)
    except ConfigurationError as error:
        raise click.UsageError(str(error)) from None


@click.command()
@click.argument("job_id", metavar="ID")
@queue_option
@click.option("--wait", is_flag=True, help="Block until the job settles; the exit code says how it ended.")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="With --wait: give up after this long (exit 4).")
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
@url_option
@prefix_option
def job(job_id: str, queue_name: str | None, wait: bool, timeout: float | None, as_json: bool,
        url: str | None, prefix: str) -> None:
    """Show a job's status: state, attempts, times, worker, progress, result or error.

    Exit codes: 0 succeeded (without --wait: shown), 1 dead, 3 cancelled, 4 timed out, 5 unknown id.
    """
    try:
        queue = _locate(job_id, url, prefix, queue_name)
        if wait:
            try:
                wait_outcome(queue, job_id, timeout, look_first=True)
            except JobTimeout as error:
                click.echo(str(error), err=True)
                _show(job_status(queue, job_id), as_json)
                sys.exit(EXIT_TIMEOUT)
        current = job_status(queue, job_id)
    except JobNotFound as error:
        click.echo(str(error), err=True)
        sys.exit(EXIT_UNKNOWN)
    _show(current, as_json)
    if wait:
        sys.exit(EXIT.get(current.state, 0))


@click.command()
@click.argument("job_ids", nargs=-1, required=True, metavar="ID...")
@queue_option
@url_option
@prefix_option
def cancel(job_ids: tuple[str, ...], queue_name: str | None, url: str | None, prefix: str) -> None:
    """Cancel jobs: a queued or delayed one never runs; a running one gets JobCancelled raised
    inside it (killed after the grace period if it goes on).

    Exit code: 0 if every job was cancelled (or is being cancelled), 1 if one had already
    settled, 5 if one is unknown.
    """
    status = 0
    for job_id in job_ids:
        try:
            queue = _locate(job_id, url, prefix, queue_name)
            done = cancel_job(queue, job_id)
        except JobNotFound as error:
            click.echo(str(error), err=True)
            status = max(status, EXIT_UNKNOWN)
            continue
        click.echo(str(done))
        if not done.done:
            status = max(status, 1)
    sys.exit(status)


def _when(at_ms: int | None) -> str:
    if at_ms is None:
        return "-"
    return datetime.fromtimestamp(at_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _show(status: JobStatus, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(status.to_dict(), ensure_ascii=False, default=str))
        return
    lines: list[tuple[str, Any]] = [("state", status.state), ("queue", status.queue), ("task", status.task or "?")]
    if status.attempt is not None:
        lines.append(("attempt", status.attempt if status.deliveries is None else f"{status.attempt} (delivery {status.deliveries})"))
    lines += [("enqueued", _when(status.enqueued_at_ms))]
    if status.due_at_ms is not None:
        lines.append(("due", _when(status.due_at_ms)))
    if status.started_at_ms is not None:
        lines.append(("started", _when(status.started_at_ms)))
    if status.finished_at_ms is not None:
        lines.append(("finished", _when(status.finished_at_ms)))
    if status.worker:
        lines.append(("worker", status.worker))
    if status.progress is not None or status.progress_note or status.progress_fields:
        shown = f"{status.progress:.0%}" if status.progress is not None else ""
        extra = json.dumps(status.progress_fields, ensure_ascii=False) if status.progress_fields else ""
        lines.append(("progress", "  ".join(part for part in (shown, status.progress_note or "", extra) if part)))
    if status.cancel_requested and status.state != "cancelled":
        lines.append(("cancel", "requested: the job is being stopped"))
    if status.state == "cancelled" and status.interrupted is not None:
        lines.append(("cancelled", "while running" if status.interrupted else "before it ran"))
    if status.has_result:
        lines.append(("result", json.dumps(status.result, ensure_ascii=False)))
    if status.last_error and status.state not in ("succeeded", "dead"):
        lines.append(("last error", status.last_error))
    if status.reason:
        lines.append(("reason", status.reason))
    if status.error and status.error.get("type"):
        lines.append(("error", f"{status.error['type']}: {status.error.get('message', '')}"))
    click.echo(f"job {status.id}")
    for name, value in lines:
        click.echo(f"  {name + ':':<11} {value}")
    if status.error and status.error.get("traceback"):
        click.echo("  traceback:")
        click.echo("    " + status.error["traceback"].rstrip().replace("\n", "\n    "))
