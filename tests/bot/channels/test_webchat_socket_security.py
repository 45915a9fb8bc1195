"""The web chat socket over a real server: Origins other than ours or the shop's are refused with a reason, the
token and identity travel in the first frame (and a URL that still carries them is redacted in logs), a signed e-mail
links the storefront's own orders, identity secrets are encrypted at rest (and the migration seals old ones), and an
agent's typing reaches the shopper's socket on another API process through Redis."""
from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed

from api.app import create_app
from api.migrations import upgrade
from bot import BotDeps
from bot.channels import webchat_sites as sites
from bot.channels.webchat import WebchatSessions
from bot.conversations import service as conversations
from commerce.orders import service as orders
from commerce.orders.schemas import OrderIn, OrderLineIn
from commerce.shoppers import service as shoppers
from kit.db import Database
from kit.logging import RedactingFilter
from kit.settings import Settings, get_settings
from tests.bot.channels.conftest import BOT_TOKEN
from tests.bot.channels.telegram_double import TelegramDouble
from tests.bot.channels.test_webchat_sessions import SECRET_KEY, _frame, _served
from tests.bot.conftest import make_bot_shop
from tests.bot.handoff.conftest import PASSWORD, make_agent, shopper_says
from tests.http import app_client
from tests.migrating import migrate_to

SHOP = "demo-store"
STORE = "https://shop.example"
BOX = sites.SecretBox.of(Settings(environment="test", security={"secret_key": SECRET_KEY}))
REDIS_URL = os.environ.get("SHOPTALK_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")


async def _site(db: Database) -> str:
    async with db.unit_of_work() as session:
        await sites.save_site(session, shop=SHOP, allowed_origins=[STORE])
        return await sites.rotate_identity_secret(session, shop=SHOP, box=BOX)


