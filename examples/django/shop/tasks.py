"""The shop's background jobs. Workers: `qrun --workers 4 shop.tasks:queue`."""

from __future__ import annotations

import django

import qrun

django.setup()  # idempotent; lets tasks use the ORM when workers import this module

queue = qrun.Queue("shop")


@queue.task(retries=5, backoff_base=2.0)
def send_receipt(order_id: int) -> None:
    from shop.models import Order  # noqa: PLC0415 - models load after setup()

    order = Order.objects.get(pk=order_id)
    print(f"receipt for order {order.pk}")
