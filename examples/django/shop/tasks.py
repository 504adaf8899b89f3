"""The shop's background jobs. Workers, from the project folder: `qrun --workers 2 shop.tasks:queue`.

The worker's supervisor imports this module once, before forking its workers, so Django is set
up here: the settings module defaults to mysite.settings (as in manage.py), and every worker
starts with the app registry ready and no database connection open yet.
"""

from __future__ import annotations

import os

import django

import qrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django.setup()  # idempotent; a no-op when the web process already set Django up

from django.db import close_old_connections  # noqa: E402 - after setup()

from shop.models import Order  # noqa: E402 - models load after setup()

queue = qrun.Queue("shop")


@queue.task(retries=5, backoff_base=2.0)
def send_receipt(order_id: int) -> None:
    close_old_connections()  # a worker lives long: drop a connection the database timed out
    order = Order.objects.get(pk=order_id)  # enqueued on commit, so the row is there
    if order.receipt_sent:  # delivery is at-least-once: a redelivered job sends nothing twice
        return
    print(f"receipt for order {order.pk}: {order.total_cents} cents to {order.email}")
    Order.objects.filter(pk=order.pk).update(receipt_sent=True)
