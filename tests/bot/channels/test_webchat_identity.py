"""Embedding sites and identity verification: origins the merchant lists, HMAC-signed customer ids, and a verified
customer's own session over the real socket (a forged signature gets nothing of theirs)."""
from __future__ import annotations

import json
from typing import Any

import pytest
import websockets

from bot import BotDeps
from bot.channels import webchat_sites as sites
from bot.channels.webchat import WebchatSessions
from kit.db import Database
from kit.errors import InvalidInput
from kit.settings import Settings
from tests.bot.channels.test_webchat_sessions import SECRET_KEY, _frame, _open, _say, _served, _texts

SHOP = "demo-store"
BOX = sites.SecretBox.of(Settings(environment="test", security={"secret_key": SECRET_KEY}))


@pytest.mark.parametrize(("given", "origin"), [
    ("https://Shop.Example", "https://shop.example"),
    ("https://shop.example:443/", "https://shop.example"),
    ("http://localhost:8080", "http://localhost:8080"),
    ("http://[::1]:3000", "http://[::1]:3000"),
])
def test_origins_are_normalised_as_browsers_send_them(given: str, origin: str) -> None:
    assert sites.normalize_origin(given) == origin


@pytest.mark.parametrize("bad", ["shop.example", "ftp://shop.example", "https://shop.example/path",
                                 "https://*.shop.example", "https://shop.example?x=1", "https://u:p@shop.example",
                                 "https://shop.example:99999", "https://a.example https://b.example", ""])
def test_anything_but_an_origin_is_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(InvalidInput):
        sites.normalize_origin(bad)


async def test_sites_keep_their_origins_and_secret(db: Database) -> None:
    async with db.unit_of_work() as session:
        site = await sites.save_site(session, shop=SHOP, allowed_origins=["https://Shop.Example/",
                                                                           "https://shop.example", "http://localhost:3000"])
        assert site.allowed_origins == ["https://shop.example", "http://localhost:3000"]
        assert not sites.view(site).identity_verification
        secret = await sites.rotate_identity_secret(session, shop=SHOP, box=BOX)
    async with db.sessions() as session:
        site = await sites.get_site(session, shop=SHOP)
        assert sites.view(site).identity_verification
        assert sites.origin_allowed(site, "https://shop.example")
        assert not sites.origin_allowed(site, "https://evil.example")
        assert not sites.origin_allowed(site, None)
        good = sites.identity_signature(secret, "cust-42")
        assert sites.identity_verified(site, box=BOX, customer_id="cust-42", signature=good)
        assert sites.identity_verified(site, box=BOX, customer_id="cust-42", signature=good.upper())
        assert not sites.identity_verified(site, box=BOX, customer_id="cust-43", signature=good)
        assert not sites.identity_verified(site, box=BOX, customer_id="cust-42", signature="0" * 64)
        assert not sites.identity_verified(site, box=BOX, customer_id="cust-42", signature=good[:-1])
        assert not sites.identity_verified(site, box=BOX, customer_id="cust-42",
                                           signature=sites.identity_signature("another secret", "cust-42"))
        with pytest.raises(sites.SiteNotFound):
            await sites.get_site(session, shop="no-such-shop")
    async with db.unit_of_work() as session:
        newer = await sites.rotate_identity_secret(session, shop=SHOP, box=BOX)
        site = await sites.get_site(session, shop=SHOP)
        assert newer != secret
        assert not sites.identity_verified(site, box=BOX, customer_id="cust-42", signature=good)  # the old one is gone
        with pytest.raises(InvalidInput):
            await sites.save_site(session, shop="Bad Name!", allowed_origins=[])


def test_a_customers_session_is_the_same_everywhere_and_cannot_be_derived_without_the_key() -> None:
    shop, other = WebchatSessions(SECRET_KEY), WebchatSessions("another-shops-secret-key-0123")
    session_id, token = shop.for_customer(shop=SHOP, customer_id="cust-42")
    assert shop.for_customer(shop=SHOP, customer_id="cust-42") == (session_id, token)
    assert shop.session_of(token) == session_id
    assert shop.for_customer(shop=SHOP, customer_id="cust-43")[0] != session_id
    assert shop.for_customer(shop="other-store", customer_id="cust-42")[0] != session_id
    assert other.for_customer(shop=SHOP, customer_id="cust-42")[0] != session_id


async def _until(socket: Any, kind: str) -> list[dict[str, Any]]:
    frames = [await _frame(socket)]
    while frames[-1]["type"] != kind:
        frames.append(await _frame(socket))
    return frames


