"""Paying an order through Stripe (localstripe, signed webhooks into the app), offline, refunds and expiry."""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import select

from api.app import create_app
from api.auth import create_token
from commerce.checkout import service as checkout
from commerce.checkout.schemas import CartLineIn
from commerce.inventory import service as inventory
from commerce.orders import service as orders
from commerce.orders.models import Order
from commerce.payments import service as payments
from commerce.payments.errors import PaymentNotPossible, ProviderUnavailable
from commerce.payments.models import Payment, PaymentEvent
from commerce.payments.providers import OfflineProvider, StripeProvider
from commerce.payments.schemas import PaymentMethodIn
from kit.clock import clock
from kit.db import Database
from kit.outbox import OutboxEvent
from kit.settings import Settings
from tests.commerce.checkout.conftest import NOW, signed, stripe_settings
from tests.http import app_client


async def place(db: Database, *, sku: str = "TEA-1", quantity: int = 2, country: str = "JP", currency: str = "JPY",
                external_id: str = "chat:1", expires: int | None = 30) -> Order:
    lines = [CartLineIn(sku=sku, quantity=quantity)]
    async with db.sessions() as session:
        summary = await checkout.summarize(session, lines=lines, country=country, currency=currency)
    async with db.unit_of_work() as session:
        order, _ = await checkout.place_order(session, digest=summary.digest, lines=lines, country=country,
                                              currency=currency, channel="telegram", external_id=external_id,
                                              expires_in_minutes=expires)
    return order


@pytest.fixture
def settings(localstripe: str) -> Settings:
    return stripe_settings(localstripe)


@pytest.fixture
def provider(settings: Settings) -> StripeProvider:
    assert settings.payments.stripe_api_base is not None
    return StripeProvider(secret_key="sk_test_local", pay_page_url="https://shop.example",
                          api_base=settings.payments.stripe_api_base)


@pytest.fixture
async def client(shop: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings, database=shop)) as http:
        yield http


def stripe_client(base: str) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_local", base_addresses={"api": base}, http_client=stripe.HTTPXClient())


