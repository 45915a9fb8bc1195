"""Paying and refunding in real Chromium (desktop and 390 px), against the served app, localstripe and a SQLite file.

- `/pay/{ref}`: Stripe.js cannot load here, so ONLY in this test a stand-in script is served at Stripe's URL by route
  interception; what is checked is the page's own behaviour: the order summary, amount and currency, a declined
  card shows the reason and lets the shopper try again, a double click confirms once, Stripe down shows a clear
  message with a retry link (order still pending), and the retry works once Stripe is back.
- The back office: the owner signs in, opens an order paid through localstripe (signed webhook), refunds one unit
  of one line, sees the refund and the new amounts; localstripe has the refund; the shopper is told (the worker's
  handler queues the message on the chat where the order was placed).
Screenshots go to test-artifacts/checkout-*.png."""
from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.app import create_app
from api.migrations import upgrade
from api.workers.payments import outbox_handlers
from bot import handoff
from bot.conversations.service import get_or_create_conversation
from commerce.checkout import service as checkout
from commerce.checkout.schemas import CartLineIn
from commerce.orders import service as orders
from commerce.payments import service as payments
from commerce.payments.providers import StripeProvider
from kit.clock import clock
from kit.db import Database
from kit.outbox import OutboxEvent
from kit.settings import Settings
from tests.commerce.checkout.conftest import NOW, WEBHOOK_SECRET, localstripe, make_checkout_shop, signed
from tests.commerce.checkout.test_payments import event, pay_at_stripe, stripe_client
from tests.conftest import run_in_thread
from tests.e2e.test_backoffice import ARTIFACTS, DESKTOP, PASSWORD, PHONE, browser
from tests.http import served_in_thread

pytestmark = pytest.mark.slow
__all__ = ["browser", "localstripe"]

# The stand-in for https://js.stripe.com/v3/ (test only): Stripe(key).elements({clientSecret}).create("payment")
# .mount(el) draws a field; confirmPayment() is declined the first time, then succeeds; every call is counted.
STRIPE_STAND_IN = """
window.__stripe = {key: null, secret: null, confirms: 0};
window.Stripe = function (key) {
  window.__stripe.key = key;
  return {
    elements(options) {
      window.__stripe.secret = options.clientSecret;
      return {create() { return {mount(selector) {
        const field = document.createElement("input");
        field.setAttribute("aria-label", "Card number"); field.value = "4242 4242 4242 4242";
        document.querySelector(selector).appendChild(field);
      }}; }};
    },
    async confirmPayment() {
      window.__stripe.confirms += 1;
      await new Promise((done) => setTimeout(done, 300));
      if (window.__stripe.confirms === 1) return {error: {message: "Your card was declined."}};
      return {};
    },
  };
};
"""


async def _prepare(url: str) -> None:
    database = Database(url)
    try:
        await upgrade(database.engine)
        await make_checkout_shop(database)
        async with database.unit_of_work() as session:
            await handoff.agents.create_agent(session, email="olga@shop.test", name="Olga", role="owner",
                                              password=PASSWORD)
    finally:
        await database.dispose()


@pytest.fixture
def served(tmp_path: Path, localstripe: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Settings, str]]:
    monkeypatch.setattr(clock, "now", lambda: NOW)  # the test shop's exchange rates are from that day
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    run_in_thread(_prepare(url))
    settings = Settings(environment="test", database={"url": url},
                        security={"secret_key": "test-secret-key-0123456789"},
                        payments={"stripe_secret_key": "sk_test_local", "stripe_webhook_secret": WEBHOOK_SECRET,
                                  "stripe_api_base": localstripe, "stripe_publishable_key": "pk_test_local",
                                  "public_url": "http://shop.invalid"})
    with served_in_thread(create_app(settings), name="checkout-pages", start_timeout=120) as base_url:
        yield base_url, settings, url


