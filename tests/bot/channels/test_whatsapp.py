"""WhatsApp Cloud API: signed webhooks in, Graph API messages out, against the loopback Graph API double."""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.app import create_app
from api.workers.channels import outbox_handlers
from bot.channels import repository, whatsapp
from bot.channels.models import ChannelReceipt
from bot.channels.pacing import Pacer
from bot.channels.receipts import delivery_statuses
from bot.channels.whatsapp import WhatsAppChannel
from bot.conversations.models import ConversationMessage
from bot.messages import Button, OutboundMessage, ProductCard
from kit.clock import utcnow
from kit.db import Database
from kit.outbox import DEAD, DELIVERED, DeliveryError, OutboxEvent, OutboxWorker, enqueue
from kit.settings import Settings, WhatsAppSettings
from tests.api.fuzzing import use_cheap_bot
from tests.bot.channels.graph_double import ACCESS_TOKEN, APP_SECRET, GraphDouble
from tests.bot.handoff.conftest import PASSWORD, make_agent, shopper_says
from tests.http import app_client

VERIFY_TOKEN = "verify-token-0123456789"
SHOPPER = "4915112345678"


def whatsapp_settings(graph: GraphDouble) -> WhatsAppSettings:
    return WhatsAppSettings(phone_number_id=graph.phone_number_id, access_token=ACCESS_TOKEN, app_secret=APP_SECRET,
                            verify_token=VERIFY_TOKEN, api_base=graph.base_url, templates={"order_update": "en_US"})


@pytest.fixture
async def client(db: Database, graph: GraphDouble) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"},
                        whatsapp=whatsapp_settings(graph))
    app = create_app(settings, database=db)
    async with app_client(app) as http:
        use_cheap_bot(app)
        yield http


@pytest.fixture
async def sender(db: Database, graph: GraphDouble) -> AsyncIterator[WhatsAppChannel]:
    channel = WhatsAppChannel(settings=whatsapp_settings(graph), database=db)
    try:
        yield channel
    finally:
        await channel.close()


async def post(client: httpx.AsyncClient, graph: GraphDouble, hook: dict[str, Any],
               signature: str | None = "good") -> httpx.Response:
    raw = json.dumps(hook).encode()
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = graph.sign(raw) if signature == "good" else signature
    return await client.post("/webhooks/whatsapp", content=raw, headers=headers)


async def inbound_rows(db: Database, sender: str = SHOPPER) -> list[ConversationMessage]:
    async with db.sessions() as session:
        rows = (await session.scalars(select(ConversationMessage).where(
            ConversationMessage.channel == "whatsapp", ConversationMessage.direction == "in")
            .order_by(ConversationMessage.id))).all()
    return [r for r in rows if (r.content or {}).get("metadata", {}).get("whatsapp", {}).get("from") == sender]


async def test_subscription_verification(client: httpx.AsyncClient) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    answer = await client.get("/webhooks/whatsapp", params=params)
    assert answer.status_code == 200
    assert answer.text == "1158201444"
    for wrong in ({**params, "hub.verify_token": "nope"}, {**params, "hub.mode": "unsubscribe"}):
        refused = await client.get("/webhooks/whatsapp", params=wrong)
        assert refused.status_code == 403
        assert refused.json()["code"] == "whatsapp_verify_token_invalid"


@pytest.mark.parametrize(("signature", "status", "code"), [
    (None, 401, "whatsapp_signature_missing"),
    ("sha256=" + "0" * 64, 403, "whatsapp_signature_invalid"),
    ("sha1=abc", 403, "whatsapp_signature_invalid"),
])
async def test_a_forged_webhook_is_refused_and_nothing_stored(client: httpx.AsyncClient, db: Database,
                                                              graph: GraphDouble, signature: str | None,
                                                              status: int, code: str) -> None:
    response = await post(client, graph, graph.text(SHOPPER, "hello"), signature)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert await inbound_rows(db) == []
    async with db.sessions() as session:
        assert await repository.last_inbound_at(session, channel="whatsapp", sender_id=SHOPPER) is None
    await asyncio.sleep(0.3)
    assert graph.sent == []


async def test_a_message_is_answered_through_graph_and_a_replay_only_once(client: httpx.AsyncClient, db: Database,
                                                                          graph: GraphDouble) -> None:
    hook = graph.text(SHOPPER, "/cart", wamid="wamid.REPLAYED1")
    assert (await post(client, graph, hook)).json() == {"ok": True}
    sent = await graph.wait_for_sent(SHOPPER, 1)
    assert graph.refused == []
    assert sent[0].text
    assert (await post(client, graph, hook)).status_code == 200  # Meta delivering the same message again
    await asyncio.sleep(0.8)
    assert len(graph.to(SHOPPER)) == len(sent)
    assert len(await inbound_rows(db)) == 1
    [row] = await inbound_rows(db)
    assert row.external_id == "wamid.REPLAYED1"


