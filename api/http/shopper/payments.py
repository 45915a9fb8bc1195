"""Payments seen from outside: Stripe's webhook (signature-verified, applied once) and the pay page a chat links to
(Stripe's Payment Element for the order's open payment)."""
from __future__ import annotations

import html
import json
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from api.deps import SessionDep, SettingsDep
from commerce.orders import service as orders
from commerce.payments import service as payments
from commerce.payments.providers import StripeProvider, provider_for
from kit.errors import NotFound

router = APIRouter(tags=["payments"])


def _script_value(value: str) -> str:
    """A JSON string safe inside <script> ("</script>" cannot close it)."""
    return json.dumps(value).replace("<", "\\u003c")


@router.post("/webhooks/stripe", summary="Stripe webhook (Stripe-Signature verified)",
             responses={400: {"description": "Missing or wrong Stripe-Signature: nothing changed."}})
async def stripe_webhook(request: Request, session: SessionDep, settings: SettingsDep) -> dict[str, str]:
    """Apply a Stripe event once: payment_intent.succeeded marks the order paid (if the amount and currency match
    it; otherwise the order is flagged for a person), a replay or a late event changes nothing."""
    secret = settings.payments.stripe_webhook_secret
    if secret is None:
        raise NotFound("Stripe webhooks are not enabled on this shop.", code="stripe_webhook_disabled")
    outcome = await payments.handle_stripe_webhook(session, payload=await request.body(),
                                                   signature=request.headers.get("Stripe-Signature"),
                                                   secret=secret.get_secret_value())
    return {"outcome": outcome}


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Pay order {number}</title>
<script src="https://js.stripe.com/v3/"></script>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}
button{{margin-top:1rem;padding:.7rem 1.2rem;font-size:1rem}}</style></head>
<body><h1>Order {number}</h1><p>{amount} {currency}</p>
<form id="pay"><div id="element"></div><button type="submit">Pay</button><p id="error" role="alert"></p></form>
<script>
const stripe = Stripe({key});
const elements = stripe.elements({{clientSecret: {secret}}});
elements.create("payment").mount("#element");
document.getElementById("pay").addEventListener("submit", async (e) => {{
  e.preventDefault();
  const {{error}} = await stripe.confirmPayment({{elements, confirmParams: {{return_url: location.href}}}});
  if (error) document.getElementById("error").textContent = error.message;
}});
</script></body></html>"""


@router.get("/pay/{public_ref}", response_class=HTMLResponse, include_in_schema=False)
async def pay_page(public_ref: Annotated[str, Path(max_length=40)], session: SessionDep,
                   settings: SettingsDep) -> HTMLResponse:
    """The Payment Element for the order's open Stripe payment (the link the chat sent)."""
    order = await orders.get_order_by_public_ref(session, public_ref=public_ref)
    payment = await payments.open_payment(session, order_id=order.id)
    if payment is None or payment.provider != "stripe" or not settings.payments.stripe_publishable_key:
        raise NotFound("This order has no open card payment.", code="no_open_payment")
    provider = provider_for("stripe", settings.payments)
    assert isinstance(provider, StripeProvider)
    secret = await provider.client_secret(payment.reference)
    return HTMLResponse(_PAGE.format(number=html.escape(order.number), amount=html.escape(str(payment.amount)),
                                     currency=html.escape(payment.currency),
                                     key=_script_value(settings.payments.stripe_publishable_key),
                                     secret=_script_value(secret)),
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
