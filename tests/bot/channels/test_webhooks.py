"""The channel webhooks over HTTP: Telegram (secret, dedupe, bad input) and the Rasa REST channel."""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import select

from api.app import create_app
from bot import conversation_history
from kit.db import Database
from kit.outbox import OutboxEvent
from kit.settings import Settings
from tests.bot.channels.conftest import BOT_TOKEN
from tests.bot.channels.telegram_double import TelegramDouble
from tests.http import app_client

SECRET = "webhook-secret-0123456789"
CHAT = 5150


@pytest.fixture
def settings() -> Settings:
    return Settings(environment="test", security={"secret_key": "test-secret-key-0123456789",
                                                  "telegram_bot_token": BOT_TOKEN,
                                                  "telegram_webhook_secret": SECRET},
                    limits={"max_body_bytes": 64_000})


@pytest.fixture
async def client(db: Database, settings: Settings,
                 telegram_double: TelegramDouble) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database=db)
    app.state.telegram_api_server = TelegramAPIServer.from_base(telegram_double.base_url)
    async with app_client(app) as http:
        yield http


async def _post_update(client: httpx.AsyncClient, update: dict[str, Any], secret: str | None = SECRET,
                       ) -> httpx.Response:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return await client.post("/webhooks/telegram", json=update, headers=headers)


async def _history(db: Database, sender: str, channel: str = "telegram") -> list[Any]:
    async with db.unit_of_work() as session:
        return list(await conversation_history(session, channel=channel, sender_id=sender))


def _problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert "Traceback" not in response.text


@pytest.mark.parametrize(("secret", "status", "code"), [
    (None, 401, "telegram_secret_missing"),
    ("wrong-secret", 403, "telegram_secret_invalid"),
    (SECRET + "x", 403, "telegram_secret_invalid"),
    ("", 403, "telegram_secret_invalid"),
])
async def test_forged_webhook_is_refused_and_not_processed(
        client: httpx.AsyncClient, db: Database, telegram_double: TelegramDouble,
        secret: str | None, status: int, code: str) -> None:
    update = telegram_double.message_update(CHAT, text="hello")
    _problem(await _post_update(client, update, secret), status, code)
    assert await _history(db, str(CHAT)) == []
    await asyncio.sleep(0.3)
    assert telegram_double.to(CHAT) == []


async def test_malformed_and_oversized_webhook_bodies(client: httpx.AsyncClient, db: Database) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "content-type": "application/json"}
    _problem(await client.post("/webhooks/telegram", content=b"{not json", headers=headers), 400, "malformed_json")
    _problem(await client.post("/webhooks/telegram", content=b"[1, 2]", headers=headers), 400, "invalid_update")
    _problem(await client.post("/webhooks/telegram", json={"update_id": 1, "message": {"text": "no chat"}},
                               headers=headers), 400, "invalid_update")
    big = json.dumps({"update_id": 1, "message": {"text": "x" * 70_000}}).encode()
    _problem(await client.post("/webhooks/telegram", content=big, headers=headers), 413, "payload_too_large")
    assert await _history(db, str(CHAT)) == []


async def test_duplicate_update_id_is_answered_once(client: httpx.AsyncClient, db: Database,
                                                    telegram_double: TelegramDouble) -> None:
    update = telegram_double.message_update(CHAT, sticker={
        "file_id": "CAACAgIAAxkBAAE", "file_unique_id": "AgADAQAD", "type": "regular", "width": 512,
        "height": 512, "is_animated": False, "is_video": False, "emoji": "😀"})
    assert (await _post_update(client, update)).json() == {"ok": True}
    sent = await telegram_double.wait_for_sent(CHAT, 1)
    assert "only read text" in sent[0].text  # a sticker gets a polite reply
    assert (await _post_update(client, update)).status_code == 200  # Telegram replaying the same update
    await asyncio.sleep(1.0)
    assert len(telegram_double.to(CHAT)) == 1
    assert len([m for m in await _history(db, str(CHAT)) if m.direction == "in"]) == 1


