"""The Rasa-compatible REST channel against the served demo shop, the way a Rasa client uses it."""
from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.channels.rest import sign
from tests.bot.channels.served_shop import ServedShop, served_shop
from tests.bot.checkout_flow import ADDRESSES

pytestmark = pytest.mark.slow
REST_SECRET = "rest-e2e-secret-0123456789"


def signed(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The body as sent and its headers, signed as docs/channels.md tells a client to sign."""
    raw = json.dumps(body).encode()
    return raw, {"content-type": "application/json", "X-ShopTalk-Signature": sign(REST_SECRET, raw, int(time.time()))}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedShop]:
    with served_shop(tmp_path_factory.mktemp("rest"), security={"rest_channel_secret": REST_SECRET}) as served:
        yield served


class RasaClient:
    def __init__(self, http: httpx.AsyncClient, sender: str) -> None:
        self.http = http
        self.sender = sender

    async def send(self, message: str, *, expect: str) -> list[dict[str, Any]]:
        # A person types slower than the per-sender limit (10 messages a second); this shopper sends at most ~6.
        await asyncio.sleep(0.15)
        body = {"sender": self.sender, "message": message, "metadata": {"message_id": uuid.uuid4().hex}}
        raw, headers = signed(body)
        response = await self.http.post("/webhooks/rest/webhook", content=raw, headers=headers)
        assert response.status_code == 200, response.text
        replies: list[dict[str, Any]] = response.json()
        assert all(r["recipient_id"] == self.sender for r in replies)
        assert any(expect in r["text"] for r in replies), [r["text"] for r in replies]
        return replies


def _payload(replies: list[dict[str, Any]], title: str) -> str:
    for reply in replies:
        for button in reply.get("buttons") or []:
            if title in button["title"]:
                return str(button["payload"])
        for card in (reply.get("custom") or {}).get("cards") or []:
            for button in card["buttons"]:
                if title in button["title"]:
                    return str(button["payload"])
    raise AssertionError(f"no {title!r} button")


@pytest.mark.parametrize(("language", "lines"), [
    ("en", {"search": ("I am looking for an electric kettle", "Here is what I found"), "add": "Add to cart",
            "added": "Added 1", "checkout": "Checkout", "country": ("Germany", "e-mail"),
            "email": ("rest.buyer@example.com", "recipient"), "summary": "Please check your order",
            "confirm": "yes", "placed": "is placed", "which": "Which order",
            "status": "awaiting payment"}),
    ("zh", {"search": ("有电水壶吗", "为您找到"), "add": "加入购物车", "added": "加入购物车", "checkout": "去结算",
            "country": ("德国", "邮箱"), "email": ("rest.zh@example.com", "收件人"), "summary": "下单前请核对",
            "confirm": "确认", "placed": "已提交",
            "which": "哪个订单", "status": "待付款"}),
])
async def test_purchase_and_order_status_over_rest(shop: ServedShop, language: str, lines: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=shop.base_url, timeout=60) as http:
        assert (await http.get("/webhooks/rest/")).json() == {"status": "ok"}
        shopper = RasaClient(http, f"rest-{language}-{uuid.uuid4().hex[:8]}")
        found = await shopper.send(*lines["search"][:1], expect=lines["search"][1])
        cards = [c for r in found for c in (r.get("custom") or {}).get("cards", [])]
        assert cards
        assert all({"sku", "title", "price_text", "buttons"} <= set(c) for c in cards)
        added = await shopper.send(_payload(found, lines["add"]), expect=lines["added"])
        asked = await shopper.send(_payload(added, lines["checkout"]), expect="")
        assert asked
        await shopper.send(lines["country"][0], expect=lines["country"][1])
        await shopper.send(lines["email"][0], expect=lines["email"][1])
        for answer in ADDRESSES["DE"][:-1]:
            await shopper.send(answer, expect="")
        await shopper.send(ADDRESSES["DE"][-1], expect=lines["summary"])
        placed = await shopper.send(lines["confirm"], expect=lines["placed"])
        number = re.search(r"#([A-Za-z0-9-]+)", " ".join(r["text"] for r in placed))
        assert number is not None
        which = await shopper.send("/orders", expect=lines["which"])
        await shopper.send(_payload(which, f"#{number.group(1)}"), expect=lines["status"])


async def test_rest_refuses_bad_input_cleanly(shop: ServedShop) -> None:
    async with httpx.AsyncClient(base_url=shop.base_url, timeout=60) as http:
        unsigned = await http.post("/webhooks/rest/webhook", json={"sender": "long-1", "message": "hi"})
        assert unsigned.status_code == 401
        assert unsigned.json()["code"] == "rest_auth_missing"
        signature = sign(REST_SECRET, b"not json", int(time.time()))
        response = await http.post("/webhooks/rest/webhook", content=b"not json", headers={
            "content-type": "application/json", "X-ShopTalk-Signature": signature})
        assert response.status_code == 400
        assert response.json()["code"] == "malformed_json"
        raw, headers = signed({"sender": "long-1", "message": "kettle " * 1500})
        long = await http.post("/webhooks/rest/webhook", content=raw, headers=headers)
        assert long.status_code == 200
        assert any("long message" in r["text"] for r in long.json())


async def test_shipping_cost_on_a_fresh_conversation_asks_for_the_country_with_buttons(shop: ServedShop) -> None:
    """"运费多少" names no destination: the bot asks (buttons of the shop's destinations) instead of assuming one."""
    async with httpx.AsyncClient(base_url=shop.base_url, timeout=60) as http:
        shopper = RasaClient(http, f"rest-ship-{uuid.uuid4().hex[:8]}")
        asked = await shopper.send("运费多少", expect="哪个国家")
        buttons = [b for r in asked for b in r.get("buttons") or []]
        codes = [str(b["payload"]).removeprefix("country:set:") for b in buttons]
        assert all(str(b["payload"]).startswith("country:set:") for b in buttons), buttons
        assert codes[0] == "DE", codes  # the shop's default offered first, not assumed
        assert len(codes) > 1, codes
        assert "德国" in buttons[0]["title"]
        texts = " ".join(r["text"] for r in asked)
        assert not re.search(r"\d", texts), texts  # no price or delivery days before the shopper chose
        other = buttons[1]
        answered = await shopper.send(str(other["payload"]), expect=f"寄到{other['title']}")
        assert "德国" not in " ".join(r["text"] for r in answered)
