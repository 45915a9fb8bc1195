"""Refunds follow the destination's return policy (window, non-returnable categories, restocking fee), per line,
never more than was paid, units back on hand; an offline payment marked received once; the merchant's order expiry;
Stripe calls retried with one idempotency key, and a payment opened at Stripe but never recorded still gets paid."""
from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from api.app import create_app
from api.auth import create_token
from commerce import cross_border
from commerce.checkout import service as checkout
from commerce.checkout.schemas import CartLineIn
from commerce.cross_border.admin import create_row
from commerce.cross_border.models import ReturnPolicy
from commerce.cross_border.schemas import ReturnPolicyIn
from commerce.inventory import service as inventory
from commerce.orders import service as orders
from commerce.orders.models import Order
from commerce.payments import service as payments
from commerce.payments.errors import ProviderUnavailable, RefundNotPossible, RefundOutsidePolicy
from commerce.payments.models import Payment
from commerce.payments.providers import OfflineProvider, StripeProvider
from commerce.payments.schemas import RefundLineIn
from kit.clock import clock
from kit.db import Database
from kit.errors import InvalidInput
from kit.outbox import OutboxEvent
from kit.settings import Settings
from tests.commerce.checkout.conftest import NOW, WEBHOOK_SECRET, signed, stripe_losing_first, stripe_settings
from tests.http import app_client, start_aiohttp

BANK = OfflineProvider("bank_transfer")


async def paid_order(db: Database, *, lines: list[tuple[str, int]], country: str = "DE", currency: str = "EUR",
                     external_id: str = "chat:7:a", delivered: bool = True) -> Order:
    """An order placed, paid by bank transfer (marked received by a person) and, if `delivered`, delivered."""
    cart = [CartLineIn(sku=sku, quantity=quantity) for sku, quantity in lines]
    async with db.sessions() as session:
        summary = await checkout.summarize(session, lines=cart, country=country, currency=currency)
    async with db.unit_of_work() as session:
        order, _ = await checkout.place_order(session, digest=summary.digest, lines=cart, country=country,
                                              currency=currency, channel="telegram", external_id=external_id,
                                              expires_in_minutes=30)
        await payments.start_payment(session, order_id=order.id, provider=BANK)
    async with db.unit_of_work() as session:
        assert await payments.mark_offline_received(session, order_id=order.id, provider=BANK,
                                                    reference="SEPA 2026-12-07 0042", actor="Owner") == "paid"
        if delivered:
            await orders.transition_order(session, order_id=order.id, to_status="fulfilled", carrier="DHL",
                                          tracking_number="JD0001")
            await orders.transition_order(session, order_id=order.id, to_status="delivered")
    async with db.sessions() as session:
        return await orders.get_order(session, order_id=order.id)


async def de_policy(db: Database, **changes: Any) -> None:
    values: dict[str, Any] = {"scope": "DE", "window_days": 14, "legal_basis": "test", "duties_refundable": True,
                              "restocking_fee_percent": Decimal(10), "non_returnable_categories": ["tea"]}
    async with db.unit_of_work() as session:
        await create_row(session, model=ReturnPolicy, data=ReturnPolicyIn(**{**values, **changes}))


async def on_hand(db: Database, sku: str) -> int:
    async with db.sessions() as session:
        return sum(level.on_hand for level in await inventory.stock_levels(session, skus=[sku]))


