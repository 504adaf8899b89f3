"""Enqueue a few jobs, then run `qrun --burst tasks:queue` in this folder to work them off."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tasks import charge, queue, send_email

job = send_email.enqueue(to="a@example.com", subject="welcome")
print("enqueued", job.id)

send_email.enqueue_in(1.0, to="a@example.com", subject="a second later")
send_email.enqueue_at(datetime.now(timezone.utc) + timedelta(seconds=2), to="a@example.com", subject="at a time")

ids = queue.enqueue_many(charge, [{"order_id": n, "amount_cents": 100 * n} for n in range(1, 1001)])
print(f"enqueued {len(ids)} charges in a few round trips")

try:
    send_email.enqueue(to="a@example.com", subject=object())  # refused here, not on a worker
except TypeError as error:
    print("refused:", error)

print(queue.stats())
