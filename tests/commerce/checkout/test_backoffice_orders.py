"""The back office order page shows the money (payments, landed cost, the stored exchange rate, refunds) and its
forms move it: mark a bank transfer received, refund one line partially, an override only for the owner, all
audited, the shopper told."""
from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select, update

from api.app import create_app
from api.models import AuditEvent
from commerce.checkout import service as checkout
from commerce.checkout.schemas import CartLineIn
from commerce.inventory import service as inventory
from commerce.orders import service as orders
from commerce.orders.models import Order, OrderStatusChange
from commerce.payments import service as payments
from kit.db import Database
from kit.outbox import OutboxEvent
from kit.settings import Settings
from tests.api.test_backoffice import make_account, signed_in
from tests.commerce.checkout.conftest import NOW
from tests.commerce.checkout.test_refunds import BANK, de_policy
from tests.http import app_client


@pytest.fixture
async def client(shop: Database) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"})
    async with app_client(create_app(settings, database=shop)) as http:
        yield http


async def wire_order(db: Database) -> Order:
    """A US order (USD, from EUR prices: an exchange rate stored) awaiting a bank transfer."""
    cart = [CartLineIn(sku="TEE-1", quantity=2), CartLineIn(sku="JKT-1", quantity=1)]
    async with db.sessions() as session:
        summary = await checkout.summarize(session, lines=cart, country="DE", currency="USD")
    async with db.unit_of_work() as session:
        order, _ = await checkout.place_order(session, digest=summary.digest, lines=cart, country="DE",
                                              currency="USD", channel="telegram", external_id="chat:5:a",
                                              expires_in_minutes=60)
        await payments.start_payment(session, order_id=order.id, provider=BANK)
        return await orders.get_order(session, order_id=order.id)


async def delivered_days_ago(db: Database, order_id: int, days: int) -> None:
    """Three weeks pass for the return window (the clock stays: the back office session would expire)."""
    async with db.unit_of_work() as session:
        await session.execute(update(OrderStatusChange).where(OrderStatusChange.order_id == order_id,
                                                              OrderStatusChange.to_status == "delivered")
                              .values(changed_at=NOW - timedelta(days=days)))


def form_key(page: httpx.Response) -> str:
    found = re.search(r'name="idempotency_key" value="([^"]+)"', page.text)
    assert found, page.text[:400]
    return found.group(1)


async def test_owner_marks_the_transfer_received_then_refunds_one_line(client: httpx.AsyncClient,
                                                                       shop: Database) -> None:
    await de_policy(shop)
    order = await wire_order(shop)
    tee = next(line for line in order.lines if line.sku == "TEE-1")
    await make_account(shop, "olga@shop.test", "owner")
    csrf = await signed_in(client, "olga@shop.test")
    page = await client.get(f"/backoffice/orders/{order.id}")
    assert page.status_code == 200
    assert "bank_transfer" in page.text
    assert "No refunds." in page.text
    assert re.search(r"Exchange rate stored with the order: 1 EUR = [\d.]+ USD", page.text)
    assert 'id="refund-form"' not in page.text  # nothing paid yet
    empty = await client.post(f"/backoffice/orders/{order.id}/offline-received",
                              data={"csrf_token": csrf, "reference": "  "})
    assert empty.status_code == 422
    assert 'id="err-reference"' in empty.text
    received = await client.post(f"/backoffice/orders/{order.id}/offline-received",
                                 data={"csrf_token": csrf, "reference": "SEPA 0042"})
    assert received.status_code == 303
    async with shop.unit_of_work() as session:
        await orders.transition_order(session, order_id=order.id, to_status="fulfilled", carrier="DHL",
                                      tracking_number="JD1")
        await orders.transition_order(session, order_id=order.id, to_status="delivered")
    page = await client.get(f"/backoffice/orders/{order.id}")
    assert 'id="refund-form"' in page.text
    assert 'name="override_reason"' in page.text  # the owner may override the policy
    key = form_key(page)
    form = {"csrf_token": csrf, "idempotency_key": key, f"qty_{tee.id}": "1", "reason": "too small",
            "restock": "1"}
    refunded = await client.post(f"/backoffice/orders/{order.id}/refund", data=form)
    assert refunded.status_code == 303, refunded.text[:600]
    again = await client.post(f"/backoffice/orders/{order.id}/refund", data=form)  # a double submit
    assert again.status_code == 303
    page = await client.get(f"/backoffice/orders/{order.id}")
    assert "1 × TEE-1 (restocked)" in page.text
    assert page.text.count("too small") == 1  # one refund
    async with shop.sessions() as session:
        state, _, refunds = await payments.payment_state(session, order_id=order.id)
        audit = (await session.scalars(select(AuditEvent).where(AuditEvent.action == "order refund"))).all()
        told = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == payments.REFUNDED_TOPIC))).all()
        on_hand = sum(level.on_hand for level in await inventory.stock_levels(session, skus=["TEE-1"]))
    assert state.status == "delivered"
    assert [r.amount for r in refunds] == [state.amount_refunded]
    # $50.00 goods + $9.50 of the German VAT charged on them - the policy's 10 % restocking fee ($5.00)
    assert (tee.unit_price, state.amount_refunded) == (Decimal("50.00"), Decimal("54.50"))
    assert [a.actor for a in audit] == ["Olga <olga@shop.test>"]
    assert len(told) == 1
    assert on_hand == 4
    # Three weeks later: outside the 14-day window. Without a reason the owner is refused, with one it is done.
    await delivered_days_ago(shop, order.id, 21)
    late = {"csrf_token": csrf, "idempotency_key": "late-1", f"qty_{tee.id}": "1", "reason": "broken"}
    refused = await client.post(f"/backoffice/orders/{order.id}/refund", data=late)
    assert refused.status_code == 409
    assert "outside the return window of 14 days" in refused.text
    overridden = await client.post(f"/backoffice/orders/{order.id}/refund",
                                   data={**late, "override_reason": "arrived broken, photo in ticket 88"})
    assert overridden.status_code == 303
    page = await client.get(f"/backoffice/orders/{order.id}")
    assert "policy overridden: arrived broken, photo in ticket 88" in page.text


