"""`python manage.py place_order a@example.com 1999`: what the checkout view does, from a shell."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from shop.orders import place_order


class Command(BaseCommand):
    help = "Place an order and queue its receipt (sent by `qrun shop.tasks:queue`)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("email")
        parser.add_argument("total_cents", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        order = place_order(options["email"], options["total_cents"])
        self.stdout.write(f"placed order {order.pk}; its receipt is queued")