async def test_a_line_refund_follows_the_policy_restocks_and_is_capped(shop: Database) -> None:
    await de_policy(shop)
    order = await paid_order(shop, lines=[("TEE-1", 2), ("JKT-1", 1)])
    tee = next(line for line in order.lines if line.sku == "TEE-1")
    assert await on_hand(shop, "TEE-1") == 3  # 5 - 2 sold
    async with shop.unit_of_work() as session:
        row, _ = await payments.refund(session, order_id=order.id, provider=BANK, idempotency_key="r1",
                                    lines=[RefundLineIn(line_id=tee.id, quantity=1)], reason="too small")
    async with shop.sessions() as session:
        policy = await cross_border.return_policy(session, country="DE")
    expected = cross_border.refund_amount(order, policy=policy, returned_goods=tee.unit_price)
    assert expected.restocking_fee == (tee.unit_price / 10).quantize(Decimal("0.01"))  # the policy's 10 %
    assert row.amount == expected.total
    assert row.amount < tee.unit_price + expected.taxes  # the restocking fee was kept
    assert row.lines == [{"line_id": tee.id, "sku": "TEE-1", "quantity": 1, "amount": "40.00"}]
    assert row.restocked
    assert await on_hand(shop, "TEE-1") == 4  # the returned unit is back on hand
    async with shop.unit_of_work() as session:  # the same key: the first refund, nothing more
        again, created = await payments.refund(session, order_id=order.id, provider=BANK, idempotency_key="r1",
                                      lines=[RefundLineIn(line_id=tee.id, quantity=1)])
    assert (again.id, created) == (row.id, False)
    async with shop.unit_of_work() as session:
        with pytest.raises(RefundNotPossible) as more_than_bought:
            await payments.refund(session, order_id=order.id, provider=BANK, idempotency_key="r2",
                                  lines=[RefundLineIn(line_id=tee.id, quantity=2)])
    assert more_than_bought.value.code == "refund_quantity"
    assert more_than_bought.value.extra["refundable_quantity"] == 1
    async with shop.unit_of_work() as session:
        with pytest.raises(RefundNotPossible) as more_than_paid:
            await payments.refund(session, order_id=order.id, provider=BANK, idempotency_key="r3",
                                  amount=order.total)
    assert more_than_paid.value.detail == f"At most €{order.total - row.amount:,.2f} can be refunded."
    async with shop.unit_of_work() as session:  # the rest, as an amount: the order is refunded in full
        await payments.refund(session, order_id=order.id, provider=BANK, idempotency_key="r4",
                              amount=order.total - row.amount, restock=False)
    async with shop.sessions() as session:
        final, _, refunds = await payments.payment_state(session, order_id=order.id)
        events = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == payments.REFUNDED_TOPIC)
                                        )).all()
    assert final.status == "refunded"
    assert final.amount_refunded == final.amount_paid == order.total
    assert [r.amount for r in refunds] == [row.amount, order.total - row.amount]
    assert [e.payload["amount"] for e in events] == [str(row.amount)]  # the partial one told on its own


async def test_outside_the_window_or_non_returnable_needs_an_override(shop: Database,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    await de_policy(shop)
    order = await paid_order(shop, lines=[("TEE-1", 1), ("TEA-1", 2)])
    tee, tea = (next(line for line in order.lines if line.sku == sku) for sku in ("TEE-1", "TEA-1"))
    async with shop.unit_of_work() as session:
        with pytest.raises(RefundOutsidePolicy) as tea_refused:
            await payments.refund(session, order_id=order.id, provider=BANK, idempotency_key="tea",
                                  lines=[RefundLineIn(line_id=tea.id, quantity=1)])
    assert tea_refused.value.extra["breaches"] == {"non_returnable": {"categories": ["tea"]}}
    assert "non-returnable category (tea)" in tea_refused.value.detail
    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(days=15))
    async with shop.unit_of_work() as session:
        with pytest.raises(RefundOutsidePolicy) as late:
            await payments.refund(session, order_id=order.id, provider=BANK, idempotency_key="late",
                                  lines=[RefundLineIn(line_id=tee.id, quantity=1)],
                                  override_reason="good customer")  # a reason, but staff may not override
    assert late.value.extra["breaches"]["window"]["window_days"] == 14
    assert "outside the return window of 14 days" in late.value.detail
    async with shop.unit_of_work() as session:
        with pytest.raises(RefundOutsidePolicy):  # allowed to override, but no reason given
            await payments.refund(session, order_id=order.id, provider=BANK, idempotency_key="late",
                                  lines=[RefundLineIn(line_id=tee.id, quantity=1)], may_override=True)
    async with shop.unit_of_work() as session:
        row, _ = await payments.refund(session, order_id=order.id, provider=BANK, idempotency_key="late",
                                    lines=[RefundLineIn(line_id=tee.id, quantity=1)], may_override=True,
                                    override_reason="parcel lost by the carrier", actor="Sue <sue@shop.example>")
    assert (row.override_reason, row.actor) == ("parcel lost by the carrier", "Sue <sue@shop.example>")
    async with shop.sessions() as session:
        assert (await orders.get_order(session, order_id=order.id)).amount_refunded == row.amount


