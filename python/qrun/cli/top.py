"""``qrun top``: queues, tasks and workers live, refreshed in place (qrun.top; needs the
``top`` extra: rich)."""

from __future__ import annotations

import json

import click

from ..connection import make_client, resolve_url
from ..errors import ConfigurationError
from ..metrics import MetricsError, require
from .options import DURATION, OneLineError, url_option
from .queues import json_option, prefix_option


@click.command()
@click.option("-q", "--queue", "queue_names", multiple=True, metavar="QUEUE", help="Queues to show (default: every queue).")
@click.option("--interval", type=DURATION, default=1.0, show_default=True, help="Seconds between frames.")
@click.option("--once", is_flag=True, help="Print one frame (rates over one interval) and exit.")
@json_option
@url_option
@prefix_option
def top(queue_names: tuple[str, ...], interval: float, once: bool, as_json: bool, url: str | None, prefix: str) -> None:
    """Live: per queue and task jobs/s, in flight, failures, latency; workers. Ctrl+C to leave."""
    import time

    from .. import top as view

    if not as_json:  # --json needs no drawing
        try:
            require("rich", "top", "qrun top")
        except MetricsError as error:
            raise OneLineError(str(error)) from None
    if interval <= 0:
        raise OneLineError("--interval must be > 0", exit_code=2)
    try:
        resolved = resolve_url(url)
        client = make_client(resolved)
    except ConfigurationError as error:
        raise click.UsageError(str(error)) from None
    names = list(queue_names) or None
    try:
        before = view.snapshot(client, resolved, prefix, names)
        if once or as_json:
            time.sleep(interval)
            frame = view.rates(before, view.snapshot(client, resolved, prefix, names))
            if as_json:
                click.echo(json.dumps(frame))
            else:
                from rich.console import Console

                Console().print(view.render(frame))
            return
        from rich.live import Live

        with Live(refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(interval)
                after = view.snapshot(client, resolved, prefix, names)
                live.update(view.render(view.rates(before, after)))
                before = after
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
