"""Placing an order: the row and its job, in that order."""

from __future__ import annotations

from django.db import transaction

from shop.models import Order
from shop.tasks import send_receipt


def place_order(email: str, total_cents: int) -> Order:
    """Save the order, and enqueue its receipt once the transaction has committed.

    Enqueuing inside the transaction could let a worker look for the row before it exists
    (or after a rollback removed it); on_commit runs only once the row is there for everyone.
    """
    with transaction.atomic():
        order = Order.objects.create(email=email, total_cents=total_cents)
        transaction.on_commit(lambda: send_receipt.enqueue(order_id=order.pk))
    return order