async def test_buttons_and_lists_round_trip(client: httpx.AsyncClient, db: Database, graph: GraphDouble) -> None:
    await post(client, graph, graph.text(SHOPPER, "hello"))
    await graph.wait_for_sent(SHOPPER, 1)
    deadline = time.monotonic() + 60  # a deadline for a failing run, not a speed: the menu follows the greeting
    while not any(s.ids() for s in graph.to(SHOPPER)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    interactive = [s for s in graph.to(SHOPPER) if s.ids()]
    assert interactive, [s.body for s in graph.to(SHOPPER)]  # the bot's menu: buttons or a list
    assert graph.refused == []  # every message within WhatsApp's limits
    pressed = interactive[-1]
    before = len(graph.to(SHOPPER))
    await post(client, graph, graph.press(SHOPPER, pressed, pressed.ids()[0]))
    await graph.wait_for_sent(SHOPPER, before + 1)
    rows = await inbound_rows(db)
    assert rows[-1].kind == "callback"
    assert rows[-1].payload == pressed.ids()[0] or pressed.ids()[0].startswith("~")


async def test_a_sticker_gets_a_polite_reply_and_its_raw_event_is_kept(client: httpx.AsyncClient, db: Database,
                                                                        graph: GraphDouble) -> None:
    sticker = {"mime_type": "image/webp", "sha256": "f2f7ad8a", "id": "3394526970854341", "animated": False}
    await post(client, graph, graph.message(SHOPPER, "sticker", sticker))
    [reply] = await graph.wait_for_sent(SHOPPER, 1)
    assert "only read text" in reply.text
    [row] = await inbound_rows(db)
    assert row.kind == "unsupported"
    assert row.content is not None
    assert row.content["metadata"]["whatsapp"]["sticker"]["id"] == "3394526970854341"


async def test_an_image_reaches_the_agent_with_its_media_id(client: httpx.AsyncClient, db: Database,
                                                           graph: GraphDouble) -> None:
    image = {"mime_type": "image/jpeg", "sha256": "0a1b2c", "id": "1479537139650973"}
    await post(client, graph, graph.message(SHOPPER, "image", image))
    await post(client, graph, graph.message(SHOPPER, "image", {**image, "id": "22", "caption": "/cart"}))
    await post(client, graph, graph.message(SHOPPER, "location", {
        "latitude": 52.5251, "longitude": 13.3694, "name": "Berlin Hauptbahnhof", "address": "Europaplatz 1"}))
    first, captioned, place = await inbound_rows(db)
    assert first.content is not None
    assert first.content["metadata"]["media"] == {"type": "image", "id": "1479537139650973",
                                                  "mime_type": "image/jpeg", "sha256": "0a1b2c"}
    assert captioned.text == "/cart"  # the caption is the shopper's words
    assert place.text == "Berlin Hauptbahnhof, Europaplatz 1"
    assert place.content is not None
    assert place.content["metadata"]["location"]["latitude"] == 52.5251


async def test_statuses_are_recorded_per_message_and_never_go_back(client: httpx.AsyncClient, db: Database,
                                                                   graph: GraphDouble) -> None:
    await post(client, graph, graph.text(SHOPPER, "/cart"))
    [sent] = (await graph.wait_for_sent(SHOPPER, 1))[:1]
    await wait_for_noted_send(db, sent.wamid)  # the sender notes the message Graph accepted just after the call
    for status in ("delivered", "read", "sent"):  # a late "sent" arrives after "read"
        assert (await post(client, graph, graph.status(sent, status))).status_code == 200
    async with db.sessions() as session:
        receipt = await session.scalar(select(ChannelReceipt).where(ChannelReceipt.external_id == sent.wamid))
        assert receipt is not None
        assert receipt.status == "read"
        assert receipt.message_id is not None
        assert (await delivery_statuses(session, [receipt.message_id]))[receipt.message_id] == "read"
    failed = {"code": 131026, "title": "Message undeliverable"}
    other = graph.sent[-1]
    await post(client, graph, graph.status(other, "failed", [failed]))
    async with db.sessions() as session:
        receipt = await session.scalar(select(ChannelReceipt).where(ChannelReceipt.external_id == other.wamid))
        assert receipt is not None
        assert receipt.status == "failed"
        assert receipt.error == "131026: Message undeliverable"


async def _queue(db: Database, message: OutboundMessage, key: str) -> None:
    async with db.unit_of_work() as session:
        await enqueue(session, topic="send.whatsapp", payload=message.model_dump(mode="json"), idempotency_key=key)


async def _event(db: Database, key: str) -> OutboxEvent:
    async with db.sessions() as session:
        event = await session.scalar(select(OutboxEvent).where(OutboxEvent.idempotency_key == key))
    assert event is not None
    return event


async def test_outside_the_window_only_a_registered_template_goes(db: Database, graph: GraphDouble,
                                                                 sender: WhatsAppChannel) -> None:
    progress: dict[str, int] = {}

    async def handler(event: OutboxEvent) -> None:
        await sender.send(event, progress=progress)

    worker = OutboxWorker(db.sessions, {"send.whatsapp": handler})
    await _queue(db, OutboundMessage(channel="whatsapp", recipient_id=SHOPPER, text="Your parcel left"), "late-1")
    await worker.run_once()
    dead = await _event(db, "late-1")
    assert dead.status == DEAD
    assert "24-hour window closed" in (dead.last_error or "")
    assert "order_update" in (dead.last_error or "")
    assert graph.sent == []
    template = OutboundMessage(channel="whatsapp", recipient_id=SHOPPER, text="[order_update]",
                               custom={whatsapp.TEMPLATE_KEY: {"name": "order_update", "parameters": ["A-1001"]}})
    await _queue(db, template, "late-2")
    await worker.run_once()
    assert (await _event(db, "late-2")).status == DELIVERED
    [went] = graph.sent
    assert went.body["template"] == {"name": "order_update", "language": {"code": "en_US"},
                                     "components": [{"type": "body", "parameters": [{"type": "text",
                                                                                     "text": "A-1001"}]}]}
    # A window that was open and has closed: the shopper wrote 25 hours ago.
    async with db.unit_of_work() as session:
        await repository.touch_contact(session, channel="whatsapp", sender_id=SHOPPER,
                                       at=utcnow() - timedelta(hours=25))
    window = await sender.window(SHOPPER)
    assert not window.open
    assert window.templates == ["order_update"]


async def test_graph_error_codes_retry_or_dead_letter(db: Database, graph: GraphDouble,
                                                      sender: WhatsAppChannel) -> None:
    async with db.unit_of_work() as session:
        await repository.touch_contact(session, channel="whatsapp", sender_id=SHOPPER, at=utcnow())
    graph.last_inbound[SHOPPER] = utcnow().timestamp()
    message = OutboundMessage(channel="whatsapp", recipient_id=SHOPPER, text="hi", message_id=7)
    event = OutboxEvent(topic="send.whatsapp", payload=message.model_dump(mode="json"), idempotency_key="msg:7")
    expectations = [(130429, 400, 2.0, False), (131056, 400, 6.0, False), (131000, 500, None, False),
                    (131026, 400, None, True), (190, 401, None, True), (131047, 400, None, True)]
    for code, status, retry_after, permanent in expectations:
        graph.fail_next(code, status)
        with pytest.raises(DeliveryError) as raised:
            await sender.send(event, progress={})
        assert raised.value.retry_after == retry_after, code
        assert raised.value.permanent is permanent, code
        assert str(code) in str(raised.value)
        sender.pacer = Pacer()  # forget the pause Graph's answer set (test_pacing covers it)
    await sender.send(event, progress={})  # the peer is well again
    assert [s.text for s in graph.sent] == ["hi"]
    assert ACCESS_TOKEN not in str(raised.value)


async def test_rich_replies_fit_whatsapp_and_long_payloads_come_back(db: Database, graph: GraphDouble,
                                                                     sender: WhatsAppChannel) -> None:
    graph.last_inbound[SHOPPER] = utcnow().timestamp()
    async with db.unit_of_work() as session:
        await repository.touch_contact(session, channel="whatsapp", sender_id=SHOPPER, at=utcnow())
    long_payload = "ship:" + "x" * 300
    message = OutboundMessage(
        channel="whatsapp", recipient_id=SHOPPER, text="Lorem ipsum dolor sit amet. " * 200, locale="zh",
        buttons=[Button(title=f"Delivery service number {i}", payload=f"ship:{i}") for i in range(11)]
        + [Button(title="Express", payload=long_payload), Button(title="Pay now", url="https://pay.example/c/1")],
        cards=[ProductCard(sku="KET-1", product_id=1, title="Electric kettle " * 10, price_text="€39.90",
                           image_url="https://img.example/k.jpg",
                           buttons=[Button(title="Add to cart", payload="cart:add:KET-1")])])
    event = OutboxEvent(topic="send.whatsapp", payload=message.model_dump(mode="json"), idempotency_key="msg:9")
    await sender.send(event, progress={})
    assert graph.refused == []  # the double validates every limit
    kinds = [s.kind for s in graph.sent]
    assert kinds == ["text", "text", "interactive.list", "interactive.list", "interactive.button"]
    lists = [s for s in graph.sent if s.kind == "interactive.list"]
    assert lists[0].body["interactive"]["action"]["button"] == "选项"  # the conversation's language
    assert sum(len(s.ids()) for s in lists) == 12
    assert all(len(s.text) <= (4096 if s.kind == "text" else 1024) for s in graph.sent)
    assert any("Pay now: https://pay.example/c/1" in s.text for s in graph.sent)  # the payment link, in the text
    card = graph.sent[-1].body["interactive"]
    assert card["header"]["image"]["link"] == "https://img.example/k.jpg"
    assert "€39.90" in card["body"]["text"]
    token = next(i for s in lists for i in s.ids() if i.startswith("~"))
    pressed = whatsapp.inbound_from({"from": SHOPPER, "id": "wamid.P", "type": "interactive", "interactive": {
        "type": "list_reply", "list_reply": {"id": token, "title": "Express"}}}, {})
    assert (await whatsapp.resolve_payload(db, pressed)).payload == long_payload


async def test_the_console_sees_the_window_and_sends_a_registered_template(client: httpx.AsyncClient, db: Database,
                                                                          graph: GraphDouble) -> None:
    await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "where is my parcel?", channel="whatsapp", sender=SHOPPER, human=True)
    signed_in = await client.post("/api/v1/agent/session", json={"email": "ana@shop.test", "password": PASSWORD})
    csrf = {"X-CSRF-Token": signed_in.json()["csrf_token"]}
    window = (await client.get(f"/api/v1/agent/conversations/{conversation_id}/whatsapp-window")).json()
    assert window == {"conversation_id": conversation_id, "open": False, "closes_at": None,
                      "templates": ["order_update"]}  # the shopper's message never came through the webhook
    path = f"/api/v1/agent/conversations/{conversation_id}/whatsapp-template"
    unknown = await client.post(path, json={"name": "spam_blast"}, headers=csrf)
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "whatsapp_template_unknown"
    assert (await client.post(path, json={"name": "order_update"})).status_code == 403  # no CSRF token
    sent = await client.post(path, json={"name": "order_update", "parameters": ["A-1001"]}, headers=csrf)
    assert sent.status_code == 201, sent.text
    [template] = await graph.wait_for_sent(SHOPPER, 1)
    assert template.body["type"] == "template"
    assert template.body["template"]["name"] == "order_update"
    webchat_id = await shopper_says(db, "hi", channel="webchat", sender="web-1")
    other = await client.get(f"/api/v1/agent/conversations/{webchat_id}/whatsapp-window")
    assert other.status_code == 404
    assert other.json()["code"] == "not_whatsapp"


