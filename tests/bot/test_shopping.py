"""Search -> add to cart -> checkout -> order, in English and Chinese, driven through handle_inbound."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, update

from bot import HandleResult
from commerce.catalog import service as catalog
from commerce.cross_border.models import ReturnPolicy
from commerce.inventory import service as inventory
from commerce.orders import service as orders
from kit.db import Database
from kit.outbox import OutboxEvent
from tests.bot.checkout_flow import ADDRESSES, give_address
from tests.bot.conftest import Say, payloads, texts


async def test_search_add_to_cart_and_checkout_in_english(say: Say, shop: Database) -> None:
    found = await say("I am looking for a kettle")
    assert [c.sku for r in found.replies for c in r.cards] == ["KET-1"]  # the sold-out travel kettle is hidden
    assert "cart:add:KET-1" in payloads(found)
    assert found.replies[0].cards[0].price_text == "€49.90"

    added = await say(kind="callback", payload="cart:add:KET-1")
    assert "Added 1 x Electric Kettle 1.7 L" in texts(added)

    asked = await say("checkout")
    assert "Which country" in texts(asked)
    assert "e-mail" in texts(await say("Germany"))
    assert "recipient's full name" in texts(await say("anna@example.com"))
    assert "street address in Germany" in texts(await say("Anna Schmidt"))
    assert "city" in texts(await say("Unter den Linden 1"))
    assert "postcode? (for example" in texts(await say("Berlin"))
    wrong = await say("1011")  # German postcodes have five digits: the error names the format
    assert "The postcode isn't valid for Germany. Expected:" not in texts(wrong)  # asked after the phone
    assert "phone number" in texts(wrong)
    refused = await say("030 1234567")
    assert "The postcode isn't valid for Germany. Expected: " in texts(refused)
    assert "What is the postcode? (for example" in texts(refused)
    summary = await say("10115")
    assert "Please check your order" in texts(summary)
    assert "- 1 x Electric Kettle 1.7 L (black, KET-1): €49.90\nGoods: €49.90\n" \
           "Shipping (Standard (tracked parcel), 2-5 working days): €" in texts(summary)
    assert "Duties and import taxes are included: nothing to pay on delivery." in texts(summary)
    assert "Deliver to: Anna Schmidt, Unter den Linden 1, 10115 BERLIN, DE, +49301234567" in texts(summary)
    assert "Confirmation to anna@example.com." in texts(summary)
    titles = [b.title for b in summary.replies[-1].buttons]
    assert titles[0] == "Place order"
    assert titles[-1] == "Change cart"
    assert titles[1].startswith("Express (insured courier), 1-2 days: €")  # Germany's other delivery service
    assert payloads(summary)[1:] == ["checkout:ship:express", "checkout:address:new", "cart:view"]
    assert len(payloads(summary)[0].encode()) <= 64
    async with shop.unit_of_work() as session:  # nothing reserved before the shopper confirms
        assert (await inventory.available_stock(session, skus=["KET-1"]))["KET-1"] == 10
    placed = await say("yes")
    assert "Order #" in texts(placed)
    assert "awaiting payment" in texts(placed)
    number = next(r.custom["order_number"] for r in placed.replies if r.custom and "order_number" in r.custom)

    async with shop.unit_of_work() as session:
        order = await orders.get_order_by_number(session, number=number)
        assert order.status == "pending_payment"
        assert order.currency == "EUR"
        assert order.country == "DE"
        assert order.email == "anna@example.com"
        assert [(line.sku, line.quantity, line.reservation_id is not None) for line in order.lines] == [
            ("KET-1", 1, True)]
        assert order.total == order.subtotal + order.shipping + order.insurance + order.duties + order.taxes
        assert order.due_on_delivery == 0
        assert order.address is not None
        assert order.recipient == "Anna Schmidt"
        assert order.shipping > 0
        assert (await inventory.available_stock(session, skus=["KET-1"]))["KET-1"] == 9
    cart = await say("show my cart")
    assert "Your cart is empty" in texts(cart)


async def test_search_add_to_cart_and_checkout_in_chinese(say: Say, shop: Database) -> None:
    found = await say("有水壶吗", sender="zh-1")
    assert "KET-1" in [c.sku for r in found.replies for c in r.cards]
    assert "为您找到" in texts(found)
    assert found.replies[0].cards[0].title == "电热水壶 1.7升"

    added = await say(kind="callback", payload="cart:add:KET-1", sender="zh-1")
    assert "已将 1 件 电热水壶 1.7升 加入购物车" in texts(added)  # a button press keeps the language
    assert "哪个国家" in texts(await say("结账", sender="zh-1"))
    assert "邮箱" in texts(await say("德国", sender="zh-1"))
    assert "收件人" in texts(await say("li.wei@example.com", sender="zh-1"))
    summary = await give_address(say, "DE", sender="zh-1")
    assert "下单前请核对您的订单" in texts(summary)
    assert "收货地址：Anna Schmidt, Unter den Linden 1, 10115 BERLIN" in texts(summary)
    assert "关税和进口税已包含在内" in texts(summary)
    titles = [b.title for b in summary.replies[-1].buttons]
    assert titles[0] == "下单"
    assert titles[-1] == "修改购物车"
    assert titles[1].startswith("特快（保价快递），1-2 天：€")
    placed = await say("确认", sender="zh-1")
    assert "已提交" in texts(placed)
    number = next(r.custom["order_number"] for r in placed.replies if r.custom and "order_number" in r.custom)
    async with shop.unit_of_work() as session:
        order = await orders.get_order_by_number(session, number=number)
        assert order.status == "pending_payment"
        assert order.country == "DE"
        assert (await inventory.available_stock(session, skus=["KET-1"]))["KET-1"] == 9


async def test_checkout_in_the_shoppers_currency(say: Say, shop: Database) -> None:
    await say("I'm looking for a teapot", sender="us-1")
    # Stocked only in Shenzhen, which does not ship to Germany (assumed): the shopper says where it goes first.
    await say(kind="callback", payload="country:set:US", sender="us-1")
    assert "Added 1 x Glass Teapot" in texts(await say(kind="callback", payload="cart:add:POT-1", sender="us-1"))
    assert "e-mail" in texts(await say("checkout", sender="us-1"))  # the country is known
    await say("sam@example.com", sender="us-1")
    summary = await give_address(say, "US", sender="us-1")
    assert "Pay now: $" in texts(summary)
    placed = await say("yes", sender="us-1")
    number = next(r.custom["order_number"] for r in placed.replies if r.custom and "order_number" in r.custom)
    async with shop.unit_of_work() as session:
        order = await orders.get_order_by_number(session, number=number)
    assert order.currency == "USD"
    assert order.lines[0].unit_price != Decimal("24.00")  # converted from EUR at the shop's rate
    assert "$" in texts(placed)


async def test_filters_from_entities_and_paging(say: Say, shop: Database) -> None:
    red = await say("do you have a red hoodie in large?")
    assert [c.sku for r in red.replies for c in r.cards] == ["HOOD-RED-L"]
    everything = await say("I'm looking for tea things")
    skus = [c.sku for r in everything.replies for c in r.cards]
    assert "KET-1" in skus
    assert "POT-1" not in skus  # stocked only in Shenzhen, which ships to Asia-Pacific and the Americas, not DE
    cheap = await say("kettle under 30 euros")
    assert [c.sku for r in cheap.replies for c in r.cards] == []
    assert "couldn't find" in texts(cheap)


async def test_replies_are_queued_in_the_outbox(say: Say, shop: Database) -> None:
    result = await say("hello")
    async with shop.unit_of_work() as session:
        events = list((await session.scalars(select(OutboxEvent))).all())
    assert [e.idempotency_key for e in events] == [f"msg:{r.message_id}" for r in result.replies]
    assert all(e.topic == "send.telegram" for e in events)
    assert events[0].payload["text"] == result.replies[0].text
    assert events[0].payload["conversation_id"] == result.conversation_id


async def test_shopper_searches_feed_the_merchants_search_report(say: Say, shop: Database) -> None:
    from commerce.search.service import search_report

    await say("I am looking for a kettle", sender="report-1")
    await say(kind="callback", payload="cart:add:KET-1", sender="report-1")
    await say("do you sell unicorn saddles", sender="report-2")
    await say("I am looking for a kettle", sender="report-3")
    async with shop.sessions() as session:
        report = await search_report(session)
    # Two identical searches: the one whose result went into the cart is used, the other abandoned.
    assert [(row.query, row.searches) for row in report.abandoned] == [("i am looking for a kettle", 1)]
    assert [(row.query, row.results) for row in report.zero_results] == [("do you sell unicorn saddles", 0)]


async def test_returns_rules_in_the_shoppers_language(say: Say, shop: Database) -> None:
    chinese = texts(await say("我在德国，怎么退货？", sender="zh-returns"))
    assert "从德国退货：收货后 14 天内可退货。" in chinese
    assert "自收到商品之日起 14 天内，您可以撤回本次购买合同，无需说明任何理由。请在通知我们撤回之日起" in chinese
    assert "运费仅按标准配送的价格退还" in chinese  # the notes, translated too
    assert "Withdraw" not in chinese
    english = texts(await say("How do I return an item to you from Germany?", sender="en-returns"))
    assert "Withdraw within 14 days of receiving the goods, without giving a reason. Send the goods" in english


async def test_untranslated_return_policy_is_quoted_in_english(say: Say, shop: Database) -> None:
    async with shop.unit_of_work() as session:
        await session.execute(update(ReturnPolicy).where(ReturnPolicy.scope == "EU").values(translations={}))
    chinese = texts(await say("我在德国，怎么退货？", sender="zh-returns"))
    assert "从德国退货：收货后 14 天内可退货。Withdraw within 14 days of receiving the goods, without giving a " \
           "reason. Send the goods" in chinese


async def _summary(say: Say, sender: str, answers: tuple[str, ...] = ("checkout", "Germany", "confirm@example.com",
                                                                     *ADDRESSES["DE"])) -> HandleResult:
    """A kettle in the cart, then checkout's questions answered: the order summary."""
    await say(kind="callback", payload="cart:add:KET-1", sender=sender)
    for answer in answers[:-1]:
        await say(answer, sender=sender)
    return await say(answers[-1], sender=sender)


