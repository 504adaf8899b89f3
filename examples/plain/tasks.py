"""A queue and its tasks. Workers import this module: `qrun --workers 2 tasks:queue`."""

from __future__ import annotations

import qrun

queue = qrun.Queue("emails", retries=3, backoff_base=1.0, backoff_cap=60.0)


@queue.task
def send_email(to: str, subject: str) -> None:
    job = qrun.current_job()
    attempt = job.attempt if job else 1
    print(f"sending {subject!r} to {to} (attempt {attempt})")


@queue.task(retries=5)
def charge(order_id: int, amount_cents: int) -> None:
    if amount_cents <= 0:
        raise ValueError(f"order {order_id}: nothing to charge")  # retried, then dead-lettered
