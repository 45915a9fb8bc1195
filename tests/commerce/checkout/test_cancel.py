"""Cancelling a paid order not yet shipped gives the money back, not only the stock (issue 23): Stripe refunds
through localstripe, once however often "Cancel" is pressed; Stripe down leaves nothing half-done; Telegram and
offline payments leave a refund owed and the order flagged for a person; a shipped order cannot be cancelled;
the shopper is told once, with the amount, in their language."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import Any, cast
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import func, select, update

from api.app import create_app
from api.auth import create_token
from api.models import AuditEvent
from api.workers.payments import outbox_handlers
from bot import i18n
from commerce.orders import service as orders
from commerce.orders.errors import IllegalTransition
from commerce.orders.models import Order
from commerce.payments import service as payments
from commerce.payments.errors import PaymentNotPossible, ProviderUnavailable
from commerce.payments.models import Payment, PaymentRefund
from commerce.payments.providers import PaymentProvider, StripeProvider, TelegramProvider, provider_for
from kit.db import Database
from kit.outbox import Handler, OutboxEvent, OutboxWorker
from kit.settings import Settings
from tests.api.test_backoffice import make_account, signed_in
from tests.commerce.checkout.conftest import NOW, signed, stripe_losing_first, stripe_settings
from tests.commerce.checkout.test_backoffice_orders import wire_order
from tests.commerce.checkout.test_payments import event, open_at_stripe, pay_at_stripe, place, post_event, stripe_client
from tests.commerce.checkout.test_refunds import on_hand, paid_order
from tests.http import app_client


@pytest.fixture
def settings(localstripe: str) -> Settings:
    return stripe_settings(localstripe)


@pytest.fixture
async def client(shop: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings, database=shop)) as http:
        yield http


async def paid_at_stripe(db: Database, client: httpx.AsyncClient, localstripe: str,
                         external_id: str) -> tuple[Order, dict[str, Any]]:
    provider = StripeProvider(secret_key="sk_test_local", pay_page_url="https://shop.example", api_base=localstripe)
    order = await place(db, sku="TEE-1", quantity=2, country="DE", currency="EUR", external_id=external_id)
    payment = await open_at_stripe(db, order.id, provider)
    intent = await pay_at_stripe(localstripe, payment.reference)
    answer = await post_event(client, *signed(event(intent, f"evt_{external_id}")))
    assert answer.json() == {"outcome": "paid"}
    async with db.sessions() as session:
        return await orders.get_order(session, order_id=order.id), intent


async def cancelled_events(db: Database, order_id: int) -> list[OutboxEvent]:
    async with db.sessions() as session:
        rows = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic.in_(
            [orders.STATUS_CHANGED_TOPIC, payments.REFUNDED_TOPIC])).order_by(OutboxEvent.id))).all()
    return [e for e in rows if e.payload["order_id"] == order_id and e.payload["status"] in ("cancelled", "refund")]


async def test_cancelling_a_stripe_paid_order_refunds_it_once(shop: Database, client: httpx.AsyncClient,
                                                             localstripe: str) -> None:
    order, intent = await paid_at_stripe(shop, client, localstripe, "chat:31:a")
    assert await on_hand(shop, "TEE-1") == 3
    async with shop.unit_of_work() as session:
        token = await create_token(session, name="merchant", role="merchant")
    auth = {"Authorization": f"Bearer {token}"}
    first = await client.post(f"/api/v1/orders/{order.id}/transitions", headers=auth,
                              json={"status": "cancelled", "note": "out of stock at the warehouse"})
    assert first.status_code == 200, first.text
    again = await client.post(f"/api/v1/orders/{order.id}/transitions", headers=auth, json={"status": "cancelled"})
    assert again.status_code == 200, again.text  # a double click: the same cancelled order, nothing more
    assert first.json()["status"] == again.json()["status"] == "cancelled"
    state = (await client.get(f"/api/v1/orders/{order.id}/payments", headers=auth)).json()
    assert [(Decimal(r["amount"]), r["status"], r["provider_ref"][:3]) for r in state["refunds"]] == \
        [(order.total, "done", "re_")]
    assert Decimal(state["amount_refunded"]) == order.total
    assert state["attention"] is None
    latest = intent["latest_charge"]
    charge = await stripe_client(localstripe).v1.charges.retrieve_async(
        latest["id"] if isinstance(latest, dict) else str(latest))
    assert charge.amount_refunded == int(order.total * 100)  # Stripe gave it back, once
    assert await on_hand(shop, "TEE-1") == 5  # and the units are back
    told = await cancelled_events(shop, order.id)
    assert [(e.payload["status"], e.payload.get("notice"), Decimal(e.payload.get("amount", "0"))) for e in told] \
        == [("cancelled", "cancelled_refund", order.total)]  # one message: cancelled and refunded
    async with shop.sessions() as session:
        audited = await session.scalar(select(func.count()).select_from(AuditEvent)
                                       .where(AuditEvent.action == "order cancel refund"))
    assert audited == 1


async def test_stripe_down_leaves_the_paid_order_as_it_was(shop: Database, client: httpx.AsyncClient,
                                                           localstripe: str, settings: Settings) -> None:
    order, _ = await paid_at_stripe(shop, client, localstripe, "chat:32:a")
    down = StripeProvider(secret_key="sk_test_local", pay_page_url="https://shop.example",
                          api_base="http://127.0.0.1:9", timeout_seconds=2)
    with pytest.raises(ProviderUnavailable):
        async with shop.unit_of_work() as session:
            await payments.cancel_order(session, order_id=order.id, providers=lambda name: down)
    async with shop.sessions() as session:
        kept, _, refunds = await payments.payment_state(session, order_id=order.id)
    assert (kept.status, kept.amount_refunded, refunds) == ("paid", Decimal(0), [])  # nothing half-done
    assert await on_hand(shop, "TEE-1") == 3
    assert await cancelled_events(shop, order.id) == []
    async with shop.unit_of_work() as session:  # Stripe is back: "try again" works, once
        cancelled, row, now = await payments.cancel_order(
            session, order_id=order.id, providers=lambda name: provider_for(name, settings.payments))
    assert (cancelled.status, now) == ("cancelled", True)
    assert row is not None
    assert row.amount == order.total
    assert row.status == "done"
    assert await on_hand(shop, "TEE-1") == 5


async def test_a_telegram_payment_is_owed_and_flagged_and_the_shopper_told(shop: Database,
                                                                          client: httpx.AsyncClient) -> None:
    telegram: PaymentProvider = TelegramProvider()
    order = await place(shop, sku="TEE-1", quantity=1, country="DE", currency="EUR", external_id="chat:33:a")
    async with shop.unit_of_work() as session:
        payment = await payments.start_payment(session, order_id=order.id, provider=telegram)
        assert await payments.record_payment(session, provider="telegram", event_id="tg-charge-1",
                                             reference=payment.reference, amount_minor=int(order.total * 100),
                                             currency="EUR", succeeded=True, charge_id="tg-charge-1") == "paid"
    async with shop.unit_of_work() as session:
        cancelled, row, _ = await payments.cancel_order(session, order_id=order.id, providers=lambda name: telegram,
                                                        note="shopper asked", actor="Owner")
    assert row is not None
    assert (row.status, row.amount, row.provider_ref) == ("owed", order.total, None)
    assert cancelled.status == "cancelled"
    assert cancelled.attention is not None
    assert cancelled.attention.startswith(f"Refund owed: €{order.total:,.2f} for telegram payment")
    assert payment.reference in cancelled.attention  # the person finds the payment to refund by hand
    told = await cancelled_events(shop, order.id)
    assert [e.payload.get("notice") for e in told] == ["cancelled_refund_owed"]
    async with shop.unit_of_work() as session:
        token = await create_token(session, name="merchant", role="merchant")
    auth = {"Authorization": f"Bearer {token}"}
    wrong = await client.post(f"/api/v1/orders/{order.id}/refunds/{row.id + 99}/sent", headers=auth,
                              json={"reference": "x"})
    assert wrong.status_code == 409
    sent = await client.post(f"/api/v1/orders/{order.id}/refunds/{row.id}/sent", headers=auth,
                             json={"reference": "refunded in the provider's dashboard: tg-re-77"})
    assert sent.status_code == 200, sent.text
    assert [(r["status"], r["provider_ref"]) for r in sent.json()["refunds"]] == \
        [("done", "refunded in the provider's dashboard: tg-re-77")]
    assert sent.json()["attention"] is None
    for locale in i18n.LANGUAGES:  # every catalog says it
        assert i18n.has_text(locale, "notify.cancelled_refund_owed")
        assert i18n.has_text(locale, "notify.cancelled_refund")


async def test_unpaid_and_shipped_orders(shop: Database) -> None:
    unpaid = await place(shop, sku="TEE-1", quantity=1, country="DE", currency="EUR", external_id="chat:34:a")
    async with shop.unit_of_work() as session:
        invoice = await payments.start_payment(session, order_id=unpaid.id, provider=TelegramProvider())
    async with shop.unit_of_work() as session:
        cancelled, row, _ = await payments.cancel_order(session, order_id=unpaid.id,
                                                        providers=lambda name: TelegramProvider())
    assert (cancelled.status, row) == ("cancelled", None)
    async with shop.sessions() as session:  # the invoice sent before can no longer be paid
        assert await payments.check_before_charge(session, provider="telegram", reference=invoice.reference,
                                                  amount_minor=int(unpaid.total * 100), currency="EUR") == \
            "not_pending"
        assert [p.status for p in (await payments.payment_state(session, order_id=unpaid.id))[1]] == ["expired"]
    assert [e.payload.get("notice") for e in await cancelled_events(shop, unpaid.id)] == [None]  # plain message
    shipped = await paid_order(shop, lines=[("JKT-1", 1)], external_id="chat:34:b")  # fulfilled and delivered
    with pytest.raises(IllegalTransition) as refused:
        async with shop.unit_of_work() as session:
            await payments.cancel_order(session, order_id=shipped.id, providers=lambda name: TelegramProvider())
    assert "Refund it as a return instead" in refused.value.detail
    async with shop.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(PaymentRefund)) == 0


async def test_back_office_cancel_of_a_paid_transfer_owes_the_refund(shop: Database) -> None:
    settings = Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"})
    order = await wire_order(shop)
    async with app_client(create_app(settings, database=shop)) as client:
        await make_account(shop, "olga@shop.test", "owner")
        csrf = await signed_in(client, "olga@shop.test")
        received = await client.post(f"/backoffice/orders/{order.id}/offline-received",
                                     data={"csrf_token": csrf, "reference": "SEPA 0042"})
        assert received.status_code == 303, received.text
        for _ in range(2):  # a double submit
            cancel = await client.post(f"/backoffice/orders/{order.id}/status",
                                       data={"csrf_token": csrf, "to_status": "cancelled", "note": "customer"})
            assert cancel.status_code in (303, 409), cancel.text
        page = await client.get(f"/backoffice/orders/{order.id}")
        assert "owed: send it by hand" in page.text
        assert "Refund owed" in page.text
        async with shop.sessions() as session:
            owed = (await payments.payment_state(session, order_id=order.id))[2][0]
        blank = await client.post(f"/backoffice/orders/{order.id}/refunds/{owed.id}/sent",
                                  data={"csrf_token": csrf, "reference": " "})
        assert blank.status_code == 422
        assert "Give the reference of the refund you sent" in blank.text
        for _ in range(2):  # sent by hand, marked twice
            sent = await client.post(f"/backoffice/orders/{order.id}/refunds/{owed.id}/sent",
                                     data={"csrf_token": csrf, "reference": "SEPA back 0043"})
            assert sent.status_code == 303, sent.text
            assert unquote(sent.headers["location"]).endswith(
                f"notice=Refund of ${order.total:,.2f} on order #{order.number} marked sent.")  # a USD order
        after = await client.get(f"/backoffice/orders/{order.id}")
    assert "owed: send it by hand" not in after.text
    assert "Refund owed" not in after.text  # the flag is gone
    async with shop.sessions() as session:
        final, _, refunds = await payments.payment_state(session, order_id=order.id)
        audited = (await session.scalars(select(AuditEvent).where(AuditEvent.action == "order cancelled"))).all()
        marked = (await session.scalars(select(AuditEvent).where(AuditEvent.action == "refund sent"))).all()
    assert final.status == "cancelled"
    assert final.attention is None
    assert [(r.amount, r.status, r.provider_ref) for r in refunds] == [(order.total, "done", "SEPA back 0043")]
    assert len(audited) == 1
    assert audited[0].details["refund_status"] == "owed"
    assert len(marked) == 1  # marked twice, audited once
    told = await cancelled_events(shop, order.id)
    assert [(e.payload["status"], e.payload.get("notice")) for e in told] == \
        [("cancelled", "cancelled_refund_owed"), ("refund", None)]  # owed, then sent
    assert await on_hand(shop, "TEE-1") == 5
    assert await on_hand(shop, "JKT-1") == 5


@pytest.fixture
async def lossy_refunds(localstripe: str) -> AsyncIterator[tuple[str, list[str]]]:
    """The answer to the first "create refund" is lost: Stripe refunds, the caller times out and rolls back."""
    async with stripe_losing_first(localstripe, "POST /v1/refunds") as proxy:
        yield proxy


async def test_a_refund_whose_answer_was_lost_is_not_made_twice(shop: Database, client: httpx.AsyncClient,
                                                                localstripe: str,
                                                                lossy_refunds: tuple[str, list[str]]) -> None:
    order, intent = await paid_at_stripe(shop, client, localstripe, "chat:35:a")
    base, seen = lossy_refunds
    lossy = StripeProvider(secret_key="sk_test_local", pay_page_url="https://shop.example", api_base=base,
                           timeout_seconds=1.0)
    with pytest.raises(ProviderUnavailable):
        async with shop.unit_of_work() as session:
            await payments.cancel_order(session, order_id=order.id, providers=lambda name: lossy)
    async with shop.sessions() as session:  # our side: nothing happened
        assert (await orders.get_order(session, order_id=order.id)).status == "paid"
    async with shop.unit_of_work() as session:  # the merchant tries again
        cancelled, row, _ = await payments.cancel_order(session, order_id=order.id, providers=lambda name: lossy)
    assert cancelled.status == "cancelled"
    assert row is not None
    assert seen.count("POST /v1/refunds") == 1  # found by its key, not made again
    refunds = await stripe_client(localstripe).v1.refunds.list_async(params={"payment_intent": intent["id"]})
    assert [r.id for r in refunds.data] == [row.provider_ref]
    assert sum(r.amount for r in refunds.data) == int(order.total * 100)


async def intent_status(localstripe: str, reference: str) -> str:
    return str((await stripe_client(localstripe).v1.payment_intents.retrieve_async(reference)).status)


async def test_cancelling_an_unpaid_order_cancels_its_stripe_intent_once(shop: Database, client: httpx.AsyncClient,
                                                                        localstripe: str,
                                                                        settings: Settings) -> None:
    provider = StripeProvider(secret_key="sk_test_local", pay_page_url="https://shop.example", api_base=localstripe)
    order = await place(shop, sku="TEE-1", quantity=1, country="DE", currency="EUR", external_id="chat:36:a")
    opened = await open_at_stripe(shop, order.id, provider)  # the pay page opened it: an intent at Stripe
    lost = await place(shop, sku="TEE-1", quantity=1, country="DE", currency="EUR", external_id="chat:36:b")
    async with shop.unit_of_work() as session:
        creating = await payments.start_payment(session, order_id=lost.id, provider=provider)
    # Stripe made this one but its answer never reached us: our row still says creating.
    made = await provider.create(charge=replace(payments.charge_of(lost), payment_id=creating.id),
                                 method_types=["card"], idempotency_key=str(creating.idempotency_key))
    for placed in (order, lost):
        async with shop.unit_of_work() as session:
            cancelled, _, _ = await payments.cancel_order(session, order_id=placed.id,
                                                          providers=lambda name: provider)
        assert cancelled.status == "cancelled"
    queued = await cancel_events(shop)
    assert sorted(e.payload["payment_id"] for e in queued) == [opened.id, creating.id]
    # Stripe down when the worker gets to it: the order stays cancelled, the intent's cancel is retried.
    down = stripe_settings("http://127.0.0.1:9").model_copy(deep=True)
    down.payments.timeout_seconds = 2
    assert await OutboxWorker(shop.sessions, cancel_handler(down, shop)).run_once() == 2
    waiting = await cancel_events(shop)
    assert {(e.status, e.attempts) for e in waiting} == {("pending", 1)}
    assert all("ProviderUnavailable" in str(e.last_error) for e in waiting)
    assert [await intent_status(localstripe, ref) for ref in (opened.reference, made.reference)] == \
        ["requires_payment_method"] * 2
    async with shop.sessions() as session:
        assert {(await orders.get_order(session, order_id=o.id)).status for o in (order, lost)} == {"cancelled"}
    async with shop.unit_of_work() as session:  # due again
        await session.execute(update(OutboxEvent).where(OutboxEvent.topic == payments.CANCEL_INTENT_TOPIC)
                              .values(next_attempt_at=NOW))
    assert await OutboxWorker(shop.sessions, cancel_handler(settings, shop)).run_once() == 2
    assert {e.status for e in await cancel_events(shop)} == {"delivered"}
    assert [await intent_status(localstripe, ref) for ref in (opened.reference, made.reference)] == \
        ["canceled"] * 2  # the shopper can no longer pay either link
    handle = cancel_handler(settings, shop)[payments.CANCEL_INTENT_TOPIC]
    for again in await cancel_events(shop):  # delivered twice (a lease expired): nothing more, no error
        await handle(again)
    assert await intent_status(localstripe, opened.reference) == "canceled"


async def test_a_payment_made_before_the_intent_was_cancelled_is_flagged_late(
        shop: Database, client: httpx.AsyncClient, localstripe: str, settings: Settings) -> None:
    provider = StripeProvider(secret_key="sk_test_local", pay_page_url="https://shop.example", api_base=localstripe)
    order = await place(shop, sku="TEE-1", quantity=1, country="DE", currency="EUR", external_id="chat:37:a")
    opened = await open_at_stripe(shop, order.id, provider)
    async with shop.unit_of_work() as session:
        await payments.cancel_order(session, order_id=order.id, providers=lambda name: provider)
    intent = await pay_at_stripe(localstripe, opened.reference)  # paid before the worker cancelled the intent
    assert await OutboxWorker(shop.sessions, cancel_handler(settings, shop)).run_once() == 1
    assert [e.status for e in await cancel_events(shop)] == ["delivered"]  # not retried for ever
    assert await intent_status(localstripe, opened.reference) == "succeeded"
    assert (await post_event(client, *signed(event(intent, "evt_paid_after_cancel")))).json() == {"outcome": "late"}
    async with shop.sessions() as session:
        late = await orders.get_order(session, order_id=order.id)
    assert late.status == "cancelled"
    assert late.attention is not None
    assert "refund" in late.attention


def cancel_handler(settings: Settings, db: Database) -> dict[str, Handler]:
    """The worker's handler for intent cancellations (and no other topic, so the test's worker sends nothing else)."""
    return {payments.CANCEL_INTENT_TOPIC: outbox_handlers(settings, db)[payments.CANCEL_INTENT_TOPIC]}


async def cancel_events(db: Database) -> list[OutboxEvent]:
    async with db.sessions() as session:
        return list((await session.scalars(select(OutboxEvent).where(
            OutboxEvent.topic == payments.CANCEL_INTENT_TOPIC).order_by(OutboxEvent.id))).all())


class HeldCreate:
    """A Stripe provider whose `create` waits at a gate before reaching Stripe: the test decides what happens while
    the pay page is still calling Stripe (no sleeps, no timing)."""

    def __init__(self, inner: StripeProvider) -> None:
        self.inner, self.name, self.remote = inner, inner.name, inner.remote
        self.calling, self.go = asyncio.Event(), asyncio.Event()

    async def create(self, *, charge: Any, method_types: list[str], idempotency_key: str) -> Any:
        self.calling.set()
        await self.go.wait()
        return await self.inner.create(charge=charge, method_types=method_types, idempotency_key=idempotency_key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_an_intent_made_while_its_order_was_cancelled_does_not_stay_open(
        shop: Database, client: httpx.AsyncClient, localstripe: str, settings: Settings) -> None:
    stripe = StripeProvider(secret_key="sk_test_local", pay_page_url="https://shop.example", api_base=localstripe)
    held = HeldCreate(stripe)
    order = await place(shop, sku="TEE-1", quantity=1, country="DE", currency="EUR", external_id="chat:38:a")
    async with shop.unit_of_work() as session:  # "Pay" in the chat: the row, committed, not yet at Stripe
        creating = await payments.start_payment(session, order_id=order.id, provider=stripe)
    # The pay page opens it: complete_payment checked the order and is now calling Stripe.
    opening = asyncio.create_task(payments.complete_payment(shop, payment_id=creating.id,
                                                            provider=cast(PaymentProvider, held)))
    await held.calling.wait()
    async with shop.unit_of_work() as session:  # meanwhile a person cancels the order
        await payments.cancel_order(session, order_id=order.id, providers=lambda name: stripe)
    # The worker closes the payment at Stripe before Stripe made the intent: nothing to find, nothing cancelled.
    assert await OutboxWorker(shop.sessions, cancel_handler(settings, shop)).run_once() == 1
    held.go.set()  # now Stripe makes the intent and answers
    with pytest.raises(PaymentNotPossible):
        await opening  # the pay page says the order can no longer be paid
    made = [i for i in (await stripe_client(localstripe).v1.payment_intents.list_async(params={"limit": 100})).data
            if i.metadata and i.metadata.to_dict().get("order_ref") == order.public_ref]
    assert len(made) == 1
    assert await OutboxWorker(shop.sessions, cancel_handler(settings, shop)).run_once() == 1
    assert await intent_status(localstripe, made[0].id) == "canceled"  # the link can no longer be paid
    async with shop.sessions() as session:
        payment = await session.get(Payment, creating.id)
        assert payment is not None
        assert (payment.status, payment.reference) == ("expired", made[0].id)  # a webhook for it finds it
        assert (await orders.get_order(session, order_id=order.id)).status == "cancelled"
    assert await OutboxWorker(shop.sessions, cancel_handler(settings, shop)).run_once() == 0  # nothing left over


async def test_two_pay_page_loads_racing_leave_one_open_intent(
        shop: Database, localstripe: str, settings: Settings) -> None:
    # localstripe ignores idempotency keys: both loads reach Stripe for the same payment and each gets an intent.
    stripe = StripeProvider(secret_key="sk_test_local", pay_page_url="https://shop.example", api_base=localstripe)
    first, second = HeldCreate(stripe), HeldCreate(stripe)
    order = await place(shop, sku="TEE-1", quantity=1, country="DE", currency="EUR", external_id="chat:39:a")
    async with shop.unit_of_work() as session:
        creating = await payments.start_payment(session, order_id=order.id, provider=stripe)
    loads = [asyncio.create_task(payments.complete_payment(shop, payment_id=creating.id,
                                                           provider=cast(PaymentProvider, held)))
             for held in (first, second)]
    await first.calling.wait()
    await second.calling.wait()  # both loads saw the payment `creating` and are calling Stripe
    first.go.set()
    opened = await loads[0]
    second.go.set()
    again = await loads[1]
    assert (again.id, again.status, again.reference) == (opened.id, "pending", opened.reference)  # one intent shown
    made = [i for i in (await stripe_client(localstripe).v1.payment_intents.list_async(params={"limit": 100})).data
            if i.metadata and i.metadata.to_dict().get("order_ref") == order.public_ref]
    assert len(made) == 2
    assert await OutboxWorker(shop.sessions, cancel_handler(settings, shop)).run_once() == 1
    assert await intent_status(localstripe, opened.reference) != "canceled"  # the one both pages show stays payable
    [extra] = [i.id for i in made if i.id != opened.reference]
    assert await intent_status(localstripe, extra) == "canceled"
    async with shop.sessions() as session:
        payment = await session.get(Payment, creating.id)
        assert payment is not None
        assert (payment.status, payment.reference) == ("pending", opened.reference)
        assert (await orders.get_order(session, order_id=order.id)).status == "pending_payment"