async def _to_summary(say: Say, sender: str) -> str:
    return texts(await _summary(say, sender))


async def _reserved(shop: Database, sku: str) -> int:
    async with shop.unit_of_work() as session:
        return (await inventory.available_stock(session, skus=[sku]))[sku]


async def test_cart_changed_after_the_summary_shows_the_new_one(say: Say, shop: Database) -> None:
    assert "Pay now: €" in await _to_summary(say, "stale-cart")
    # A hoodie Rotterdam can send to Germany (the teapot's only units are in Shenzhen, which does not ship there).
    await say(kind="callback", payload="cart:add:HOOD-BLK-M", sender="stale-cart")
    stale = await say("yes", sender="stale-cart")
    assert "changed since that summary, so I haven't placed the order" in texts(stale)
    assert "Cotton Hoodie (black / M, HOOD-BLK-M)" in texts(stale)
    assert not any(r.custom and "order_number" in r.custom for r in stale.replies)
    assert await _reserved(shop, "KET-1") == 10
    placed = await say("yes", sender="stale-cart")
    assert "is placed" in texts(placed)
    assert await _reserved(shop, "KET-1") == 9
    assert "is placed" not in texts(await say("yes", sender="stale-cart"))  # a repeated yes orders nothing
    assert await _reserved(shop, "KET-1") == 9


