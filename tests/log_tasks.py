"""Tasks for the JSON-log test: one logs through the user's own logger, one fails.

The queue reads its URL from QRUN_URL at import, which the fixtures set.
"""

from __future__ import annotations

import logging

import qrun

queue = qrun.Queue("logs", retries=1, backoff_base=0.01, backoff_cap=0.02)

log = logging.getLogger("myapp.billing")


@queue.task
def greet(name: str) -> None:
    """Logs through the application's own logger, with an extra field."""
    log.info("charged %s", name, extra={"customer": name, "amount_cents": 1250})


@queue.task
def explode(message: str) -> None:
    """Logs a warning, then fails every attempt (so it retries once, then is dead-lettered)."""
    log.warning("about to fail: %s", message)
    raise RuntimeError(message)
