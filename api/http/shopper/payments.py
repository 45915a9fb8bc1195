"""Payments seen from outside: Stripe's webhook (signature-verified, applied once) and the pay page a chat links to
(Stripe's Payment Element for the order's open payment)."""
from __future__ import annotations

import html
import json
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import DatabaseDep, SessionDep, SettingsDep
from bot import i18n
from commerce.money import format_money
from commerce.orders import service as orders
from commerce.orders.models import Order
from commerce.payments import service as payments
from commerce.payments.errors import PaymentNotPossible, ProviderRefused, ProviderUnavailable
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
    it; otherwise the order is flagged for a person), a replay or a late event changes nothing. An event naming our
    payment for another order is answered 200 `wrong_order` (retrying cannot change it), recorded and logged."""
    secret = settings.payments.stripe_webhook_secret
    if secret is None:
        raise NotFound("Stripe webhooks are not enabled on this shop.", code="stripe_webhook_disabled")
    outcome = await payments.handle_stripe_webhook(session, payload=await request.body(),
                                                   signature=request.headers.get("Stripe-Signature"),
                                                   secret=secret.get_secret_value())
    return {"outcome": outcome}


_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
{stripe_js}
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:1.5rem auto;padding:0 1rem;color:#1d1d1f}}
h1{{font-size:1.4rem}} ul{{list-style:none;padding:0;margin:0}} li{{display:flex;justify-content:space-between;
gap:1rem;padding:.35rem 0;border-bottom:1px solid #e5e5ea}} .total{{font-weight:700;font-size:1.1rem}}
.due{{color:#6e6e73}} #element{{margin-top:1rem}} button{{margin-top:1rem;width:100%;padding:.8rem 1.2rem;
font-size:1rem;border:0;border-radius:.5rem;background:#0a58ca;color:#fff}} button[disabled]{{opacity:.6}}
.error{{color:#b00020}} a.retry{{display:inline-block;margin-top:1rem;padding:.7rem 1.2rem;background:#0a58ca;
color:#fff;border-radius:.5rem;text-decoration:none}}</style></head>
<body><main><h1>{title}</h1>
<section aria-label="{items_label}"><h2>{items_label}</h2><ul id="summary">{rows}</ul></section>
{body}</main></body></html>"""

_FORM = """<form id="pay" data-amount="{amount_minor}" data-currency="{currency}"><div id="element"></div>
<button type="submit" id="submit">{button}</button><p id="error" class="error" role="alert"></p></form>
<script>
const stripe = Stripe({key});
const elements = stripe.elements({{clientSecret: {secret}}});
elements.create("payment").mount("#element");
const button = document.getElementById("submit"), label = button.textContent;
document.getElementById("pay").addEventListener("submit", async (e) => {{
  e.preventDefault();
  if (button.disabled) return;  // a double click pays once
  button.disabled = true; button.textContent = {processing};
  document.getElementById("error").textContent = "";
  const {{error}} = await stripe.confirmPayment({{elements, confirmParams: {{return_url: location.href}}}});
  if (error) {{
    document.getElementById("error").textContent = {failed}.replace("{{reason}}", error.message || "");
    button.disabled = false; button.textContent = label;  // the shopper may try again
  }}
}});
</script>"""


def _locale(request: Request, lang: str | None) -> str:
    header = request.headers.get("accept-language", "").split(",", 1)[0].split(";", 1)[0]
    return i18n.supported_locale(lang) or i18n.supported_locale(header) or i18n.DEFAULT_LOCALE


