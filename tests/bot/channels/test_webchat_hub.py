"""Web chat delivery: frames parse strictly, and replies reach a session's sockets in any API process."""
from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from api.workers.channels import WEBCHAT_TOPIC, channel_handlers
from bot.channels.webchat import BadFrame, Frame, WebchatHub, parse_client_frame, to_inbound
from bot.messages import OutboundMessage
from kit.clock import utcnow
from kit.outbox import OutboxEvent
from kit.tasks import cancel_and_wait

# The run's own Redis database when given (helpers and CI jobs share one server), else the default one.
REDIS_URL = os.environ.get("SHOPTALK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _event(reply: OutboundMessage) -> OutboxEvent:
    return OutboxEvent(id=1, topic=WEBCHAT_TOPIC, payload=reply.model_dump(mode="json"),
                       idempotency_key=f"msg:{reply.message_id}", status="delivering", attempts=1, max_attempts=8,
                       next_attempt_at=utcnow(), created_at=utcnow())


@pytest.mark.parametrize(("raw", "code"), [
    ("{nope", "malformed_json"),
    ("[1]", "invalid_frame"),
    ('{"type": "message", "id": "a b", "text": "hi"}', "invalid_frame"),
    ('{"type": "message", "id": "m1", "text": "   "}', "empty_message"),
    ('{"type": "button", "id": "m1"}', "invalid_frame"),
    ('{"type": "shell", "id": "m1", "text": "rm -rf"}', "invalid_frame"),
])
def test_bad_frames_are_refused_with_a_code(raw: str, code: str) -> None:
    with pytest.raises(BadFrame) as refused:
        parse_client_frame(raw)
    assert refused.value.code == code


def test_frames_become_inbound_messages_scoped_by_session() -> None:
    text = to_inbound("session-0001", parse_client_frame('{"type": "message", "id": "m1", "text": "<b>hi</b>"}'))
    assert (text.channel, text.sender_id, text.message_id, text.kind, text.text) == (
        "webchat", "session-0001", "session-0001:m1", "text", "<b>hi</b>")
    button = to_inbound("session-0001", parse_client_frame(
        '{"type": "button", "id": "m2", "payload": "cart:add:KET-1", "text": "Add to cart"}'))
    assert (button.kind, button.payload) == ("callback", "cart:add:KET-1")
    orders = to_inbound("session-0001", parse_client_frame('{"type": "message", "id": "m3", "text": "/orders"}'))
    assert (orders.kind, orders.payload) == ("callback", "menu:order")


async def test_outbox_reply_reaches_the_socket_in_this_process() -> None:
    hub = WebchatHub(None)
    received: list[Frame] = []

    async def socket(frame: Frame) -> None:
        received.append(frame)

    hub.attach("session-local-1", socket)
    reply = OutboundMessage(channel="webchat", recipient_id="session-local-1", text="hello", message_id=7)
    await channel_handlers(telegram=None, hub=hub)[WEBCHAT_TOPIC](_event(reply))
    assert received == [{"type": "reply", "message": reply.model_dump(mode="json")}]


async def test_outbox_reply_reaches_a_socket_held_by_another_process_through_redis() -> None:
    worker_side, api_side = WebchatHub(REDIS_URL), WebchatHub(REDIS_URL)
    try:
        await worker_side.pubsub.connect().ping()  # type: ignore[union-attr]
    except Exception:  # any connection failure means no Redis here
        await worker_side.close()
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    session_id = f"session-{uuid.uuid4().hex[:12]}"
    received: list[Frame] = []
    arrived = asyncio.Event()

    async def socket(frame: Frame) -> None:
        received.append(frame)
        arrived.set()

    api_side.attach(session_id, socket)
    ready = asyncio.Event()
    subscriber = asyncio.create_task(api_side.run_subscriber(ready))
    try:
        await asyncio.wait_for(ready.wait(), timeout=5)
        reply = OutboundMessage(channel="webchat", recipient_id=session_id, text="from the worker", message_id=9)
        await channel_handlers(telegram=None, hub=worker_side)[WEBCHAT_TOPIC](_event(reply))
        await asyncio.wait_for(arrived.wait(), timeout=5)
        assert received == [{"type": "reply", "message": reply.model_dump(mode="json")}]
    finally:
        await cancel_and_wait(subscriber)  # one cancel() can be lost on 3.11 (kit.tasks): never hang the run here
        await worker_side.close()
        await api_side.close()
