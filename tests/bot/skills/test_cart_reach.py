"""The cart counts only stock that can reach the shopper, as orders reserve it: the warehouse that ships to the
destination. The test shop's teapot is stocked only in Shenzhen, which ships to Australia, not to Germany (the
shop's default destination)."""
from __future__ import annotations

from dataclasses import replace

from bot import BotDeps, HandleResult, InboundMessage, handle_inbound
from commerce.inventory import service as inventory
from kit.db import Database
from tests.bot.conftest import Say, TinyParser, payloads, texts


async def test_an_add_with_no_destination_says_the_country_judged_and_offers_the_others(say: Say) -> None:
    refused = await say(kind="callback", payload="cart:add:POT-1", sender="reach-1")
    assert "Added" not in texts(refused)
    assert "Glass Teapot" in texts(refused)
    assert "Germany" in texts(refused)
    assert "other destinations" in texts(refused)
    assert "cart:to:AU:add:POT-1:1" in payloads(refused)
    assert "cart:to:GB:add:POT-1:1" not in payloads(refused)  # Rotterdam ships to Britain: no teapot there
    assert "Your cart is empty" in texts(await say(kind="callback", payload="cart:view", sender="reach-1"))
    pressed = await say(kind="callback", payload="cart:to:AU:add:POT-1:1", sender="reach-1")
    assert "delivering to Australia" in texts(pressed)
    assert "Added 1 x Glass Teapot" in texts(pressed)
    assert "POT-1" in texts(await say(kind="callback", payload="cart:view", sender="reach-1"))


async def test_an_add_for_a_known_destination_counts_only_what_ships_there(say: Say) -> None:
    await say(kind="callback", payload="country:set:DE", sender="reach-2")
    refused = await say(kind="callback", payload="cart:add:POT-1", sender="reach-2")
    assert "Added" not in texts(refused)
    assert "can be delivered to Germany" in texts(refused)
    assert not any(p.startswith("cart:to:") for p in payloads(refused))  # the shopper chose: nothing assumed
    assert "Your cart is empty" in texts(await say(kind="callback", payload="cart:view", sender="reach-2"))
    await say(kind="callback", payload="country:set:AU", sender="reach-3")
    assert "Added 1 x Glass Teapot" in texts(await say(kind="callback", payload="cart:add:POT-1", sender="reach-3"))


async def test_an_add_that_succeeds_on_an_assumed_destination_says_so(say: Say) -> None:
    added = await say(kind="callback", payload="cart:add:KET-1", sender="reach-4")
    assert "Added 1 x Electric Kettle" in texts(added)
    assert "for delivery to Germany" in texts(added)
    assert "country:set:DE" in payloads(added)
    await say(kind="callback", payload="country:set:DE", sender="reach-5")
    chosen = await say(kind="callback", payload="cart:add:KET-1", sender="reach-5")
    assert "Added 1 x Electric Kettle" in texts(chosen)
    assert not any(p.startswith("country:set:") for p in payloads(chosen))


async def test_more_of_a_cart_line_counts_only_what_ships_there(say: Say, shop: Database) -> None:
    async with shop.unit_of_work() as session:  # one kettle in Rotterdam (ships to Germany), five in Shenzhen
        await inventory.set_stock(session, sku="KET-1", location="RTM", on_hand=1)
        await inventory.set_stock(session, sku="KET-1", location="SZX", on_hand=5)
    await say(kind="callback", payload="country:set:DE", sender="reach-6")
    assert "Added 1 x" in texts(await say(kind="callback", payload="cart:add:KET-1", sender="reach-6"))
    more = await say(kind="callback", payload="cart:set:KET-1:2", sender="reach-6")
    assert "only 1" in texts(more)
    assert "Germany" in texts(more)
    assert "1 x Electric Kettle" in texts(await say(kind="callback", payload="cart:view", sender="reach-6"))
    again = await say(kind="callback", payload="cart:add:KET-1", sender="reach-6")  # the add counts the same
    assert "Added" not in texts(again)