async def test_the_worker_process_sends_for_the_configured_channels(db: Database, graph: GraphDouble) -> None:
    plain = Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"})
    assert {"send.whatsapp", "send.wechat"}.isdisjoint(outbox_handlers(plain, db))
    configured = plain.model_copy(update={"whatsapp": whatsapp_settings(graph)})
    handlers = outbox_handlers(configured, db)
    assert "send.whatsapp" in handlers
    graph.last_inbound[SHOPPER] = utcnow().timestamp()
    async with db.unit_of_work() as session:
        await repository.touch_contact(session, channel="whatsapp", sender_id=SHOPPER, at=utcnow())
    message = OutboundMessage(channel="whatsapp", recipient_id=SHOPPER, text="from the worker")
    await handlers["send.whatsapp"](OutboxEvent(topic="send.whatsapp", payload=message.model_dump(mode="json"),
                                                idempotency_key="msg:worker"))
    assert [s.text for s in graph.sent] == ["from the worker"]


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")


async def wait_for_noted_send(db: Database, wamid: str, timeout: float = 60.0) -> None:
    """Until the sender has recorded the message Graph accepted (its receipt names our message)."""
    deadline = time.monotonic() + timeout
    while True:
        async with db.sessions() as session:
            receipt = await session.scalar(select(ChannelReceipt).where(ChannelReceipt.external_id == wamid))
        if (receipt is not None and receipt.message_id is not None) or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.05)


