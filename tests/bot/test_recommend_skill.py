"""The recommend skill end to end through bot.handle_inbound: history, cart, product in view, and the
impressions, clicks and purchases it records per channel (what /merchant/insights shows)."""
from __future__ import annotations

from commerce.orders import service as orders
from commerce.recommend import service as recommendations
from kit.db import Database
from tests.bot.checkout_flow import ADDRESSES
from tests.bot.conftest import Say, texts


def cards_of(result: object) -> list[object]:
    return [c for r in result.replies for c in r.cards]  # type: ignore[attr-defined]


def button(card: object, prefix: str) -> str:
    return str(next(b.payload for b in card.buttons if b.payload and b.payload.startswith(prefix)))  # type: ignore[attr-defined]


async def buy(say: Say, shop: Database, sender: str, payload: str, email: str, *, pay: bool = False) -> None:
    assert "Added 1 x" in texts(await say(kind="callback", payload=payload, sender=sender))
    for answer in ("checkout", "Germany", email, *ADDRESSES["DE"], "yes"):
        placed = await say(answer, sender=sender)
    assert "Order #" in texts(placed)
    if pay:  # only orders that were paid for count as purchases to learn from
        number = next(r.custom["order_number"] for r in placed.replies if r.custom and "order_number" in r.custom)
        async with shop.unit_of_work() as session:
            order = await orders.get_order_by_number(session, number=number)
            await orders.transition_order(session, order_id=order.id, to_status="paid")


async def test_history_view_and_outcomes_per_channel(say: Say, shop: Database) -> None:
    # A Telegram shopper buys the kettle (not from a recommendation).
    await buy(say, shop, "hist", "cart:add:KET-1", "hist@example.com", pay=True)

    # Asked later, the shopper's own history comes first, with the reason.
    first = cards_of(await say("recommend something", sender="hist"))
    assert first, "the bot must suggest something"
    kettle = next(c for c in first if c.sku == "KET-1")  # type: ignore[attr-defined]
    assert kettle.subtitle == "You bought this before"  # type: ignore[attr-defined]
    assert ":rec:" in button(kettle, "product:details:")

    # Opening a recommended card is a click, counted on the channel it was shown on.
    details = await say(kind="callback", payload=button(kettle, "product:details:"), sender="hist")
    assert "Electric Kettle" in texts(details)
    # The product in view is an anchor and is never recommended to itself.
    viewing = cards_of(await say("recommend something", sender="hist"))
    assert "KET-1" not in [c.sku for c in viewing]  # type: ignore[attr-defined]

    # A web chat shopper adds a recommendation straight from its card and buys it.
    web = cards_of(await say("recommend something", sender="web-1", channel="webchat"))
    assert web
    await buy(say, shop, "web-1", button(web[0], "cart:add:"), "web@example.com")

    async with shop.unit_of_work() as session:
        per_channel = {p.channel: p for p in await recommendations.channel_performance(session)}
        both = await recommendations.performance(session, per_channel=True)
        per_model = await recommendations.performance(session)
    assert set(per_channel) == {"telegram", "webchat"}
    telegram, webchat = per_channel["telegram"], per_channel["webchat"]
    assert telegram.impressions == len(first) + len(viewing)
    assert (telegram.clicks, telegram.added_to_cart, telegram.purchases) == (1, 0, 0)
    assert webchat.impressions == len(web)
    # Added from the card: a click and an add-to-cart; then bought.
    assert (webchat.clicks, webchat.added_to_cart, webchat.purchases) == (1, 1, 1)
    assert webchat.click_through == round(1 / len(web), 4)
    assert webchat.conversion == round(1 / len(web), 4)
    assert {(p.model, p.channel) for p in both} >= {("buy_again", "telegram")}
    assert sum(p.impressions for p in per_model) == len(first) + len(viewing) + len(web)
    assert next(p for p in per_model if p.model == "buy_again").clicks == 1


async def test_cart_items_are_anchors_and_never_suggested(say: Say, shop: Database) -> None:
    assert "Added 1 x" in texts(await say(kind="callback", payload="cart:add:KET-1", sender="cart-1"))
    shown = cards_of(await say("recommend something", sender="cart-1"))
    assert "KET-1" not in [c.sku for c in shown]  # type: ignore[attr-defined]
    assert "KET-TRAVEL" not in [c.sku for c in shown]  # type: ignore[attr-defined]  # sold out


async def test_a_shopper_with_nothing_to_go_on_still_gets_an_answer(say: Say, shop: Database) -> None:
    result = await say("有什么推荐的吗", sender="new-zh")
    assert result.replies
    assert all(r.text for r in result.replies)