async def test_staff_refunds_within_the_policy_but_cannot_override(client: httpx.AsyncClient, shop: Database) -> None:
    await de_policy(shop)
    order = await wire_order(shop)
    async with shop.unit_of_work() as session:
        await payments.mark_offline_received(session, order_id=order.id, provider=BANK, reference="x", actor="t")
        await orders.transition_order(session, order_id=order.id, to_status="fulfilled", carrier="DHL",
                                      tracking_number="JD1")
        await orders.transition_order(session, order_id=order.id, to_status="delivered")
    await make_account(shop, "sid@shop.test", "staff")
    csrf = await signed_in(client, "sid@shop.test")
    page = await client.get(f"/backoffice/orders/{order.id}")
    assert 'id="refund-form"' in page.text
    assert 'name="override_reason"' not in page.text
    await delivered_days_ago(shop, order.id, 21)
    tee = next(line for line in order.lines if line.sku == "TEE-1")
    base = {"csrf_token": csrf, "idempotency_key": "s-1", f"qty_{tee.id}": "1"}
    forged = await client.post(f"/backoffice/orders/{order.id}/refund", data={**base, "override_reason": "me"})
    assert forged.status_code == 403
    refused = await client.post(f"/backoffice/orders/{order.id}/refund", data=base)
    assert refused.status_code == 409
    assert "A supervisor or the owner can override it." in refused.text
    bad = await client.post(f"/backoffice/orders/{order.id}/refund",
                            data={**base, f"qty_{tee.id}": "", "amount": "lots"})
    assert bad.status_code == 422
    assert 'id="err-amount"' in bad.text
    async with shop.sessions() as session:
        assert (await orders.get_order(session, order_id=order.id)).amount_refunded == 0
    await make_account(shop, "ann@shop.test", "agent")
    other = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with other:
        agent_csrf = await signed_in(other, "ann@shop.test")
        denied = await other.post(f"/backoffice/orders/{order.id}/refund",
                                  data={**base, "csrf_token": agent_csrf})
    assert denied.status_code == 403