def _rows(order: Order, locale: str) -> str:
    def money(amount: Decimal) -> str:
        return html.escape(format_money(amount, order.currency, locale))

    rows = [f"<li><span>{html.escape(line.title)} × {line.quantity}</span><span>{money(line.line_total)}</span></li>"
            for line in order.lines]
    parts = [("paypage.shipping", order.shipping), ("summary.insurance", order.insurance),
             ("summary.fees", order.fees), ("summary.duty", order.duties), ("summary.import_tax", order.taxes)]
    charged_on_delivery = order.due_on_delivery > 0
    for key, amount in parts:
        # DAP: duties, taxes and fees are the carrier's to collect, shown once as "due on delivery" below
        if amount > 0 and not (charged_on_delivery and key in ("summary.fees", "summary.duty", "summary.import_tax")):
            label, _, _ = i18n.t(locale, key, amount="\x00").partition("\x00")
            rows.append(f"<li><span>{html.escape(label.rstrip(': ：'))}</span><span>{money(amount)}</span></li>")
    pay_now, _, _ = i18n.t(locale, "paypage.pay_now", amount="\x00").partition("\x00")
    rows.append(f'<li class="total"><span>{html.escape(pay_now.rstrip(": ："))}</span>'
                f'<span id="pay-now">{money(order.total)}</span></li>')
    if charged_on_delivery:
        due = i18n.t(locale, "summary.due_on_delivery", amount=format_money(order.due_on_delivery, order.currency,
                                                                          locale), items="")
        rows.append(f'<li class="due"><span>{html.escape(due.strip())}</span></li>')
    return "".join(rows)


def _page(order: Order, locale: str, body: str, *, status: int = 200, stripe_js: bool = False) -> HTMLResponse:
    script = '<script src="https://js.stripe.com/v3/"></script>' if stripe_js else ""
    return HTMLResponse(_PAGE.format(lang=locale, title=html.escape(i18n.t(locale, "paypage.title",
                                                                              number=order.number)),
                                     items_label=html.escape(i18n.t(locale, "paypage.items")),
                                     rows=_rows(order, locale), body=body, stripe_js=script),
                        status_code=status, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _not_open(order: Order, locale: str) -> HTMLResponse:
    text = i18n.t(locale, "paypage.not_open", number=order.number, status=i18n.t(locale, f"status.{order.status}"))
    return _page(order, locale, f'<p class="error">{html.escape(text)}</p>', status=404)


@router.get("/pay/{public_ref}", response_class=HTMLResponse, include_in_schema=False)
async def pay_page(public_ref: Annotated[str, Path(max_length=40)], request: Request, database: DatabaseDep,
                   settings: SettingsDep, lang: Annotated[str | None, Query(max_length=20)] = None) -> HTMLResponse:
    """The order's summary and Stripe's Payment Element for its open payment (the link the chat sent).

    The payment is opened at Stripe here, outside any database transaction (complete_payment: bounded retries,
    one idempotency key). Stripe down or refusing: a page that says so with a retry link; the order stays
    pending and nothing was charged."""
    locale = _locale(request, lang)
    async with database.sessions() as session:
        order = await orders.get_order_by_public_ref(session, public_ref=public_ref)
        order = await orders.get_order(session, order_id=order.id)  # with its lines
        payment = await payments.open_payment(session, order_id=order.id)
    if payment is None or payment.provider != "stripe" or not settings.payments.stripe_publishable_key:
        return _not_open(order, locale)
    provider = provider_for("stripe", settings.payments)
    assert isinstance(provider, StripeProvider)
    try:
        payment = await payments.complete_payment(database, payment_id=payment.id, provider=provider)
        secret = await provider.client_secret(payment.reference)
    except (ProviderUnavailable, ProviderRefused):
        retry = html.escape(str(request.url))
        return _page(order, locale, f'<p class="error" role="alert">'
                     f'{html.escape(i18n.t(locale, "paypage.unavailable", number=order.number))}</p>'
                     f'<a class="retry" href="{retry}">{html.escape(i18n.t(locale, "paypage.retry"))}</a>',
                     status=503)
    except PaymentNotPossible:
        return _not_open(order, locale)
    form = _FORM.format(amount_minor=payments.charge_of(order).amount_minor, currency=html.escape(order.currency),
                        button=html.escape(i18n.t(locale, "paypage.button", amount=format_money(
                            payment.amount, payment.currency, locale))),
                        key=_script_value(settings.payments.stripe_publishable_key), secret=_script_value(secret),
                        processing=_script_value(i18n.t(locale, "paypage.processing")),
                        failed=_script_value(i18n.t(locale, "paypage.failed", reason="{reason}")))
    return _page(order, locale, form, stripe_js=True)