async def test_before_shipping_a_refund_is_a_cancellation_outside_the_policy(shop: Database) -> None:
    await de_policy(shop, window_days=0)
    order = await paid_order(shop, lines=[("TEA-1", 1)], delivered=False)  # paid, still in the warehouse
    async with shop.unit_of_work() as session:
        row, _ = await payments.refund(session, order_id=order.id, provider=BANK, idempotency_key="all")
    assert row.amount == order.total  # everything, no restocking fee: the goods never left
    assert row.restocked
    assert await on_hand(shop, "TEA-1") == 5
    async with shop.sessions() as session:
        assert (await orders.get_order(session, order_id=order.id)).status == "refunded"


async def test_an_offline_payment_is_marked_received_once(shop: Database) -> None:
    order = await paid_order(shop, lines=[("TEE-1", 1)], delivered=False)
    async with shop.unit_of_work() as session:
        again = await payments.mark_offline_received(session, order_id=order.id, provider=BANK,
                                                     reference="SEPA 2026-12-07 0042", actor="Owner")
        with pytest.raises(InvalidInput):
            await payments.mark_offline_received(session, order_id=order.id, provider=BANK, reference=" ",
                                                 actor="Owner")
    assert again == "duplicate"
    async with shop.sessions() as session:
        state, paid, _ = await payments.payment_state(session, order_id=order.id)
    assert (state.status, state.amount_paid) == ("paid", order.total)
    assert [(p.status, p.charge_id) for p in paid] == [("succeeded", "SEPA 2026-12-07 0042")]


async def test_the_merchants_order_expiry_is_used_at_placing_and_by_the_job(shop: Database, settings: Settings,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    async with shop.unit_of_work() as session:
        token = await create_token(session, name="merchant", role="merchant")
    headers = {"Authorization": f"Bearer {token}"}
    async with app_client(create_app(settings, database=shop)) as http:
        assert (await http.get("/api/v1/payment-settings", headers=headers)).json() == {
            "order_expiry_minutes": settings.payments.order_expiry_minutes}
        bad = await http.put("/api/v1/payment-settings", json={"order_expiry_minutes": 0}, headers=headers)
        assert bad.status_code == 422
        assert (await http.put("/api/v1/payment-settings", json={"order_expiry_minutes": 5},
                               headers=headers)).json() == {"order_expiry_minutes": 5}
        assert (await http.get("/api/v1/payment-settings", headers=headers)).json()["order_expiry_minutes"] == 5
        assert (await http.put("/api/v1/payment-settings", json={"order_expiry_minutes": 5})).status_code == 401
    async with shop.unit_of_work() as session:
        with pytest.raises(InvalidInput):
            await payments.set_order_expiry_minutes(session, minutes=60 * 24 * 15)
        # An order placed without an expiry of its own (e.g. through the orders API) follows the merchant's.
        summary = await checkout.summarize(session, lines=[CartLineIn(sku="TEE-1", quantity=2)], country="DE",
                                           currency="EUR")
        order, _ = await checkout.place_order(session, digest=summary.digest,
                                              lines=[CartLineIn(sku="TEE-1", quantity=2)], country="DE",
                                              currency="EUR", channel="web", external_id="api-1")
    assert order.expires_at is None
    assert await on_hand(shop, "TEE-1") == 5
    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(minutes=4))
    async with shop.unit_of_work() as session:
        assert await payments.expire_orders(session, default_expiry_minutes=60) == 0
    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(minutes=6))
    async with shop.unit_of_work() as session:
        assert await payments.expire_orders(session, default_expiry_minutes=60) == 1
    async with shop.sessions() as session:
        assert (await orders.get_order(session, order_id=order.id)).status == "expired"
        available = await inventory.available_stock(session, skus=["TEE-1"])
    assert available["TEE-1"] == 5  # the reservation was released


