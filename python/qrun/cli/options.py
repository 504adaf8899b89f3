"""Options several commands share, defined once so their names and help never drift apart."""

from __future__ import annotations

import click

url_option = click.option(
    "--url", default=None, help="Server URL (default: $QRUN_URL, else redis://127.0.0.1:6379/0)."
)