async def test_price_changed_after_the_summary_shows_the_new_one(say: Say, shop: Database) -> None:
    assert "€49.90" in await _to_summary(say, "stale-price")
    async with shop.unit_of_work() as session:
        (await catalog.get_variant(session, sku="KET-1")).product.base_price = Decimal("54.90")  # the merchant's edit
    stale = texts(await say("好的", sender="stale-price"))  # the answer's language is the reply's
    assert "购物车或价格有了变化，因此尚未下单" in stale
    assert "€54.90" in stale
    assert await _reserved(shop, "KET-1") == 10


async def test_anything_but_a_clear_yes_does_not_place_the_order(say: Say, shop: Database) -> None:
    await _to_summary(say, "unsure")
    assert "Shall I place the order?" in texts(await say("hmm", sender="unsure"))
    assert "No problem" in texts(await say("no", sender="unsure"))
    assert await _reserved(shop, "KET-1") == 10
    assert "Your cart:" in texts(await say(kind="callback", payload="cart:view", sender="unsure"))  # "Change cart"


async def test_place_order_button_places_the_order_it_summarised(say: Say, shop: Database) -> None:
    summary = await _summary(say, "button")
    place = payloads(summary)[0]
    assert place.startswith("checkout:place:")
    forged = await say(kind="callback", payload="checkout:place:0123456789abcdef", sender="button")
    assert "is placed" not in texts(forged)
    assert payloads(forged)[0] == place  # the summary again, with the real digest
    placed = await say(kind="callback", payload=place, sender="button")
    assert "is placed" in texts(placed)


