"""The channel webhooks over HTTP: Telegram (secret, dedupe, bad input) and the Rasa REST channel."""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import select, text

from api.app import create_app
from api.auth import create_token
from bot import conversation_history
from bot.channels.rest import sign
from kit.db import Database
from kit.outbox import OutboxEvent
from kit.settings import Settings
from tests.bot.channels.conftest import BOT_TOKEN
from tests.bot.channels.telegram_double import TelegramDouble
from tests.http import app_client

SECRET = "webhook-secret-0123456789"
REST_SECRET = "rest-channel-secret-0123456789"
CHAT = 5150
REST = "/webhooks/rest/webhook"


@pytest.fixture
def settings() -> Settings:
    return Settings(environment="test", security={"secret_key": "test-secret-key-0123456789",
                                                  "telegram_bot_token": BOT_TOKEN,
                                                  "telegram_webhook_secret": SECRET,
                                                  "rest_channel_secret": REST_SECRET},
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


@pytest.mark.slow  # loads the real encoders (MiniLM + USE)
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


@pytest.mark.slow  # loads the real encoders (MiniLM + USE)
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


async def _token(db: Database, role: str) -> dict[str, str]:
    async with db.unit_of_work() as session:
        return {"Authorization": f"Bearer {await create_token(session, name=f'{role} client', role=role)}"}


@pytest.fixture
async def channel(db: Database) -> dict[str, str]:
    """Headers of a REST client holding a `channel` API token."""
    return await _token(db, "channel")


def _signed(body: bytes, *, secret: str = REST_SECRET, at: float | None = None) -> dict[str, str]:
    return {"content-type": "application/json",
            "X-ShopTalk-Signature": sign(secret, body, int(time.time() if at is None else at))}


async def test_rest_bad_input_is_a_clean_problem(client: httpx.AsyncClient, channel: dict[str, str]) -> None:
    _problem(await client.post(REST, content=b"{oops", headers={"content-type": "application/json", **channel}),
             400, "malformed_json")
    _problem(await client.post(REST, json={"message": "hi"}, headers=channel), 422, "validation_error")
    _problem(await client.post(REST, json={"sender": "a", "message": "y" * 70_000}, headers=channel),
             413, "payload_too_large")


@pytest.mark.slow  # loads the real encoders (MiniLM + USE)
async def test_rest_replies_in_rasa_shape_and_dedupes_by_message_id(client: httpx.AsyncClient,
                                                                    db: Database, channel: dict[str, str]) -> None:
    body = {"sender": "rest-shopper-1", "message": "/cart", "metadata": {"message_id": "m-1"}}
    first = await client.post(REST, json=body, headers=channel)
    assert first.status_code == 200
    replies = first.json()
    assert replies
    assert all(r["recipient_id"] == "rest-shopper-1" and r["text"] for r in replies)
    assert all(set(b) >= {"title", "payload"} for r in replies for b in r.get("buttons", []))
    again = await client.post(REST, json=body, headers=channel)
    assert again.json() == replies  # the stored replies, not a second answer
    assert len([m for m in await _history(db, "rest-shopper-1", "rest") if m.direction == "in"]) == 1
    async with db.unit_of_work() as session:
        events = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "send.rest"))).all()
    assert events == []  # handed over in the HTTP response itself: nothing for the delivery worker to send


@pytest.mark.slow  # loads the real encoders (MiniLM + USE)
async def test_a_message_id_reused_by_another_sender_is_not_a_repeat(client: httpx.AsyncClient, db: Database,
                                                                     channel: dict[str, str]) -> None:
    victim = await client.post(REST, headers=channel, json={
        "sender": "victim", "message": "/cart", "metadata": {"message_id": "m42"}})
    attacker = await client.post(REST, headers=channel, json={
        "sender": "attacker", "message": "hello", "metadata": {"message_id": "m42"}})
    assert victim.status_code == attacker.status_code == 200
    assert attacker.json()
    assert all(r["recipient_id"] == "attacker" for r in attacker.json())  # its own fresh reply
    victim_ids = {r["message_id"] for r in victim.json()}
    assert not victim_ids & {r["message_id"] for r in attacker.json()}
    [said] = [m for m in await _history(db, "attacker", "rest") if m.direction == "in"]
    assert said.text == "hello"
    again = await client.post(REST, headers=channel, json={
        "sender": "victim", "message": "/cart", "metadata": {"message_id": "m42"}})
    assert again.json() == victim.json()  # the victim's own repeat still gets its stored replies


