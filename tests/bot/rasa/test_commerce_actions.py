"""An imported assistant calling ShopTalk's commerce skills as actions (action_shoptalk_order_status)."""
from __future__ import annotations

import json

from bot import BotDeps, InboundMessage, handle_inbound
from commerce.orders import service as orders
from commerce.orders.schemas import OrderIn, OrderLineIn
from commerce.shoppers import service as shoppers
from kit.db import Database
from tests.bot.rasa.test_store_and_channels import _activate_sample


async def place_anna_order(shop: Database) -> str:
    """A shipped order of the shopper behind Telegram user 100001."""
    async with shop.unit_of_work() as session:
        anna = await shoppers.shopper_for_identity(session, kind="telegram", external_id="100001", name="Anna")
        order, _ = await orders.create_order(session, data=OrderIn(
            channel="web", external_id="web-1", currency="EUR", shopper_id=anna.id, email="anna@example.com",
            postcode="10115", country="DE", lines=[OrderLineIn(sku="KET-1", quantity=1)]))
        for status in ("paid", "packed", "shipped"):
            await orders.transition_order(session, order_id=order.id, to_status=status, carrier="DHL",
                                          tracking_number="JD0146000062")
        return order.number


async def _telegram(db: Database, deps: BotDeps, sender: str, text: str, number: int) -> list[str]:
    async with db.unit_of_work() as session:
        result = await handle_inbound(session, InboundMessage(channel="telegram", sender_id=sender,
                                                              message_id=f"{sender}-{number}", text=text), deps=deps)
    return [reply.text for reply in result.replies]


async def test_order_status_only_for_the_orders_owner(shop: Database, bot_deps: BotDeps) -> None:
    number = await place_anna_order(shop)
    await _activate_sample(shop)
    ask = "/ask_order_status" + json.dumps({"order_number": number})
    assert await _telegram(shop, bot_deps, "100001", ask, 1) == [f"Order {number} is shipped."]
    stranger = await _telegram(shop, bot_deps, "200002", ask, 1)
    assert stranger == [f"I can't confirm order {number} belongs to you. A person from our team can help."]
    async with shop.unit_of_work() as session:
        ref = (await orders.get_order_by_number(session, number=number)).public_ref
    by_ref = "/ask_order_status" + json.dumps({"order_number": ref.lower()})
    assert await _telegram(shop, bot_deps, "100001", by_ref, 3) == [f"Order {number} is shipped."]
    # An unknown order gets the stranger's answer: whether an order exists is never revealed.
    assert await _telegram(shop, bot_deps, "200002", '/ask_order_status{"order_number": "999999"}', 2) == [
        "I can't confirm order 999999 belongs to you. A person from our team can help."]