async def test_an_offer_to_add_counts_only_what_ships_there(shop: Database, bot_deps: BotDeps,
                                                             tiny_parser: TinyParser, say: Say) -> None:
    async def read_as_add_to_cart(text: str, sender: str) -> HandleResult:
        parsed = replace(await tiny_parser.parse(text), intent="add_to_cart", confidence=0.9)
        inbound = InboundMessage(channel="telegram", sender_id=sender, message_id=f"{sender}-{text}", kind="text",
                                 text=text)
        async with shop.unit_of_work() as session:
            return await handle_inbound(session, inbound, deps=bot_deps, parsed=parsed)

    await say(kind="callback", payload="country:set:DE", sender="reach-7")
    await say(kind="callback", payload="product:details:2", sender="reach-7")
    asked = await read_as_add_to_cart("can i get one of these?", "reach-7")
    assert "Glass Teapot" in texts(asked)
    assert "in stock" not in texts(asked)
    assert "cart:add:POT-1:1" not in payloads(asked)
    await say(kind="callback", payload="product:details:2", sender="reach-8")  # no destination known
    assumed = await read_as_add_to_cart("can i get one of these?", "reach-8")
    assert "cart:to:AU:offer:POT-1:1" in payloads(assumed)
    offered = await say(kind="callback", payload="cart:to:AU:offer:POT-1:1", sender="reach-8")
    assert "I haven't put anything in your cart" in texts(offered)
    assert "cart:add:POT-1:1" in payloads(offered)


async def test_a_cart_country_button_refuses_what_is_not_a_country_or_an_action(say: Say) -> None:
    for payload in ("cart:to:Germany:add:POT-1:1", "cart:to:AU:buy:POT-1:1", "cart:to:AU:add:POT-1:x"):
        refused = await say(kind="callback", payload=payload, sender="reach-9")
        assert "Added" not in texts(refused)
    assert "Your cart is empty" in texts(await say(kind="callback", payload="cart:view", sender="reach-9"))


async def test_a_later_search_page_counts_only_what_ships_there(say: Say, shop: Database, bot_deps: BotDeps) -> None:
    one_per_page = replace(bot_deps, page_size=1)
    async with shop.unit_of_work() as session:
        await inventory.set_stock(session, sku="KET-TRAVEL", location="RTM", on_hand=2)
    await say(kind="callback", payload="country:set:DE", sender="reach-10")
    first = await say("I am looking for a kettle", sender="reach-10", deps=one_per_page)
    [shown] = [c.sku for r in first.replies for c in r.cards]
    other = "KET-TRAVEL" if shown == "KET-1" else "KET-1"
    async with shop.unit_of_work() as session:  # moved to Shenzhen, which does not ship to Germany
        await inventory.set_stock(session, sku=other, location="RTM", on_hand=0)
        await inventory.set_stock(session, sku=other, location="SZX", on_hand=4)
    later = await say(kind="callback", payload="search:page:2", sender="reach-10", deps=one_per_page)
    assert [c.sku for r in later.replies for c in r.cards] == []


async def test_a_destination_button_under_a_refused_add_adds_what_was_pressed_not_the_whole_line(
        say: Say, shop: Database) -> None:
    async with shop.unit_of_work() as session:  # one kettle in Rotterdam (ships to Germany), five in Shenzhen
        await inventory.set_stock(session, sku="KET-1", location="RTM", on_hand=1)
        await inventory.set_stock(session, sku="KET-1", location="SZX", on_hand=5)
    assert "Added 1 x" in texts(await say(kind="callback", payload="cart:add:KET-1", sender="reach-11"))
    refused = await say(kind="callback", payload="cart:add:KET-1", sender="reach-11")  # a second: 2 for Germany
    assert "Added" not in texts(refused)
    assert "cart:to:AU:add:KET-1:1" in payloads(refused)
    pressed = await say(kind="callback", payload="cart:to:AU:add:KET-1:1", sender="reach-11")
    assert "Added 1 x Electric Kettle" in texts(pressed)
    assert "2 x Electric Kettle" in texts(await say(kind="callback", payload="cart:view", sender="reach-11"))