@pytest.mark.parametrize(("role", "status", "code"), [
    (None, 401, "rest_auth_missing"),
    ("unknown", 401, "rest_token_invalid"),
    ("agent", 403, "rest_token_wrong_role"),
    ("merchant", 403, "rest_token_wrong_role"),
])
async def test_rest_without_a_channel_credential_is_refused_and_not_processed(
        client: httpx.AsyncClient, db: Database, role: str | None, status: int, code: str) -> None:
    headers = {} if role is None else \
        {"Authorization": "Bearer st_not-a-real-token"} if role == "unknown" else await _token(db, role)
    response = await client.post(REST, json={"sender": "victim", "message": "where is my order?"}, headers=headers)
    _problem(response, status, code)
    assert await _history(db, "victim", "rest") == []


@pytest.mark.slow  # loads the real encoders (MiniLM + USE)
@pytest.mark.parametrize("role", ["channel", "admin"])
async def test_rest_with_a_channel_or_admin_token_is_answered(client: httpx.AsyncClient, db: Database,
                                                              role: str) -> None:
    response = await client.post(REST, json={"sender": f"by-{role}", "message": "/cart"},
                                 headers=await _token(db, role))
    assert response.status_code == 200, response.text
    assert response.json()[0]["recipient_id"] == f"by-{role}"


async def test_a_revoked_channel_token_is_refused(client: httpx.AsyncClient, db: Database) -> None:
    headers = await _token(db, "channel")
    async with db.unit_of_work() as session:
        await session.execute(text("UPDATE api_tokens SET revoked_at = CURRENT_TIMESTAMP"))
    _problem(await client.post(REST, json={"sender": "s", "message": "/cart"}, headers=headers),
             401, "rest_token_invalid")


@pytest.mark.slow  # loads the real encoders (MiniLM + USE)
async def test_rest_signed_requests(client: httpx.AsyncClient, db: Database) -> None:
    body = json.dumps({"sender": "signed-1", "message": "/cart"}).encode()
    answered = await client.post(REST, content=body, headers=_signed(body))
    assert answered.status_code == 200, answered.text
    assert answered.json()[0]["recipient_id"] == "signed-1"

    changed = body.replace(b"signed-1", b"signed-2")
    _problem(await client.post(REST, content=changed, headers=_signed(body)), 401, "rest_signature_invalid")
    old = _signed(body, at=time.time() - 301)  # a captured request replayed later
    _problem(await client.post(REST, content=body, headers=old), 401, "rest_signature_expired")
    _problem(await client.post(REST, content=body, headers=_signed(body, secret="another-secret-0123456789")),
             401, "rest_signature_invalid")
    _problem(await client.post(REST, content=body, headers={"content-type": "application/json",
                                                             "X-ShopTalk-Signature": "v1=abc"}),
             401, "rest_signature_malformed")
    assert await _history(db, "signed-2", "rest") == []
    assert len([m for m in await _history(db, "signed-1", "rest") if m.direction == "in"]) == 1


async def test_signed_requests_are_refused_when_no_secret_is_set(db: Database, settings: Settings) -> None:
    unsigned = settings.model_copy(update={"security": settings.security.model_copy(
        update={"rest_channel_secret": None})})
    body = json.dumps({"sender": "signed-3", "message": "/cart"}).encode()
    async with app_client(create_app(unsigned, database=db)) as http:
        _problem(await http.post(REST, content=body, headers=_signed(body)), 401, "rest_signature_disabled")


@pytest.mark.slow  # loads the real encoders (MiniLM + USE)
async def test_an_open_rest_channel_works_in_development_only(db: Database) -> None:
    open_settings = Settings(environment="development", security={"secret_key": "test-secret-key-0123456789"},
                             rest_channel={"auth": "open"})
    async with app_client(create_app(open_settings, database=db)) as http:
        response = await http.post(REST, json={"sender": "dev-1", "message": "/cart"})
        assert response.status_code == 200, response.text
        assert response.json()[0]["recipient_id"] == "dev-1"
    for environment in ("test", "production"):
        with pytest.raises(ValueError, match="allowed only with SHOPTALK_ENVIRONMENT=development"):
            Settings(environment=environment, security={"secret_key": "test-secret-key-0123456789"},
                     rest_channel={"auth": "open"})
    assert Settings(environment="development").rest_channel.auth == "token"  # never open unless set


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
    with caplog.at_level("ERROR", logger="api.chat_runtime"):
        await _started_app(db, configured, telegram_double)
    assert telegram_double.webhook is None
    assert any("HTTPS URL must be provided" in r.getMessage() for r in caplog.records)
    assert BOT_TOKEN not in caplog.text