async def test_identify_moves_a_verified_customer_to_their_own_conversation(db: Database, bot_deps: BotDeps) -> None:
    async with db.unit_of_work() as session:
        await sites.save_site(session, shop=SHOP, allowed_origins=["https://shop.example"])
        secret = await sites.rotate_identity_secret(session, shop=SHOP, box=BOX)
    signature = sites.identity_signature(secret, "cust-42")
    async with _served(db, bot_deps) as url:
        laptop, anonymous_token, _ = await _open(url)
        await laptop.send(json.dumps({"type": "identify", "shop": SHOP, "customer_id": "cust-42",
                                      "signature": signature}))
        frames = await _until(laptop, "history")
        session = next(f for f in frames if f["type"] == "session")
        assert session["customer_id"] == "cust-42"
        assert {"type": "identity", "status": "verified", "customer_id": "cust-42"} in frames
        customer_session = session["token"].partition(".")[0]
        assert customer_session != (anonymous_token or "").partition(".")[0]
        said = await _say(laptop, "/cart mia's words", "c1")
        await laptop.close()
        assert said[-1]["type"] == "reply"

        # Another device, signed in as the same customer: the same conversation.
        phone, _, _ = await _open(url)
        await phone.send(json.dumps({"type": "identify", "shop": SHOP, "customer_id": "cust-42",
                                     "signature": signature}))
        history = (await _until(phone, "history"))[-1]
        assert history["session"] == customer_session
        assert "/cart mia's words" in _texts(history)
        await phone.close()

        # A forged, missing or foreign signature: refused, the shopper stays where they were, nothing of Mia's.
        for forged in ("0" * 64, "", sites.identity_signature("guessed secret", "cust-42"), signature[:-2]):
            intruder, _, before = await _open(url)
            await intruder.send(json.dumps({"type": "identify", "shop": SHOP, "customer_id": "cust-42",
                                            "signature": forged}))
            refusal = await _frame(intruder)
            assert refusal["type"] == "identity"
            assert refusal["status"] == "refused"
            assert refusal["code"] == "identity_signature_invalid"
            said = await _say(intruder, "/cart", "x1")
            assert "mia's words" not in json.dumps(said)
            await intruder.close()
            assert before["session"] != customer_session

        # Logging out on the storefront: a fresh anonymous conversation.
        again, _, _ = await _open(url)
        await again.send(json.dumps({"type": "identify", "shop": SHOP, "customer_id": "cust-42",
                                     "signature": signature}))
        await _until(again, "history")
        await again.send(json.dumps({"type": "identify", "shop": SHOP, "customer_id": None}))
        frames = await _until(again, "history")
        assert {"type": "identity", "status": "anonymous"} in frames
        assert frames[-1]["session"] != customer_session
        assert frames[-1]["messages"] == []
        await again.close()


async def test_typing_frames_surround_the_bots_work_and_identify_needs_a_shop_with_a_secret(
        db: Database, bot_deps: BotDeps) -> None:
    async with db.unit_of_work() as session:
        await sites.save_site(session, shop=SHOP, allowed_origins=["https://shop.example"])
    async with _served(db, bot_deps) as url:
        socket, _, _ = await _open(url)
        await socket.send(json.dumps({"type": "message", "id": "t1", "text": "/help"}))
        frames = await _until(socket, "reply")
        kinds = [f["type"] for f in frames]
        assert kinds[:3] == ["typing", "typing", "ack"]
        assert [f["on"] for f in frames[:2]] == [True, False]
        await socket.send(json.dumps({"type": "identify", "shop": SHOP, "customer_id": "cust-1",
                                      "signature": "0" * 64}))
        assert (await _frame(socket))["code"] == "identity_not_enabled"
        await socket.send(json.dumps({"type": "identify", "customer_id": "cust-1"}))
        assert (await _frame(socket))["code"] == "invalid_frame"
        await socket.close()
    with pytest.raises(websockets.ConnectionClosed):
        await socket.recv()


async def test_identity_on_connect_is_verified_before_anything_is_sent(db: Database, bot_deps: BotDeps) -> None:
    async with db.unit_of_work() as session:
        await sites.save_site(session, shop=SHOP, allowed_origins=["https://shop.example"])
        secret = await sites.rotate_identity_secret(session, shop=SHOP, box=BOX)
    signature = sites.identity_signature(secret, "cust-7")
    async with _served(db, bot_deps) as url:
        socket = await websockets.connect(f"{url}?shop={SHOP}&customer_id=cust-7&signature={signature}")
        minted = await _frame(socket)
        assert minted["type"] == "session"
        assert minted["customer_id"] == "cust-7"
        assert await _frame(socket) == {"type": "identity", "status": "verified", "customer_id": "cust-7"}
        assert (await _frame(socket))["type"] == "history"
        await _say(socket, "/cart kept for cust-7", "k1")
        await socket.close()
        customer_token = minted["token"]

        # The customer's own token kept in a shared browser, with a bad signature: a fresh session, nothing shown.
        socket = await websockets.connect(
            f"{url}?session={customer_token}&shop={SHOP}&customer_id=cust-7&signature={'2' * 64}")
        fresh = await _frame(socket)
        assert fresh["type"] == "session"
        assert "customer_id" not in fresh
        assert fresh["token"] != customer_token
        assert (await _frame(socket))["status"] == "refused"
        history = await _frame(socket)
        assert history["messages"] == []
        await socket.close()

        # With the right signature again: the same conversation.
        socket = await websockets.connect(f"{url}?shop={SHOP}&customer_id=cust-7&signature={signature}")
        frames = await _until(socket, "history")
        assert "/cart kept for cust-7" in _texts(frames[-1])
        await socket.close()