async def _closed_with(url: str, origin: str) -> tuple[int, str]:
    socket = await websockets.connect(url, origin=origin)  # type: ignore[arg-type]
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(socket.recv(), 10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_only_our_origin_and_the_shops_listed_origins_may_open_the_socket(db: Database,
                                                                                bot_deps: BotDeps) -> None:
    await _site(db)
    async with _served(db, bot_deps) as url:
        own = url.replace("ws://", "http://").removesuffix("/ws/chat")
        for origin, query in ((own, ""), (STORE, f"?shop={SHOP}")):
            socket = await websockets.connect(url + query, origin=origin)  # type: ignore[arg-type]
            assert (await _frame(socket))["type"] == "session"
            await socket.close()
        code, reason = await _closed_with(url + f"?shop={SHOP}", "https://evil.example")
        assert code == 1008
        assert reason == f"origin https://evil.example is not allowed for shop {SHOP}"
        code, reason = await _closed_with(url, STORE)  # listed for the shop, but no shop named
        assert (code, reason) == (1008, f"origin {STORE} is not allowed for shop (none)")
        # No Origin at all: not a browser page (an app, a server); the token is what speaks for a shopper.
        socket = await websockets.connect(url)
        assert (await _frame(socket))["type"] == "session"
        await socket.close()


async def test_the_token_travels_in_the_first_frame_and_urls_that_carry_it_are_redacted(db: Database,
                                                                                       bot_deps: BotDeps) -> None:
    async with _served(db, bot_deps) as url:
        first = await websockets.connect(url + "?auth=frame")
        await first.send(json.dumps({"type": "auth"}))
        minted = await _frame(first)
        assert minted["type"] == "session"
        await first.close()
        again = await websockets.connect(url + "?auth=frame")
        await again.send(json.dumps({"type": "auth", "session": minted["token"]}))
        history = await _frame(again)  # the kept session: no new token, straight to its history
        assert history["type"] == "history"
        assert history["session"] == minted["token"].partition(".")[0]
        await again.close()
        silent = await websockets.connect(url + "?auth=frame")
        await silent.send(json.dumps({"type": "message", "id": "m1", "text": "hi"}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(silent.recv(), 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
        assert "first frame" in closed.value.rcvd.reason

    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
                               ("127.0.0.1:5", "/ws/chat?session=abc.DEF&shop=s&customer_id=c-1&email=m%40x.io"
                                               "&signature=" + "a" * 64), None)
    RedactingFilter().filter(record)
    line = record.getMessage()
    assert "abc.DEF" not in line
    assert "a" * 64 not in line
    assert "m%40x.io" not in line
    assert "c-1" not in line
    assert "shop=s" in line


async def test_a_signed_email_links_the_storefronts_orders_and_an_unsigned_one_is_refused(
        db: Database, bot_deps: BotDeps) -> None:
    secret = await _site(db)
    async with db.unit_of_work() as session:
        await make_bot_shop(session)
        order, _ = await orders.create_order(session, data=OrderIn(
            channel="web", external_id="store-1", currency="EUR", email="Mia@Example.com", postcode="10115",
            country="DE", lines=[OrderLineIn(sku="KET-1", quantity=1)]))
    async with _served(db, bot_deps) as url:
        # Signed over the id only, with an e-mail added by the page: refused, nothing linked.
        forged = await websockets.connect(url + "?auth=frame")
        await forged.send(json.dumps({"type": "auth", "shop": SHOP, "customer_id": "cust-42",
                                      "email": "mia@example.com",
                                      "signature": sites.identity_signature(secret, "cust-42")}))
        frames = [await _frame(forged), await _frame(forged)]
        assert {"type": "identity", "status": "refused", "code": "identity_signature_invalid",
                "detail": "The customer's signature does not verify; the chat stays anonymous."} in frames
        await forged.close()
        async with db.sessions() as session:
            assert (await orders.get_order_by_public_ref(session, public_ref=order.public_ref)).shopper_id is None

        signed = await websockets.connect(url + "?auth=frame")
        await signed.send(json.dumps({"type": "auth", "shop": SHOP, "customer_id": "cust-42",
                                      "email": "mia@example.com",
                                      "signature": sites.identity_signature(secret, "cust-42", "mia@example.com")}))
        frames = [await _frame(signed) for _ in range(3)]
        assert {"type": "identity", "status": "verified", "customer_id": "cust-42"} in frames
        await signed.send(json.dumps({"type": "message", "id": "o1", "text": "/orders"}))
        reply = await _frame(signed)
        while reply["type"] != "reply":
            reply = await _frame(signed)
        titles = [b["title"] for b in reply["message"]["buttons"]]
        assert any(order.public_ref in title for title in titles), reply
        await signed.close()
    session_id, _ = WebchatSessions(SECRET_KEY).for_customer(shop=SHOP, customer_id="cust-42")
    async with db.sessions() as session:
        shopper = await shoppers.shopper_for_identity(session, kind="webchat", external_id=session_id)
        own = await orders.orders_for_shopper(session, shopper_id=shopper.id)
        assert [o.public_ref for o in own] == [order.public_ref]


async def test_identity_secrets_are_encrypted_at_rest(db: Database) -> None:
    secret = await _site(db)
    async with db.sessions() as session:
        stored = (await session.execute(text("SELECT identity_secret FROM bot_webchat_sites"))).scalar_one()
        site = await sites.get_site(session, shop=SHOP)
    assert stored.startswith("v1:")
    assert secret not in stored
    good = sites.identity_signature(secret, "cust-1")
    assert sites.identity_verified(site, box=BOX, customer_id="cust-1", signature=good)
    other_key = sites.SecretBox(b"k" * 32)
    assert not sites.identity_verified(site, box=other_key, customer_id="cust-1", signature=good)
    with pytest.raises(sites.SecretUnreadable):
        BOX.open(stored, shop="another-shop")  # bound to its site: cannot be moved to another
    with pytest.raises(ValueError, match="DATA_ENCRYPTION_KEY is required in production"):
        Settings(environment="production", security={"secret_key": SECRET_KEY})


@pytest.mark.slow
async def test_the_migration_seals_plain_secrets_and_the_downgrade_opens_them(unmigrated_url: str) -> None:
    database = Database(unmigrated_url)
    box = sites.SecretBox.of(get_settings())  # the migration runs with the environment's settings
    try:
        await upgrade(database.engine)
        await migrate_to(database, unmigrated_url, "downgrade", "bot_channels_0003")
        async with database.engine.begin() as connection:
            await connection.execute(text("INSERT INTO bot_webchat_sites (shop, allowed_origins, identity_secret, "
                                          "updated_at) VALUES ('old-shop', '[]', 'plain-secret-123', "
                                          "CURRENT_TIMESTAMP)"))
        await migrate_to(database, unmigrated_url, "upgrade", "heads")
        async with database.engine.begin() as connection:
            sealed = (await connection.execute(text("SELECT identity_secret FROM bot_webchat_sites"))).scalar_one()
        assert sealed.startswith("v1:")
        assert box.open(sealed, shop="old-shop") == "plain-secret-123"
        await migrate_to(database, unmigrated_url, "downgrade", "bot_channels_0003")
        async with database.engine.begin() as connection:
            plain = (await connection.execute(text("SELECT identity_secret FROM bot_webchat_sites"))).scalar_one()
        assert plain == "plain-secret-123"
    finally:
        await database.dispose()


async def test_an_agents_typing_reaches_the_shopper_on_another_process(db: Database, bot_deps: BotDeps) -> None:
    agent_id = await make_agent(db, "ana@shop.test")
    redis = {"redis": {"url": REDIS_URL}}
    async with _served(db, bot_deps, **redis) as shopper_url, _served(db, bot_deps, **redis) as console_url:
        shopper = await websockets.connect(shopper_url)
        session_id = (await _frame(shopper))["token"].partition(".")[0]
        await _frame(shopper)  # history
        await shopper.send(json.dumps({"type": "message", "id": "h1", "text": "a person please"}))
        async with db.unit_of_work() as session:
            conversation = await conversations.get_or_create_conversation(session, channel="webchat",
                                                                          sender_id=session_id)
            conversation_id = conversation.id
        base = console_url.replace("ws://", "http://").removesuffix("/ws/chat")
        # Signing in hashes a password: on a loaded machine that can outlast httpx's 5 s default (a speed limit).
        async with httpx.AsyncClient(base_url=base, timeout=60) as console:
            signed = await console.post("/api/v1/agent/session", json={"email": "ana@shop.test", "password": PASSWORD})
            csrf = {"X-CSRF-Token": signed.json()["csrf_token"]}
            path = f"/api/v1/agent/conversations/{conversation_id}"
            refused = await console.post(path + "/typing", json={"on": True}, headers=csrf)
            assert refused.status_code == 409, refused.text  # not theirs yet: no typing for a chat they do not have
            assert (await console.post(path + "/take", headers=csrf)).status_code == 200
            assert (await console.post(path + "/typing", json={"on": True}, headers=csrf)).status_code == 204
            seen: list[dict[str, Any]] = []
            while not (any(f["type"] == "typing" and f.get("author") == "agent" for f in seen)
                       and any(f["type"] == "reply" and f["message"].get("custom") for f in seen)):
                seen.append(await _frame(shopper))
            typing = next(f for f in seen if f["type"] == "typing" and f.get("author") == "agent")
            assert typing == {"type": "typing", "on": True, "author": "agent", "name": "Ana", "ttl": 6}
            notice = next(f for f in seen if f["type"] == "reply" and f["message"].get("custom"))
            assert notice["message"]["custom"] == {"notice": "joined", "agent_name": "Ana"}
            assert (await console.post(path + "/typing", json={"on": False}, headers=csrf)).status_code == 204
            stop = await _frame(shopper)
            while stop.get("author") != "agent":
                stop = await _frame(shopper)
            assert stop["on"] is False
            assert (await console.post(path + "/typing", json={"on": "maybe"}, headers=csrf)).status_code == 422
        await shopper.close()
    assert agent_id


async def test_an_agents_typing_shows_on_telegram(db: Database, tmp_path: Path) -> None:
    double = await TelegramDouble(token=BOT_TOKEN).start()
    try:
        settings = Settings(environment="test", data_dir=tmp_path, telegram={"mode": "off"},
                            security={"secret_key": SECRET_KEY, "telegram_bot_token": BOT_TOKEN})
        app = create_app(settings, database=db)
        app.state.telegram_api_server = TelegramAPIServer.from_base(double.base_url)
        await make_agent(db, "ana@shop.test")
        conversation_id = await shopper_says(db, "a person", channel="telegram", sender="5151", human=True)
        async with app_client(app) as http:
            signed = await http.post("/api/v1/agent/session", json={"email": "ana@shop.test", "password": PASSWORD})
            csrf = {"X-CSRF-Token": signed.json()["csrf_token"]}
            path = f"/api/v1/agent/conversations/{conversation_id}"
            assert (await http.post(path + "/take", headers=csrf)).status_code == 200
            assert (await http.post(path + "/typing", json={"on": True}, headers=csrf)).status_code == 204
            assert (await http.post(path + "/typing", json={"on": False}, headers=csrf)).status_code == 204
        assert double.chat_actions == [(5151, "typing")]  # Telegram has no "stop": only the start is sent
    finally:
        await double.stop()