async def wait_for_media(db: Database, count: int, timeout: float = 60.0) -> list[Any]:
    from bot.channels.models import ChannelMedia

    deadline = time.monotonic() + timeout
    while True:
        async with db.sessions() as session:
            rows = list((await session.scalars(select(ChannelMedia).where(ChannelMedia.status != "pending")
                                               .order_by(ChannelMedia.id))).all())
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.05)


async def test_a_shoppers_image_is_fetched_checked_and_shown_only_to_agents(client: httpx.AsyncClient, db: Database,
                                                                           graph: GraphDouble) -> None:
    await make_agent(db, "ana@shop.test")
    graph.expired_urls = 1  # the first download URL has expired by the time it is used: asked for again
    await post(client, graph, graph.media_message(SHOPPER, "image", PNG, "image/png", caption="is this in stock?"))
    [row] = await wait_for_media(db, 1)
    assert (row.status, row.mime_type, row.size) == ("stored", "image/png", len(PNG))
    media_id = row.media_key
    assert graph.media_requests == [f"info:{media_id}", f"expired:{media_id}", f"info:{media_id}",
                                    f"download:{media_id}"]
    [message] = await inbound_rows(db)
    path = f"/api/v1/agent/conversations/{message.conversation_id}/messages/{message.id}/media"
    assert (await client.get(path)).status_code == 401  # no agent session: nothing
    await client.post("/api/v1/agent/session", json={"email": "ana@shop.test", "password": PASSWORD})
    shown = await client.get(path)
    assert shown.status_code == 200
    assert shown.content == PNG
    assert shown.headers["content-type"] == "image/png"
    assert shown.headers["content-disposition"].startswith("inline;")
    assert shown.headers["x-content-type-options"] == "nosniff"
    view = (await client.get(f"/api/v1/agent/conversations/{message.conversation_id}")).json()
    [seen] = [m for m in view["messages"] if m["id"] == message.id]
    assert seen["text"] == "is this in stock?"
    assert seen["media"]["url"] == path
    assert (seen["media"]["kind"], seen["media"]["status"], seen["media"]["inline"]) == ("image", "stored", True)
    wrong = f"/api/v1/agent/conversations/{message.conversation_id + 1}/messages/{message.id}/media"
    assert (await client.get(wrong)).status_code == 404