async def _stripe_order(url: str, settings: Settings, *, sender: str, quantity: int = 2) -> tuple[int, str]:
    """An order placed in a Telegram chat (DE, EUR) with its Stripe payment saved (not yet opened at Stripe)."""
    database = Database(url)
    try:
        cart = [CartLineIn(sku="TEE-1", quantity=quantity), CartLineIn(sku="HOOD-RED-M", quantity=1)]
        async with database.unit_of_work() as session:
            conversation = await get_or_create_conversation(session, channel="telegram", sender_id=sender)
            summary = await checkout.summarize(session, lines=cart, country="DE", currency="EUR")
            order, _ = await checkout.place_order(session, digest=summary.digest, lines=cart, country="DE",
                                                  currency="EUR", channel="telegram",
                                                  external_id=f"chat:{conversation.id}:1", expires_in_minutes=60)
            assert settings.payments.stripe_api_base is not None
            provider = StripeProvider(secret_key="sk_test_local", pay_page_url=settings.payments.public_url,
                                      api_base=settings.payments.stripe_api_base)
            await payments.start_payment(session, order_id=order.id, provider=provider)
            return order.id, order.public_ref
    finally:
        await database.dispose()


async def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"checkout-{name}.png"), full_page=True)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_the_pay_page(browser: Any, served: tuple[str, Settings, str], viewport: dict[str, int]) -> None:
    base, settings, url = served
    order_id, ref = await _stripe_order(url, settings, sender=f"payer-{viewport['width']}")
    context = await browser.new_context(viewport=viewport, locale="en-US")
    requested: list[str] = []

    async def stand_in(route: Any) -> None:
        requested.append(route.request.url)
        await route.fulfill(status=200, content_type="application/javascript", body=STRIPE_STAND_IN)

    await context.route("https://js.stripe.com/**", stand_in)
    page = await context.new_page()
    # Stripe down: a clear message and a retry link; nothing charged, the order still pending.
    up = settings.payments.stripe_api_base
    settings.payments.stripe_api_base = "http://127.0.0.1:9"
    try:
        down = await page.goto(f"{base}/pay/{ref}")
        assert down is not None
        assert down.status == 503
        assert "The payment service did not answer" in await page.inner_text("[role=alert]")
        await _shot(page, f"pay-down-{viewport['width']}")
    finally:
        settings.payments.stripe_api_base = up
    await page.click("a.retry")
    await page.wait_for_selector("#pay button")
    assert requested == ["https://js.stripe.com/v3/"]
    summary = await page.inner_text("#summary")
    assert "Tee × 2" in summary
    assert "Hoodie × 1" in summary
    database = Database(url)
    try:
        async with database.sessions() as session:
            order = await orders.get_order(session, order_id=order_id)
            payment = await payments.open_payment(session, order_id=order_id)
    finally:
        await database.dispose()
    assert payment is not None
    assert payment.status == "pending"  # opened at Stripe by the page
    pay_now = await page.inner_text("#pay-now")
    assert pay_now == f"€{order.total:,.2f}"
    assert await page.inner_text("#pay button") == f"Pay €{order.total:,.2f}"
    assert await page.get_attribute("#pay", "data-currency") == "EUR"
    assert await page.get_attribute("#pay", "data-amount") == str(int(order.total * 100))
    state = await page.evaluate("window.__stripe")
    assert state["key"] == "pk_test_local"
    assert state["secret"].startswith(f"{payment.reference}_secret_")
    # A double click confirms once; the declined card's reason is shown and the button comes back for a retry.
    await page.dblclick("#pay button")
    await page.wait_for_function("document.querySelector('#error').textContent.length > 0")
    assert "Your card was declined." in await page.inner_text("#error")
    assert await page.evaluate("window.__stripe.confirms") == 1
    assert await page.is_enabled("#pay button")
    await _shot(page, f"pay-declined-{viewport['width']}")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"]  # nothing runs off a phone's screen
    await page.click("#pay button")
    await page.wait_for_function("window.__stripe.confirms === 2")
    assert await page.inner_text("#error") == ""
    await context.close()