async def test_bad_input_gets_polite_replies_never_a_crash(client: httpx.AsyncClient,
                                                           telegram_double: TelegramDouble) -> None:
    edited = telegram_double.message_update(CHAT, text="changed", edit_date=1)
    edited["edited_message"] = edited.pop("message")
    assert (await _post_update(client, edited)).status_code == 200
    await telegram_double.wait_for_sent(CHAT, 1)
    prompt = telegram_double.sent[-1]
    press = {"update_id": 99_001, "callback_query": {
        "id": "cq1", "from": {"id": CHAT, "is_bot": False, "first_name": "S", "language_code": "en"},
        "chat_instance": "ci", "data": "~forgedtokenXYZ",
        "message": {"message_id": prompt.message_id, "date": 1, "chat": {"id": CHAT, "type": "private"},
                    "text": prompt.text}}}
    assert (await _post_update(client, press)).status_code == 200
    await telegram_double.wait_for_sent(CHAT, 2)
    assert telegram_double.answered_callbacks[-1]["callback_query_id"] == "cq1"
    assert (await _post_update(client, telegram_double.message_update(CHAT, text="<b>hi</b> " + "x" * 10_000))
            ).status_code == 200
    texts = [m.text for m in await telegram_double.wait_for_sent(CHAT, 3)]
    assert "edited" in texts[0]
    assert "expired" in texts[1]
    assert any("long message" in t for t in texts[2:])


# ---- Rasa-compatible REST ----

async def test_rest_status(client: httpx.AsyncClient) -> None:
    response = await client.get("/webhooks/rest/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_rest_bad_input_is_a_clean_problem(client: httpx.AsyncClient) -> None:
    _problem(await client.post("/webhooks/rest/webhook", content=b"{oops",
                               headers={"content-type": "application/json"}), 400, "malformed_json")
    _problem(await client.post("/webhooks/rest/webhook", json={"message": "hi"}), 422, "validation_error")
    _problem(await client.post("/webhooks/rest/webhook", json={"sender": "a", "message": "y" * 70_000}),
             413, "payload_too_large")


async def test_rest_replies_in_rasa_shape_and_dedupes_by_message_id(client: httpx.AsyncClient,
                                                                    db: Database) -> None:
    body = {"sender": "rest-shopper-1", "message": "/cart", "metadata": {"message_id": "m-1"}}
    first = await client.post("/webhooks/rest/webhook", json=body)
    assert first.status_code == 200
    replies = first.json()
    assert replies
    assert all(r["recipient_id"] == "rest-shopper-1" and r["text"] for r in replies)
    assert all(set(b) >= {"title", "payload"} for r in replies for b in r.get("buttons", []))
    again = await client.post("/webhooks/rest/webhook", json=body)
    assert again.json() == replies  # the stored replies, not a second answer
    assert len([m for m in await _history(db, "rest-shopper-1", "rest") if m.direction == "in"]) == 1
    async with db.unit_of_work() as session:
        events = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "send.rest"))).all()
    assert events == []  # handed over in the HTTP response itself: nothing for the delivery worker to send


async def _started_app(db: Database, settings: Settings, telegram_double: TelegramDouble) -> None:
    app = create_app(settings, database=db)
    app.state.telegram_api_server = TelegramAPIServer.from_base(telegram_double.base_url)
    async with app.router.lifespan_context(app):
        pass


async def test_webhook_mode_registers_the_webhook_with_its_secret(db: Database, settings: Settings,
                                                                  telegram_double: TelegramDouble) -> None:
    url = "https://shop.example/webhooks/telegram"
    configured = settings.model_copy(update={"telegram": settings.telegram.model_copy(
        update={"mode": "webhook", "webhook_url": url})})
    await _started_app(db, configured, telegram_double)
    assert telegram_double.webhook == {"url": url, "secret_token": SECRET}


async def test_a_refused_webhook_registration_is_logged_without_the_token_and_the_app_starts(
        db: Database, settings: Settings, telegram_double: TelegramDouble, caplog: pytest.LogCaptureFixture) -> None:
    configured = settings.model_copy(update={"telegram": settings.telegram.model_copy(
        update={"mode": "webhook", "webhook_url": "http://not-https.example/hook"})})
    with caplog.at_level("ERROR", logger="api.routers.webhooks"):
        await _started_app(db, configured, telegram_double)
    assert telegram_double.webhook is None
    assert any("HTTPS URL must be provided" in r.getMessage() for r in caplog.records)
    assert BOT_TOKEN not in caplog.text