@pytest.fixture
async def flaky_stripe() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A Stripe API that fails twice (500, then 503) before it creates the payment intent; every request's path,
    Idempotency-Key and amount is recorded."""
    seen: list[dict[str, str]] = []

    async def intents(request: web.Request) -> web.Response:
        form = await request.post()
        seen.append({"path": request.path, "key": request.headers.get("Idempotency-Key", ""),
                     "amount": str(form.get("amount"))})
        if len(seen) <= 2:
            return web.json_response({"error": {"type": "api_error", "message": "try later"}},
                                     status=500 if len(seen) == 1 else 503)
        return web.json_response({"id": "pi_flaky", "object": "payment_intent", "amount": int(str(form["amount"])),
                                  "currency": str(form["currency"]), "status": "requires_payment_method",
                                  "client_secret": "pi_flaky_secret_x", "metadata": {}})

    async def listed(request: web.Request) -> web.Response:
        looked.append(request.path)  # the retry first looks for an intent the failed call made: none here
        return web.json_response({"object": "list", "url": "/v1/payment_intents", "has_more": False, "data": []})

    looked: list[str] = []
    app = web.Application()
    app.router.add_post("/v1/payment_intents", intents)
    app.router.add_get("/v1/payment_intents", listed)
    runner, port = await start_aiohttp(app)
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_stripe_5xx_is_retried_with_one_idempotency_key(shop: Database,
                                                               flaky_stripe: tuple[str, list[dict[str, str]]]
                                                               ) -> None:
    base, seen = flaky_stripe
    provider = StripeProvider(secret_key="sk_test_local", pay_page_url="https://shop.example", api_base=base)
    cart = [CartLineIn(sku="TEE-1", quantity=1)]
    async with shop.unit_of_work() as session:
        summary = await checkout.summarize(session, lines=cart, country="DE", currency="EUR")
        placed, _ = await checkout.place_order(session, digest=summary.digest, lines=cart, country="DE",
                                               currency="EUR", channel="telegram", external_id="chat:9:a",
                                               expires_in_minutes=30)
        opened = await payments.start_payment(session, order_id=placed.id, provider=provider)
    payment = await payments.complete_payment(shop, payment_id=opened.id, provider=provider,
                                              retry_delays=(0.01, 0.01))
    assert (payment.status, payment.reference) == ("pending", "pi_flaky")
    assert len(seen) == 3
    assert {s["key"] for s in seen} == {opened.idempotency_key}  # one key: Stripe makes one payment of three calls
    assert {s["amount"] for s in seen} == {str(int(placed.total * 100))}
    seen.clear()
    async with shop.unit_of_work() as session:
        other, _ = await checkout.place_order(session, digest=summary.digest, lines=cart, country="DE",
                                              currency="EUR", channel="telegram", external_id="chat:9:b",
                                              expires_in_minutes=30)
        second = await payments.start_payment(session, order_id=other.id, provider=provider)
    with pytest.raises(ProviderUnavailable):  # Stripe failing every time: bounded (2 calls here), shopper told
        await payments.complete_payment(shop, payment_id=second.id, provider=provider, retry_delays=(0.01,))
    assert len(seen) == 2


async def test_a_payment_opened_at_stripe_but_never_recorded_is_still_paid(
        shop: Database, settings: Settings, localstripe: str) -> None:
    from tests.commerce.checkout.test_payments import event, pay_at_stripe, post_event

    provider = StripeProvider(secret_key="sk_test_local", pay_page_url="https://shop.example", api_base=localstripe)
    cart = [CartLineIn(sku="TEE-1", quantity=1)]
    async with shop.unit_of_work() as session:
        summary = await checkout.summarize(session, lines=cart, country="DE", currency="EUR")
        order, _ = await checkout.place_order(session, digest=summary.digest, lines=cart, country="DE",
                                              currency="EUR", channel="telegram", external_id="chat:3:a",
                                              expires_in_minutes=30)
        opened = await payments.start_payment(session, order_id=order.id, provider=provider)
    # The process stops right after Stripe answered: the intent exists, our row still says "creating".
    created = await provider.create(charge=replace(payments.charge_of(order), payment_id=opened.id),
                                    method_types=["card"], idempotency_key=str(opened.idempotency_key))
    intent = await pay_at_stripe(localstripe, created.reference)
    assert intent["metadata"]["payment_id"] == str(opened.id)
    async with app_client(create_app(settings, database=shop)) as http:
        answer = await post_event(http, *signed(event(intent, "evt_adopted"), secret=WEBHOOK_SECRET))
    assert answer.json() == {"outcome": "paid"}
    async with shop.sessions() as session:
        payment = await session.get(Payment, opened.id)
        assert payment is not None
        assert (payment.status, payment.reference) == ("succeeded", created.reference)
        assert (await orders.get_order(session, order_id=order.id)).status == "paid"


@pytest.fixture
def settings(localstripe: str) -> Settings:
    return stripe_settings(localstripe)


@pytest.fixture
async def lossy_stripe(localstripe: str) -> AsyncIterator[tuple[str, list[str]]]:
    """The answer to the first "create payment intent" is lost: the intent is made, the caller times out."""
    async with stripe_losing_first(localstripe, "POST /v1/payment_intents") as proxy:
        yield proxy


async def test_a_create_whose_answer_was_lost_reuses_the_intent_stripe_made(
        shop: Database, lossy_stripe: tuple[str, list[str]], localstripe: str) -> None:
    from tests.commerce.checkout.test_payments import stripe_client

    base, seen = lossy_stripe
    provider = StripeProvider(secret_key="sk_test_local", pay_page_url="https://shop.example", api_base=base,
                              timeout_seconds=1.0)
    cart = [CartLineIn(sku="TEE-1", quantity=1)]
    async with shop.unit_of_work() as session:
        summary = await checkout.summarize(session, lines=cart, country="DE", currency="EUR")
        placed, _ = await checkout.place_order(session, digest=summary.digest, lines=cart, country="DE",
                                               currency="EUR", channel="telegram", external_id="chat:12:a",
                                               expires_in_minutes=30)
        opened = await payments.start_payment(session, order_id=placed.id, provider=provider)
    payment = await payments.complete_payment(shop, payment_id=opened.id, provider=provider,
                                              retry_delays=(0.01, 0.01))
    assert seen[:2] == ["POST /v1/payment_intents", "GET /v1/payment_intents"]  # lost, then looked for
    assert seen.count("POST /v1/payment_intents") == 1  # found: not created again
    stripe_api, ours, after = stripe_client(localstripe), [], None  # every intent at (the shared) localstripe
    while True:
        page = await stripe_api.v1.payment_intents.list_async(
            params={"limit": 100, **({"starting_after": after} if after else {})})
        ours += [intent for intent in page.data if intent.metadata.to_dict().get("order_ref") == placed.public_ref]
        if not page.has_more or not page.data:
            break
        after = page.data[-1].id
    assert [intent.id for intent in ours] == [payment.reference]  # one intent at Stripe, and it is the one we keep
    assert payment.status == "pending"
