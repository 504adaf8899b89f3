from __future__ import annotations

from django import forms
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from shop.orders import place_order


class CheckoutForm(forms.Form):
    email = forms.EmailField()
    total_cents = forms.IntegerField(min_value=1, max_value=100_000_000)


@csrf_exempt  # an API endpoint for curl; a form page in a browser would keep CSRF protection
@require_POST
def checkout(request: HttpRequest) -> JsonResponse:
    """POST email=…&total_cents=… → 201 {"order": id}, the receipt job queued on commit;
    bad input → 400 {"errors": {field: [message, …]}} and nothing saved or queued."""
    form = CheckoutForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": {field: list(messages) for field, messages in form.errors.items()}}, status=400)
    order = place_order(form.cleaned_data["email"], form.cleaned_data["total_cents"])
    return JsonResponse({"order": order.pk}, status=201)