async def test_documents_download_svg_never_renders_and_bad_files_are_refused(client: httpx.AsyncClient,
                                                                             db: Database,
                                                                             graph: GraphDouble) -> None:
    await make_agent(db, "ana@shop.test")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
    await post(client, graph, graph.media_message(SHOPPER, "document", svg, "image/svg+xml", filename="photo.svg"))
    await post(client, graph, graph.media_message(SHOPPER, "document", b"%PDF-1.4 invoice", "application/pdf",
                                                  filename="Rechnung März.pdf"))
    bad = graph.message(SHOPPER, "image", {"mime_type": "image/png", "id": graph.add_media(PNG, "image/png"),
                                           "sha256": "0" * 64})  # the webhook announced other bytes
    await post(client, graph, bad)
    limit = whatsapp_settings(graph).media_max_bytes
    await post(client, graph, graph.media_message(SHOPPER, "video", b"v" * (limit + 1), "video/mp4"))
    rows = await wait_for_media(db, 4)
    assert [r.status for r in rows] == ["stored", "stored", "failed", "failed"]
    assert "sha256" in (rows[2].error or "")
    assert "limit" in (rows[3].error or "")
    await client.post("/api/v1/agent/session", json={"email": "ana@shop.test", "password": PASSWORD})
    svg_message, pdf_message, bad_message, _ = await inbound_rows(db)
    base = f"/api/v1/agent/conversations/{svg_message.conversation_id}/messages"
    drawn = await client.get(f"{base}/{svg_message.id}/media")
    assert drawn.status_code == 200
    assert drawn.headers["content-type"] == "application/octet-stream"  # never image/svg+xml: it would run
    assert drawn.headers["content-disposition"].startswith("attachment;")
    assert drawn.headers["x-content-type-options"] == "nosniff"
    pdf = await client.get(f"{base}/{pdf_message.id}/media")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == (
        "attachment; filename=\"Rechnung_M_rz.pdf\"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf")
    assert (await client.get(f"{base}/{bad_message.id}/media")).status_code == 404