async def test_a_page_of_cards_in_another_currency_reads_the_rate_once(say: Say, shop: Database) -> None:
    """Each card's price is what the shop's rate gives (as when each card converted on its own), but the
    turn looks the EUR->USD rate up once and the products up in one batch, not once per card."""
    from sqlalchemy import event

    from bot.conversations.models import Conversation
    from commerce import cross_border
    from commerce.money import format_money

    await say("hello", sender="us-2")
    async with shop.unit_of_work() as session:
        await session.execute(update(Conversation).where(Conversation.sender_id == "us-2")
                              .values(country="US", currency="USD"))
        await inventory.set_stock(session, sku="KET-1", location="SZX", on_hand=4)  # so two cards ship to the US
    statements: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(shop.engine.sync_engine, "before_cursor_execute", note)
    try:
        found = await say("I'm looking for tea things", sender="us-2")
    finally:
        event.remove(shop.engine.sync_engine, "before_cursor_execute", note)
    cards = [c for r in found.replies for c in r.cards]
    assert len(cards) >= 2
    async with shop.sessions() as session:
        for card in cards:
            variant = await catalog.get_variant(session, sku=card.sku)
            price = catalog.variant_price(variant, variant.product)
            conversion = await cross_border.convert(session, amount=price, from_currency="EUR", to_currency="USD")
            assert card.price_text == format_money(conversion.amount, "USD", "en")
            assert card.price_text.startswith("$")
    lookups = [s for s in statements if "DISTINCT fx_rates.base" in s]  # each rate lookup lists the bases once
    assert len(lookups) == 1
    assert sum(s.upper().startswith("SAVEPOINT") for s in statements) <= 1
    assert not any("WHERE products.id = " in s for s in statements)  # not one read per card


async def test_the_shopper_picks_the_delivery_service_and_the_order_records_it(say: Say, shop: Database) -> None:
    first = await _summary(say, "express")
    assert "Shipping (Standard (tracked parcel), 2-5 working days): €" in texts(first)
    switch = [p for p in payloads(first) if p.startswith("checkout:ship:")]
    assert switch == ["checkout:ship:express"]  # Germany's other service, with its price on the button
    assert any("Express (insured courier), 1-2 days: €" in b.title for r in first.replies for b in r.buttons)
    faster = await say(kind="callback", payload="checkout:ship:express", sender="express")
    assert "Shipping (Express (insured courier), 1-2 working days): €" in texts(faster)
    assert "checkout:ship:standard" in payloads(faster)
    forged = await say(kind="callback", payload="checkout:ship:teleport", sender="express")
    assert "Shipping (Standard (tracked parcel), 2-5 working days)" in texts(forged)  # not offered: the default
    await say(kind="callback", payload="checkout:ship:express", sender="express")
    placed = await say("yes", sender="express")
    number = next(r.custom["order_number"] for r in placed.replies if r.custom and "order_number" in r.custom)
    async with shop.sessions() as session:
        order = await orders.get_order_by_number(session, number=number)
    assert order.shipping_service == "express"
    shown = texts(faster).split("Shipping (Express (insured courier), 1-2 working days): ", 1)[1].split("\n", 1)[0]
    assert shown == f"€{order.shipping:.2f}"  # charged what the summary said


async def test_delivery_services_are_named_in_the_shoppers_language(say: Say, shop: Database) -> None:
    summary = await _summary(say, "zh-ship", ("结账", "德国", "confirm@example.com", *ADDRESSES["DE"]))
    assert "运费（标准（可追踪包裹），2-5 个工作日）" in texts(summary)
    assert any(b.title.startswith("特快（保价快递），1-2 天：") for r in summary.replies for b in r.buttons)


async def test_a_delivery_question_with_no_destination_offers_country_buttons(say: Say) -> None:
    asked = await say("how much is shipping?", sender="cb1")
    assert "Which country" in texts(asked)
    assert payloads(asked)[0] == "country:set:DE"  # the shop's default first, not assumed
    answered = await say(kind="callback", payload="country:set:FR", sender="cb1")
    assert "France" in texts(answered)
    assert "Germany" not in texts(answered)
    refused = await say(kind="callback", payload="country:set:France", sender="cb2")
    assert "country" in texts(refused).lower()