async def pay_at_stripe(base: str, reference: str) -> dict[str, Any]:
    """What the shopper does on the pay page: a card confirms the payment intent. Its state afterwards."""
    client = stripe_client(base)
    card = await client.v1.payment_methods.create_async(params={
        "type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
    await client.v1.payment_intents.update_async(reference, params={"payment_method": card.id})
    await client.v1.payment_intents.confirm_async(reference)
    intent: dict[str, Any] = (await client.v1.payment_intents.retrieve_async(reference)).to_dict()
    return intent


def event(intent: dict[str, Any], event_id: str, kind: str = "payment_intent.succeeded") -> dict[str, Any]:
    return {"id": event_id, "object": "event", "type": kind, "api_version": "2024-06-20", "created": 1,
            "data": {"object": intent}}


async def post_event(client: httpx.AsyncClient, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return await client.post("/webhooks/stripe", content=body, headers=headers)


async def open_at_stripe(db: Database, order_id: int, provider: StripeProvider) -> Payment:
    """"Pay" in the chat (the payment row, committed), then the pay page opening it at Stripe (no lock held)."""
    async with db.unit_of_work() as session:
        payment = await payments.start_payment(session, order_id=order_id, provider=provider)
    assert payment.status == "creating"
    return await payments.complete_payment(db, payment_id=payment.id, provider=provider)


async def reload(db: Database, order_id: int) -> Order:
    async with db.sessions() as session:
        return await orders.get_order(session, order_id=order_id)


async def test_pay_in_yen_through_stripe_once(shop: Database, client: httpx.AsyncClient, provider: StripeProvider,
                                              localstripe: str) -> None:
    order = await place(shop)
    assert order.currency == "JPY"
    assert order.total == order.total.to_integral_value()
    payment = await open_at_stripe(shop, order.id, provider)
    async with shop.unit_of_work() as session:  # a double click on "Pay": the same payment, one charge
        again = await payments.start_payment(session, order_id=order.id, provider=provider)
    assert again.id == payment.id
    assert (await payments.complete_payment(shop, payment_id=payment.id, provider=provider)).reference \
        == payment.reference
    assert payment.url == f"https://shop.example/pay/{order.public_ref}"
    intent = await pay_at_stripe(localstripe, payment.reference)
    assert (intent["amount"], intent["currency"]) == (int(order.total), "jpy")  # JPY has no minor unit
    body, signature = signed(event(intent, "evt_1"))
    answer = await post_event(client, body, signature)
    assert answer.status_code == 200
    assert answer.json() == {"outcome": "paid"}
    replay = await post_event(client, body, signature)  # Stripe retries: nothing more happens
    assert replay.json() == {"outcome": "duplicate"}
    body2, signature2 = signed(event(intent, "evt_2"))  # another event for the same payment
    assert (await post_event(client, body2, signature2)).json() == {"outcome": "duplicate"}
    paid = await reload(shop, order.id)
    assert paid.status == "paid"
    assert paid.amount_paid == order.total
    assert [h.to_status for h in paid.history] == ["pending_payment", "paid"]
    async with shop.sessions() as session:
        levels = await inventory.stock_levels(session, skus=["TEA-1"])
    assert (levels[0].on_hand, levels[0].reserved) == (3, 0)  # paying committed the reservation
    async with shop.unit_of_work() as session:
        with pytest.raises(PaymentNotPossible):
            await payments.start_payment(session, order_id=order.id, provider=provider)


async def test_racing_events_pay_once(shop: Database, client: httpx.AsyncClient, provider: StripeProvider,
                                      localstripe: str) -> None:
    order = await place(shop)
    payment = await open_at_stripe(shop, order.id, provider)
    intent = await pay_at_stripe(localstripe, payment.reference)
    answers = await asyncio.gather(*(post_event(client, *signed(event(intent, f"evt_race_{i}"))) for i in range(6)))
    outcomes = sorted(a.json()["outcome"] for a in answers)
    assert outcomes == ["duplicate"] * 5 + ["paid"]
    assert [h.to_status for h in (await reload(shop, order.id)).history] == ["pending_payment", "paid"]


async def test_forged_and_unsigned_webhooks_change_nothing(shop: Database, client: httpx.AsyncClient,
                                                           provider: StripeProvider, localstripe: str) -> None:
    order = await place(shop)
    payment = await open_at_stripe(shop, order.id, provider)
    intent = await pay_at_stripe(localstripe, payment.reference)
    body, _ = signed(event(intent, "evt_forged"), secret="whsec_attacker")
    forged = await post_event(client, body, signed(event(intent, "evt_forged"), secret="whsec_attacker")[1])
    unsigned = await post_event(client, body, None)
    old = await post_event(client, *signed(event(intent, "evt_old"), at=1_600_000_000))  # outside the tolerance
    tampered_body = body.replace(b"evt_forged", b"evt_other")
    tampered = await post_event(client, tampered_body, signed(event(intent, "evt_forged"))[1])
    for answer in (forged, unsigned, old, tampered):
        assert answer.status_code == 400
        assert answer.json()["code"] == "invalid_webhook_signature"
    assert (await reload(shop, order.id)).status == "pending_payment"


async def test_amount_or_currency_mismatch_is_flagged_not_paid(shop: Database, client: httpx.AsyncClient,
                                                               provider: StripeProvider, localstripe: str) -> None:
    order = await place(shop)
    payment = await open_at_stripe(shop, order.id, provider)
    intent = await pay_at_stripe(localstripe, payment.reference)
    short = {**intent, "amount": intent["amount"] - 1, "amount_received": intent["amount"] - 1}
    answer = await post_event(client, *signed(event(short, "evt_short")))
    assert answer.json() == {"outcome": "mismatch"}
    flagged = await reload(shop, order.id)
    assert flagged.status == "pending_payment"
    assert flagged.attention is not None
    assert flagged.attention == (f"stripe reported ¥{int(order.total) - 1:,} for a payment of ¥{int(order.total):,}; "
                                 "not marked paid.")
    other = await place(shop, external_id="chat:2")
    payment2 = await open_at_stripe(shop, other.id, provider)
    intent2 = await pay_at_stripe(localstripe, payment2.reference)
    in_usd = {**intent2, "currency": "usd"}
    assert (await post_event(client, *signed(event(in_usd, "evt_usd")))).json() == {"outcome": "mismatch"}
    flagged2 = await reload(shop, other.id)
    assert flagged2.status == "pending_payment"
    # USD has two decimals: the intent's minor units read as dollars and cents.
    assert flagged2.attention == (f"stripe reported ${int(other.total) / 100:,.2f} for a payment of "
                                  f"¥{int(other.total):,}; not marked paid.")


async def test_partial_then_full_refund_through_stripe(shop: Database, client: httpx.AsyncClient,
                                                       provider: StripeProvider, localstripe: str) -> None:
    order = await place(shop, sku="TEE-1", quantity=1, country="DE", currency="EUR")
    payment = await open_at_stripe(shop, order.id, provider)
    async with shop.unit_of_work() as session:
        token = await create_token(session, name="merchant", role="merchant")
    intent = await pay_at_stripe(localstripe, payment.reference)
    await post_event(client, *signed(event(intent, "evt_paid")))
    auth = {"Authorization": f"Bearer {token}"}
    part = await client.post(f"/api/v1/orders/{order.id}/refunds", headers=auth,
                             json={"amount": "10.00", "idempotency_key": "r-1", "reason": "late"})
    assert part.status_code == 201, part.text
    again = await client.post(f"/api/v1/orders/{order.id}/refunds", headers=auth,
                              json={"amount": "10.00", "idempotency_key": "r-1"})
    assert Decimal(again.json()["amount_refunded"]) == Decimal("10.00")  # same key: one refund
    too_much = await client.post(f"/api/v1/orders/{order.id}/refunds", headers=auth,
                                 json={"amount": str(order.total), "idempotency_key": "r-2"})
    assert too_much.status_code == 409
    rest = await client.post(f"/api/v1/orders/{order.id}/refunds", headers=auth, json={"idempotency_key": "r-3"})
    state = rest.json()
    assert state["status"] == "refunded"
    assert Decimal(state["amount_refunded"]) == order.total
    assert [r["provider_ref"][:3] for r in state["refunds"]] == ["re_", "re_"]
    latest = intent["latest_charge"]
    charge = await stripe_client(localstripe).v1.charges.retrieve_async(
        latest["id"] if isinstance(latest, dict) else str(latest))
    assert charge.amount_refunded == int(order.total * 100)


async def test_unpaid_order_expires_and_a_late_payment_is_flagged(shop: Database, client: httpx.AsyncClient,
                                                                  provider: StripeProvider, localstripe: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    order = await place(shop, expires=30)
    payment = await open_at_stripe(shop, order.id, provider)
    async with shop.unit_of_work() as session:
        assert await payments.expire_orders(session) == 0
    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(minutes=31))
    async with shop.unit_of_work() as session:
        assert await payments.expire_orders(session) == 1
    async with shop.sessions() as session:
        assert (await inventory.available_stock(session, skus=["TEA-1"]))["TEA-1"] == 5
    async with shop.sessions() as session:  # the intent is to be cancelled at Stripe (the worker was not run here)
        closing = (await session.scalars(select(OutboxEvent).where(
            OutboxEvent.topic == payments.CANCEL_INTENT_TOPIC))).all()
    assert [(e.payload["payment_id"], e.payload["opened"]) for e in closing] == [(payment.id, True)]
    intent = await pay_at_stripe(localstripe, payment.reference)
    assert (await post_event(client, *signed(event(intent, "evt_late")))).json() == {"outcome": "late"}
    late = await reload(shop, order.id)
    assert late.status == "expired"
    assert late.attention is not None
    assert "refund" in late.attention


async def test_provider_down_leaves_the_order_pending(shop: Database) -> None:
    order = await place(shop)
    down = StripeProvider(secret_key="sk_test_local", pay_page_url="https://shop.example",
                          api_base="http://127.0.0.1:9", timeout_seconds=2)
    async with shop.unit_of_work() as session:
        opened = await payments.start_payment(session, order_id=order.id, provider=down)  # no network call here
    with pytest.raises(ProviderUnavailable):
        await payments.complete_payment(shop, payment_id=opened.id, provider=down, retry_delays=(0.01, 0.01))
    async with shop.sessions() as session:
        waiting = await payments.open_payment(session, order_id=order.id)
    assert waiting is not None
    assert (waiting.id, waiting.status) == (opened.id, "creating")  # kept, with its idempotency key, to retry
    assert (await reload(shop, order.id)).status == "pending_payment"


async def test_offline_reference_and_methods_per_country(shop: Database) -> None:
    order = await place(shop)
    async with shop.unit_of_work() as session:
        await payments.set_method(session, data=PaymentMethodIn(country="*", channel="*", provider="stripe",
                                                                method_types=["card"], position=1))
        await payments.set_method(session, data=PaymentMethodIn(country="CN", channel="*", provider="stripe",
                                                                method_types=["card", "alipay", "wechat_pay"]))
        await payments.set_method(session, data=PaymentMethodIn(country="DE", channel="*", provider="bank_transfer",
                                                                instructions="IBAN DE89 3704 0044 0532 0130 00",
                                                                position=2))
        payment = await payments.start_payment(session, order_id=order.id, provider=OfflineProvider("bank_transfer"))
    assert payment.reference == order.public_ref
    assert payment.url is None
    async with shop.sessions() as session:
        china = await payments.methods_for(session, country="cn", channel="telegram")
        germany = await payments.methods_for(session, country="DE", channel="webchat")
    assert [(m.provider, m.method_types) for m in china] == [("stripe", ["card", "alipay", "wechat_pay"])]
    assert [m.provider for m in germany] == ["stripe", "bank_transfer"]
    assert json.loads(json.dumps(germany[1].instructions)).startswith("IBAN")


async def test_pay_page_carries_the_open_payment_only(shop: Database, settings: Settings, provider: StripeProvider,
                                                      localstripe: str) -> None:
    settings.payments.stripe_publishable_key = "pk_test_local"
    async with app_client(create_app(settings, database=shop)) as http:
        order = await place(shop)
        assert (await http.get(f"/pay/{order.public_ref}")).status_code == 404  # nothing opened yet
        async with shop.unit_of_work() as session:
            opened = await payments.start_payment(session, order_id=order.id, provider=provider)
        page = await http.get(f"/pay/{order.public_ref}")  # opens the payment at Stripe, outside a transaction
        assert page.status_code == 200
        async with shop.sessions() as session:
            payment = await payments.open_payment(session, order_id=order.id)
        assert payment is not None
        assert (payment.id, payment.status) == (opened.id, "pending")
        assert f'"{payment.reference}_secret_' in page.text  # the Payment Element's client secret
        assert '"pk_test_local"' in page.text
        assert page.headers["cache-control"] == "no-store"
        assert (await http.get("/pay/ST-00000-00000")).status_code == 404


async def test_a_webhook_naming_our_payment_for_another_order_is_not_applied(
        shop: Database, client: httpx.AsyncClient, provider: StripeProvider, localstripe: str,
        caplog: pytest.LogCaptureFixture) -> None:
    order = await place(shop)
    other = await place(shop, external_id="chat:2")
    async with shop.unit_of_work() as session:  # "Pay" pressed; the intent was never recorded on our side
        opened = await payments.start_payment(session, order_id=order.id, provider=provider)
    # An intent whose metadata names our payment row but another order (a second database sharing the Stripe
    # account reuses payment ids): its event must not adopt and pay our payment.
    foreign = replace(payments.charge_of(order), payment_id=opened.id, public_ref=other.public_ref)
    created = await provider.create(charge=foreign, method_types=["card"], idempotency_key="foreign-1")
    intent = await pay_at_stripe(localstripe, created.reference)
    assert intent["metadata"]["payment_id"] == str(opened.id)
    caplog.set_level("WARNING", logger="commerce.payments.service")
    answer = await post_event(client, *signed(event(intent, "evt_foreign")))
    assert answer.status_code == 200  # a 4xx would make Stripe retry for days: the event can never apply here
    assert answer.json() == {"outcome": "wrong_order"}
    replay = await post_event(client, *signed(event(intent, "evt_foreign")))
    assert replay.json() == {"outcome": "duplicate"}
    async with shop.sessions() as session:
        payment = await session.get(Payment, opened.id)
        assert payment is not None
        assert (payment.status, payment.reference) == ("creating", opened.reference)
        recorded = await session.scalar(select(PaymentEvent).where(PaymentEvent.event_id == "evt_foreign"))
        assert recorded is not None
        assert (recorded.outcome, recorded.order_id) == ("wrong_order", order.id)
        assert recorded.detail["reference"] == created.reference
    assert (await reload(shop, order.id)).status == "pending_payment"
    assert (await reload(shop, other.id)).status == "pending_payment"
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "evt_foreign" in logged
    assert created.reference in logged
    assert str(intent["client_secret"]) not in logged
    assert other.public_ref not in logged
    assert order.public_ref not in logged
    # Nothing lost: our own payment still opens at Stripe and is paid by its own event.
    mine = await payments.complete_payment(shop, payment_id=opened.id, provider=provider)
    assert mine.reference != created.reference
    paid_intent = await pay_at_stripe(localstripe, mine.reference)
    # Our intent, but an event whose metadata names another order (edited in a dashboard, say): not applied either.
    relabelled = {**paid_intent, "metadata": {**paid_intent["metadata"], "order_ref": other.public_ref}}
    assert (await post_event(client, *signed(event(relabelled, "evt_relabelled")))).json() == {"outcome": "wrong_order"}
    assert (await reload(shop, order.id)).status == "pending_payment"
    assert (await post_event(client, *signed(event(paid_intent, "evt_mine")))).json() == {"outcome": "paid"}


async def test_a_signed_event_for_no_payment_of_ours_is_logged_and_recorded_once(
        shop: Database, client: httpx.AsyncClient, provider: StripeProvider, localstripe: str,
        caplog: pytest.LogCaptureFixture) -> None:
    order = await place(shop)
    # An intent made at the same Stripe account by someone else (another shop, a dashboard test payment): its
    # metadata names a payment id and an order reference we do not have.
    stranger = replace(payments.charge_of(order), payment_id=987654, public_ref="ST-99999-99999")
    created = await provider.create(charge=stranger, method_types=["card"], idempotency_key="stranger-1")
    intent = await pay_at_stripe(localstripe, created.reference)
    caplog.set_level("WARNING", logger="commerce.payments.service")
    body, signature = signed(event(intent, "evt_stranger"))
    answer = await post_event(client, body, signature)
    assert answer.status_code == 200  # a 4xx would make Stripe retry for days: it can never apply here
    assert answer.json() == {"outcome": "ignored"}
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    logged = warnings[0].getMessage()
    assert "evt_stranger" in logged
    assert created.reference in logged
    assert "987654" in logged
    assert str(intent["client_secret"]) not in logged
    assert "ST-99999-99999" not in logged
    assert order.public_ref not in logged
    assert signature.split("v1=")[1] not in logged
    replay = await post_event(client, body, signature)  # Stripe retries: counted as a duplicate, not logged again
    assert replay.json() == {"outcome": "duplicate"}
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1
    async with shop.sessions() as session:
        recorded = (await session.scalars(select(PaymentEvent).where(PaymentEvent.event_id == "evt_stranger"))).all()
    assert [(r.outcome, r.order_id, r.detail["reference"]) for r in recorded] == [("ignored", None, created.reference)]
    assert (await reload(shop, order.id)).status == "pending_payment"