async def test_the_owner_refunds_one_line_of_a_stripe_order(browser: Any, served: tuple[str, Settings, str],
                                                            localstripe: str) -> None:
    base, settings, url = served
    order_id, _ = await _stripe_order(url, settings, sender="refund-me")
    database = Database(url)
    try:
        assert settings.payments.stripe_api_base is not None
        provider = StripeProvider(secret_key="sk_test_local", pay_page_url=base,
                                  api_base=settings.payments.stripe_api_base)
        async with database.sessions() as session:
            opened = await payments.open_payment(session, order_id=order_id)
        assert opened is not None
        payment = await payments.complete_payment(database, payment_id=opened.id, provider=provider)
        intent = await pay_at_stripe(localstripe, payment.reference)
        async with httpx.AsyncClient(base_url=base) as http:
            body, signature = signed(event(intent, "evt_e2e_paid"))
            answer = await http.post("/webhooks/stripe", content=body,
                                     headers={"Stripe-Signature": signature, "Content-Type": "application/json"})
        assert answer.json() == {"outcome": "paid"}
        async with database.sessions() as session:
            order = await orders.get_order(session, order_id=order_id)
        tee = next(line for line in order.lines if line.sku == "TEE-1")
        # One tee back under the EU policy: its price and the VAT charged on it (no restocking fee, not shipped).
        back = tee.unit_price + (order.taxes * tee.unit_price / order.subtotal).quantize(Decimal("0.01"))
        assert back > tee.unit_price

        for viewport in (DESKTOP, PHONE):
            context = await browser.new_context(viewport=viewport)
            page = await context.new_page()
            await page.goto(f"{base}/backoffice/orders/{order_id}")
            await page.fill("input[name=email]", "olga@shop.test")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_selector("#payment")
            assert "succeeded" in await page.inner_text("#payments")
            assert await page.inner_text("#charged") == f"€{order.total:,.2f}"
            assert await page.inner_text("#order-status") == "paid"
            await _shot(page, f"order-paid-{viewport['width']}")
            if viewport is PHONE:
                assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
                await context.close()
                break
            await page.fill(f"input[name=qty_{tee.id}]", "1")
            await page.fill("input[name=reason]", "one was too small")
            await page.click("#refund-form button[type=submit]")
            await page.wait_for_selector("p.notice")
            notice = await page.inner_text("p.notice")
            assert notice == f"Refunded €{back:,.2f} on order #{order.number}.", notice
            refunds = await page.inner_text("#refunds")
            assert "1 × TEE-1 (restocked)" in refunds
            assert "one was too small" in refunds
            assert await page.inner_text("#refunded") == f"€{back:,.2f}"
            assert f"€{back:,.2f} refunded" in await page.inner_text("#payments")
            await _shot(page, f"order-refunded-{viewport['width']}")
            await context.close()
        refunds_at_stripe = await stripe_client(localstripe).v1.refunds.list_async(
            params={"payment_intent": payment.reference})
        assert [r.amount for r in refunds_at_stripe.data] == [int(back * 100)]
        # The shopper is told on the chat where they ordered: the worker's handler for the refund event.
        handlers = outbox_handlers(settings, database)
        async with database.sessions() as session:
            told = (await session.scalars(select(OutboxEvent).where(
                OutboxEvent.topic == payments.REFUNDED_TOPIC))).all()
        assert len(told) == 1
        await handlers[payments.REFUNDED_TOPIC](told[0])
        async with database.sessions() as session:
            sent = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "send.telegram"))).all()
        assert [e.payload["text"] for e in sent] == [
            f"We refunded €{back:.2f} for order #{order.number}. It reaches your account in a few days."]
    finally:
        await database.dispose()
