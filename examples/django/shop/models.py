from __future__ import annotations

from django.db import models


class Order(models.Model):
    email = models.EmailField()
    total_cents = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    receipt_sent = models.BooleanField(default=False)  # set by the send_receipt job

    def __str__(self) -> str:
        return f"order {self.pk} ({self.email}, {self.total_cents} cents)"
