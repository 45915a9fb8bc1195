"""The console's Refund action in real Chromium (issue 23), against an order paid through localstripe (signed
webhook): the owner opens the shopper's conversation, refunds part of the order in the in-page dialog, is refused
more than is left (said in the dialog, nothing refunded), then refunds all that is left; the amounts shown update,
and localstripe holds exactly those two refunds. Screenshots: test-artifacts/agent-console-refund-*.png."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from bot import handoff
from bot.conversations.service import get_or_create_conversation, set_mode
from commerce.checkout import service as checkout
from commerce.checkout.schemas import CartLineIn
from commerce.orders import service as orders
from commerce.orders.models import OrderStatusChange
from commerce.payments import service as payments
from commerce.payments.providers import StripeProvider
from commerce.shoppers.service import shopper_for_identity
from kit.clock import utcnow
from kit.db import Database
from kit.settings import Settings
from tests.commerce.checkout.conftest import localstripe, signed
from tests.commerce.checkout.test_payments import event, pay_at_stripe, stripe_client
from tests.e2e.test_backoffice import ARTIFACTS, DESKTOP, PASSWORD, browser
from tests.e2e.test_checkout_pages import served

pytestmark = pytest.mark.slow
__all__ = ["browser", "localstripe", "served"]


async def _paid_order_in_a_conversation(base: str, url: str, settings: Settings, stripe: str, *,
                                        sender: str = "70070", name: str | None = None) -> tuple[int, str, str]:
    """A Telegram shopper's order (DE, EUR) paid at localstripe; the conversation waits for a person. (order id,
    number, the payment intent)."""
    database = Database(url)
    try:
        assert settings.payments.stripe_api_base is not None
        provider = StripeProvider(secret_key="sk_test_local", pay_page_url=base,
                                  api_base=settings.payments.stripe_api_base)
        cart = [CartLineIn(sku="TEE-1", quantity=2)]
        async with database.unit_of_work() as session:
            conversation = await get_or_create_conversation(session, channel="telegram", sender_id=sender)
            shopper = await shopper_for_identity(session, kind="telegram", external_id=sender,
                                                 name=name or ("Rita Refund" if sender == "70070" else
                                                               "Pete Policy"))
            conversation.shopper_id = shopper.id
            summary = await checkout.summarize(session, lines=cart, country="DE", currency="EUR")
            order, _ = await checkout.place_order(session, digest=summary.digest, lines=cart, country="DE",
                                                  currency="EUR", channel="telegram", shopper_id=shopper.id,
                                                  external_id=f"chat:{conversation.id}:1", expires_in_minutes=60)
            await payments.start_payment(session, order_id=order.id, provider=provider)
            await set_mode(session, conversation_id=conversation.id, mode="human", queue="support")
            await handoff.inbox.sync_escalations(session)
        async with database.sessions() as session:
            opened = await payments.open_payment(session, order_id=order.id)
        assert opened is not None
        payment = await payments.complete_payment(database, payment_id=opened.id, provider=provider)
        intent = await pay_at_stripe(stripe, payment.reference)
        async with httpx.AsyncClient(base_url=base) as http:
            body, signature = signed(event(intent, f"evt_console_refund_paid_{sender}"))
            answer = await http.post("/webhooks/stripe", content=body,
                                     headers={"Stripe-Signature": signature, "Content-Type": "application/json"})
        assert answer.json() == {"outcome": "paid"}
        return order.id, order.number, payment.reference
    finally:
        await database.dispose()


async def _order(url: str, order_id: int) -> Any:
    database = Database(url)
    try:
        async with database.sessions() as session:
            return await orders.get_order(session, order_id=order_id)
    finally:
        await database.dispose()


async def _console(browser: Any, base: str, locale: str = "en-GB") -> Any:
    page = await (await browser.new_context(viewport=DESKTOP, locale=locale)).new_page()
    await page.goto(f"{base}/agent")
    await page.fill("#login-email", "olga@shop.test")
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_selector("#console:not([hidden])")
    return page


async def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"agent-console-refund-{name}.png"))


async def test_the_console_refund_dialog_partial_then_the_rest(browser: Any, served: tuple[str, Settings, str],
                                                               localstripe: str) -> None:
    base, settings, url = served
    order_id, number, intent = await _paid_order_in_a_conversation(base, url, settings, localstripe)
    total = (await _order(url, order_id)).total
    assert total > 10

    page = await _console(browser, base)
    item = page.locator("#inbox li", has_text="Rita Refund").first
    await item.wait_for(timeout=15_000)
    await item.click()
    order_line = page.locator(f"#orders li[data-order='{number}']")
    await order_line.locator(".refund-order").wait_for(timeout=10_000)
    line = await order_line.inner_text()
    assert f"€{total:,.2f}" in line
    # The order, its payment and its fulfilment, each said once (not "paid · paid · paid").
    assert f"Order: open · Payment: paid €{total:,.2f} · Fulfilment: not shipped" in line
    assert line.count("paid") == 1

    # Part of it: the dialog asks for an amount and a reason (no window.prompt).
    await order_line.locator(".refund-order").click()
    dialog = page.locator("#refund-dialog")
    await dialog.wait_for(state="visible")
    assert await page.evaluate("document.activeElement.id") == "refund-amount"
    assert f"€{total:,.2f}" in await page.inner_text("#refund-left")
    await page.click("#refund-submit")  # nothing typed: said in the dialog, nothing sent
    assert "Enter an amount" in await page.inner_text("#refund-error")
    await page.fill("#refund-amount", "5")
    await page.fill("#refund-reason", "arrived late")
    await _shot(page, "dialog")
    await page.click("#refund-submit")
    await dialog.wait_for(state="hidden", timeout=15_000)
    await order_line.locator(".refunds", has_text="arrived late").wait_for(timeout=10_000)
    assert f"Payment: paid €{total:,.2f}, refunded €5.00 · Fulfilment: not shipped" in await order_line.inner_text()
    assert (await _order(url, order_id)).amount_refunded == Decimal("5.00")

    # More than is left: refused in the dialog, nothing refunded.
    await order_line.locator(".refund-order").click()
    await dialog.wait_for(state="visible")
    assert f"€{total - 5:,.2f}" in await page.inner_text("#refund-left")
    await page.fill("#refund-amount", str(total))
    await page.click("#refund-submit")
    await page.locator("#refund-error", has_text="more than is left").wait_for(timeout=15_000)
    await _shot(page, "too-much")
    assert (await _order(url, order_id)).amount_refunded == Decimal("5.00")

    # The rest: "refund all that is left".
    await page.check("#refund-all")
    assert await page.is_disabled("#refund-amount")
    await page.click("#refund-submit")
    await dialog.wait_for(state="hidden", timeout=15_000)
    await page.locator(f"#orders li[data-order='{number}']",
                       has_text=f"Order: closed · Payment: refunded €{total:,.2f} · Fulfilment: not shipped").wait_for(
        timeout=10_000)
    assert await order_line.locator(".refund-order").count() == 0  # nothing left to refund
    await _shot(page, "done")
    after = await _order(url, order_id)
    assert after.amount_refunded == total
    at_stripe = await stripe_client(localstripe).v1.refunds.list_async(params={"payment_intent": intent})
    assert sorted(r.amount for r in at_stripe.data) == sorted([500, int((total - 5) * 100)])


async def test_the_return_policy_refusal_and_the_owners_override_with_a_reason(
        browser: Any, served: tuple[str, Settings, str], localstripe: str) -> None:
    base, settings, url = served
    order_id, number, _ = await _paid_order_in_a_conversation(base, url, settings, localstripe, sender="70071")
    database = Database(url)
    try:
        async with database.unit_of_work() as session:
            await orders.transition_order(session, order_id=order_id, to_status="fulfilled", carrier="DHL",
                                          tracking_number="JD0001")
            await orders.transition_order(session, order_id=order_id, to_status="delivered")
            # Delivered 30 days ago: past the EU's 14-day withdrawal period.
            await session.execute(update(OrderStatusChange).where(OrderStatusChange.order_id == order_id,
                                                                  OrderStatusChange.to_status == "delivered")
                                  .values(changed_at=utcnow() - timedelta(days=30)))
    finally:
        await database.dispose()

    page = await _console(browser, base)
    item = page.locator("#inbox li", has_text="Pete Policy").first
    await item.wait_for(timeout=15_000)
    await item.click()
    order_line = page.locator(f"#orders li[data-order='{number}']")
    await order_line.locator(".refund-order").click()
    await page.locator("#refund-dialog").wait_for(state="visible")
    await page.fill("#refund-amount", "5")
    await page.fill("#refund-reason", "goodwill")
    await page.click("#refund-submit")
    # Refused by the policy, said plainly; the owner may override, with a reason.
    await page.locator("#refund-error", has_text="return policy does not allow").wait_for(timeout=15_000)
    assert await page.locator("#refund-override").is_visible()
    assert await page.evaluate("document.activeElement.id") == "refund-override-reason"
    assert (await _order(url, order_id)).amount_refunded == 0
    await _shot(page, "policy")
    await page.click("#refund-submit")
    assert "reason for the exception" in await page.inner_text("#refund-error")
    await page.fill("#refund-override-reason", "long-standing customer")
    await page.click("#refund-submit")
    await page.locator("#refund-dialog").wait_for(state="hidden", timeout=15_000)
    await order_line.locator(".refunds", has_text="goodwill").wait_for(timeout=10_000)
    assert (await _order(url, order_id)).amount_refunded == Decimal("5.00")


async def test_the_order_line_in_the_agents_language(browser: Any, served: tuple[str, Settings, str],
                                                    localstripe: str) -> None:
    base, settings, url = served
    _, number, _ = await _paid_order_in_a_conversation(base, url, settings, localstripe, sender="70072",
                                                       name="Zhang Wei")
    page = await _console(browser, base, locale="zh-CN")
    item = page.locator("#inbox li", has_text="Zhang Wei").first
    await item.wait_for(timeout=15_000)
    await item.click()
    order_line = page.locator(f"#orders li[data-order='{number}']")
    await order_line.wait_for(timeout=10_000)
    line = await order_line.inner_text()
    assert "订单：进行中 · 付款：已付 €" in line
    assert "配送：未发货" in line
    assert "paid" not in line
    assert line.count("已付") == 1