async def test_the_console_shows_payments_and_a_supervisor_refunds(client: httpx.AsyncClient,
                                                                   shop: Database) -> None:
    from bot import handoff
    from bot.conversations.service import get_or_create_conversation
    from commerce.shoppers import service as shoppers

    async with shop.unit_of_work() as session:
        shopper = await shoppers.shopper_for_identity(session, kind="telegram", external_id="4242")
        conversation = await get_or_create_conversation(session, channel="telegram", sender_id="4242")
        conversation.shopper_id = shopper.id
        cart = [CartLineIn(sku="TEE-1", quantity=1)]
        summary = await checkout.summarize(session, lines=cart, country="DE", currency="EUR")
        order, _ = await checkout.place_order(session, digest=summary.digest, lines=cart, country="DE",
                                              currency="EUR", channel="telegram",
                                              external_id=f"chat:{conversation.id}:1", shopper_id=shopper.id)
        await payments.start_payment(session, order_id=order.id, provider=BANK)
        await payments.mark_offline_received(session, order_id=order.id, provider=BANK, reference="r", actor="t")
    async with shop.sessions() as session:
        conversation = await get_or_create_conversation(session, channel="telegram", sender_id="4242")
        panel = await handoff.views.shopper_panel(session, conversation=conversation)
    view = panel.orders[0]
    total = f"€{order.total:.2f}"
    assert (view.order_id, view.paid, view.paid_text, view.refunded_text) == (order.id, True, total, "")
    assert (view.order_state, view.payment_state, view.fulfilment) == ("open", "paid", "not_shipped")
    assert view.refundable_text == total
    await make_account(shop, "ann@shop.test", "agent")
    await make_account(shop, "sue@shop.test", "supervisor")

    async def console(email: str) -> dict[str, str]:
        signed = await client.post("/api/v1/agent/session", json={"email": email, "password": "correct horse battery"})
        assert signed.status_code == 200, signed.text
        return {"X-CSRF-Token": signed.json()["csrf_token"]}

    body = {"amount": "10.00", "reason": "late delivery", "idempotency_key": "console-1"}
    agent = await client.post(f"/api/v1/agent/orders/{order.id}/refunds", json=body, headers=await console(
        "ann@shop.test"))
    assert agent.status_code == 403
    headers = await console("sue@shop.test")
    assert (await client.post(f"/api/v1/agent/orders/{order.id}/refunds", json=body)).status_code == 403  # no CSRF
    done = await client.post(f"/api/v1/agent/orders/{order.id}/refunds", json=body, headers=headers)
    assert done.status_code == 201, done.text
    assert (done.json()["amount"], done.json()["created"]) == ("10.00", True)
    again = await client.post(f"/api/v1/agent/orders/{order.id}/refunds", json=body, headers=headers)
    assert (again.json()["refund_id"], again.json()["created"]) == (done.json()["refund_id"], False)
    too_much = await client.post(f"/api/v1/agent/orders/{order.id}/refunds", headers=headers,
                                 json={"amount": str(order.total), "idempotency_key": "console-2"})
    assert too_much.status_code == 409
    left = order.total - 10
    # Money as people read it (the currency's minor units and symbol), never the column's "80.200000 EUR".
    assert too_much.json()["detail"] == f"At most €{left:,.2f} can be refunded."
    assert (too_much.json()["refundable"], too_much.json()["currency"]) == (f"{left:.2f}", "EUR")
    async with shop.sessions() as session:
        panel = await handoff.views.shopper_panel(session, conversation=conversation)
    view = panel.orders[0]
    assert (view.refunded_text, view.refunds, view.refundable_text) == ("€10.00", ["€10.00 · late delivery"],
                                                                        f"€{left:.2f}")
    assert (view.order_state, view.payment_state, view.fulfilment) == ("open", "partly_refunded", "not_shipped")


@pytest.mark.parametrize(("status", "paid", "refunded", "tracking", "facets"), [
    ("pending_payment", "0", "0", None, ("open", "awaiting", "not_shipped")),
    ("paid", "50", "0", None, ("open", "paid", "not_shipped")),
    ("packed", "50", "0", None, ("open", "paid", "packed")),
    ("fulfilled", "50", "0", "JD1", ("open", "paid", "shipped")),
    ("delivered", "50", "20", "JD1", ("completed", "partly_refunded", "delivered")),
    ("return_requested", "50", "0", "JD1", ("open", "paid", "return_requested")),
    ("refunded", "50", "50", "JD1", ("closed", "refunded", "shipped")),
    ("refunded", "50", "50", None, ("closed", "refunded", "not_shipped")),
    ("cancelled", "0", "0", None, ("cancelled", "not_paid", "not_shipped")),
    ("cancelled", "50", "50", None, ("cancelled", "refunded", "not_shipped")),
    ("expired", "0", "0", None, ("expired", "not_paid", "not_shipped")),
])
def test_the_console_says_the_order_its_payment_and_its_fulfilment_once(
        status: str, paid: str, refunded: str, tracking: str | None, facets: tuple[str, str, str]) -> None:
    from bot import handoff, i18n

    order = Order(status=status, amount_paid=Decimal(paid), amount_refunded=Decimal(refunded),
                  tracking_number=tracking)
    assert handoff.views.order_facets(order) == facets
    state, payment, fulfilment = facets
    for locale in i18n.LANGUAGES:  # each word in every catalog of the agent's language
        for key in (f"order_state_{state}", f"payment_state_{payment}", f"fulfilment_{fulfilment}", "order_facet",
                    "payment_facet", "fulfilment_facet"):
            assert i18n.has_text(locale, f"console.{key}"), (locale, key)
