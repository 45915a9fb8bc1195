"""Paying in the chat: the merchant's methods offered after "Place order", the Stripe link (localstripe) sent once
per order, an offline reference, the shopper told of each status change in their language, the saved address
offered to a returning shopper, and the US summary's duties due on delivery (DAP)."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.deps import BotDeps
from commerce.orders import service as orders
from commerce.payments import service as payments
from commerce.payments.schemas import PaymentMethodIn
from kit.db import Database
from kit.outbox import OutboxEvent
from kit.settings import Settings
from tests.bot.checkout_flow import ADDRESSES, give_address
from tests.bot.conftest import Say, TinyParser, payloads, texts
from tests.commerce.checkout.conftest import localstripe

__all__ = ["localstripe"]


@pytest.fixture
def bot_deps(tiny_parser: TinyParser, tmp_path: Path, localstripe: str) -> BotDeps:
    settings = Settings(data_dir=tmp_path, payments={"stripe_secret_key": "sk_test_local",
                                                     "stripe_api_base": localstripe,
                                                     "public_url": "https://shop.example"})
    return BotDeps(settings=settings, nlu=tiny_parser)


async def offer(db: Database) -> None:
    async with db.unit_of_work() as session:
        await payments.set_method(session, data=PaymentMethodIn(country="*", channel="*", provider="stripe",
                                                                method_types=["card"]))
        await payments.set_method(session, data=PaymentMethodIn(
            country="DE", channel="*", provider="bank_transfer", position=1,
            instructions="IBAN DE89 3704 0044 0532 0130 00"))


async def place(say: Say, sender: str, country: str = "DE", name: str = "Germany") -> str:
    await say(kind="callback", payload="cart:add:KET-1", sender=sender)
    await say("checkout", sender=sender)
    await say(name, sender=sender)
    await say(f"{sender}@example.com", sender=sender)
    await give_address(say, country, sender=sender)
    placed = await say("yes", sender=sender)
    assert "is placed" in texts(placed)
    return str(next(r.custom["order_number"] for r in placed.replies if r.custom and "order_number" in r.custom))


async def test_pay_by_link_once_and_hear_about_it(say: Say, shop: Database) -> None:
    await offer(shop)
    number = await place(say, "payer")
    async with shop.sessions() as session:
        order = await orders.get_order_by_number(session, number=number)
    assert order.expires_at is not None
    link = await say(kind="callback", payload=f"pay:stripe:{number}", sender="payer")
    assert f"Pay €{order.total:.2f} for order #{number} here:\nhttps://shop.example/pay/{order.public_ref}" \
        in texts(link)
    again = await say(kind="callback", payload=f"pay:stripe:{number}", sender="payer")  # a double click
    assert texts(again) == texts(link)
    async with shop.sessions() as session:
        opened = list((await payments.payment_state(session, order_id=order.id))[1])
    assert len(opened) == 1  # one payment intent at Stripe, one charge
    stranger = await say(kind="callback", payload=f"pay:stripe:{number}", sender="stranger")
    assert "https://" not in texts(stranger)  # the link goes to the order's owner only
    status = await say(kind="callback", payload=f"order:status:{number}", sender="payer")
    assert f"pay:choose:{number}" in payloads(status)  # "how do I pay for order N?"
    methods = await say(kind="callback", payload=f"pay:choose:{number}", sender="payer")
    assert payloads(methods) == [f"pay:stripe:{number}", f"pay:bank_transfer:{number}"]
    async with shop.unit_of_work() as session:
        await payments.record_payment(session, provider="stripe", event_id="evt_chat", reference=opened[0].reference,
                                      amount_minor=int(order.total * 100), currency="eur", succeeded=True)
    async with shop.unit_of_work() as session:
        event = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "order.status_changed")
                                       .order_by(OutboxEvent.id.desc()))).first()
        assert event is not None
        from bot.skills.order_status import notify_status_change
        assert await notify_status_change(session, payload=dict(event.payload))
        sent = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "send.telegram")
                                      .order_by(OutboxEvent.id.desc()))).first()
    assert sent is not None
    assert sent.payload["text"] == f"Payment received for order #{number}. Thank you! We'll tell you when it ships."


async def test_bank_transfer_reference_and_the_saved_address(say: Say, shop: Database) -> None:
    await offer(shop)
    number = await place(say, "wire")
    async with shop.sessions() as session:
        order = await orders.get_order_by_number(session, number=number)
    wire = texts(await say(kind="callback", payload=f"pay:bank_transfer:{number}", sender="wire"))
    assert f"quote the reference {order.public_ref}" in wire
    assert "IBAN DE89" in wire
    # Next time the same shopper is offered the address they gave.
    await say(kind="callback", payload="cart:add:KET-1", sender="wire")
    asked = await say("checkout", sender="wire")
    assert "Ship to the same address as last time?\nAnna Schmidt, Unter den Linden 1, 10115 BERLIN" in texts(asked)
    assert payloads(asked) == ["checkout:address:same", "checkout:address:new"]
    summary = await say(kind="callback", payload="checkout:address:same", sender="wire")
    assert "Please check your order" in texts(summary)


async def test_us_duties_are_due_on_delivery_not_charged(say: Say, shop: Database) -> None:
    await say("I'm looking for a teapot", sender="us-dap")
    # The teapot ships from Shenzhen, not to the shop's default destination: the shopper says where they are first.
    await say(kind="callback", payload="country:set:US", sender="us-dap")
    added = await say(kind="callback", payload="cart:add:POT-1:4", sender="us-dap")
    assert "Added 4" in texts(added)
    await say("checkout", sender="us-dap")
    await say("sam@example.com", sender="us-dap")
    summary = await give_address(say, "US", sender="us-dap")
    text = texts(summary)
    assert "Due to the carrier on delivery (our estimate): $" in text
    shipping_line = next(line for line in text.split("\n") if line.startswith("Shipping ("))
    express = next(b.title for r in summary.replies for b in r.buttons if b.payload == "checkout:ship:express")
    faster = texts(await say(kind="callback", payload="checkout:ship:express", sender="us-dap"))
    express_line = next(line for line in faster.split("\n") if line.startswith("Shipping ("))
    assert express.rsplit(": ", 1)[1] == express_line.rsplit(": ", 1)[1]  # the button's price is the line
    assert "Insurance: $" in faster  # on its own line, not folded into shipping
    assert shipping_line != express_line
    placed = await say("yes", sender="us-dap")
    number = next(r.custom["order_number"] for r in placed.replies if r.custom and "order_number" in r.custom)
    async with shop.sessions() as session:
        order = await orders.get_order_by_number(session, number=number)
    assert order.due_on_delivery > 0
    assert order.total == order.subtotal + order.shipping + order.insurance + order.fees + order.duties \
        + order.taxes - order.due_on_delivery
    assert order.incoterm == "DAP"
    assert ADDRESSES["US"][0] == order.recipient


async def test_how_do_i_pay_for_my_order_sends_the_same_link_to_its_owner(say: Say, shop: Database) -> None:
    await offer(shop)
    number = await place(say, "asker")
    first = await say(kind="callback", payload=f"pay:stripe:{number}", sender="asker")
    asked = await say(f"how do I pay for order {number}?", sender="asker")
    assert f"pay:choose:{number}" in payloads(asked)
    chosen = await say(kind="callback", payload=f"pay:choose:{number}", sender="asker")
    again = await say(kind="callback", payload=payloads(chosen)[0], sender="asker")
    assert texts(again) == texts(first)  # the same link: still one payment
    other = await say(f"how do I pay for order {number}?", sender="someone-else")
    assert f"pay:choose:{number}" not in payloads(other)
    assert "https://" not in texts(other)


async def test_a_cancelled_paid_order_tells_the_shopper_what_comes_back_in_their_language(say: Say,
                                                                                       shop: Database) -> None:
    from bot.conversations.models import Conversation
    from bot.skills.order_status import notify_status_change
    from commerce.money import format_money
    from commerce.payments.providers import OfflineProvider

    await offer(shop)
    number = await place(say, "canceller")
    await say(kind="callback", payload=f"pay:bank_transfer:{number}", sender="canceller")
    bank = OfflineProvider("bank_transfer")
    async with shop.unit_of_work() as session:
        order = await orders.get_order_by_number(session, number=number)
        assert await payments.mark_offline_received(session, order_id=order.id, provider=bank,
                                                    reference="SEPA 1", actor="Owner") == "paid"
    async with shop.unit_of_work() as session:
        await payments.cancel_order(session, order_id=order.id, providers=lambda name: bank)
    async with shop.unit_of_work() as session:
        event = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "order.status_changed")
                                       .order_by(OutboxEvent.id.desc()))).first()
        assert event is not None
        assert event.payload["status"] == "cancelled"
        assert await notify_status_change(session, payload=dict(event.payload))
        sent = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "send.telegram")
                                      .order_by(OutboxEvent.id.desc()))).first()
        assert sent is not None
        owed = format_money(order.total, "EUR")
        assert sent.payload["text"] == (f"Order #{number} was cancelled. We owe you {owed}: "
                                        "a member of our team will send it back and tell you when it's done.")
        conversation = await session.scalar(select(Conversation).where(Conversation.sender_id == "canceller"))
        assert conversation is not None
        conversation.locale = "zh"
        await session.flush()
        # The same change told to a Chinese-speaking shopper (a redelivery with another key, to see the text).
        assert await notify_status_change(session, payload={**event.payload, "from_status": "paid-zh"})
        told = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "send.telegram")
                                      .order_by(OutboxEvent.id.desc()))).first()
    assert told is not None
    assert told.payload["text"].startswith(f"订单 #{number} 已取消。我们需退还您 ")
