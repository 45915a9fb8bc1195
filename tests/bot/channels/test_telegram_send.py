"""The send.telegram outbox handler against the Bot API double: retries, refusals, nothing lost."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from api.workers.channels import TELEGRAM_TOPIC, channel_handlers
from bot.channels.telegram import TelegramChannel, install_log_redaction, resolve_callback_data
from bot.messages import Button, OutboundMessage
from kit.clock import utcnow
from kit.db import Database
from kit.outbox import DEAD, DELIVERED, PENDING, OutboxEvent, OutboxWorker, enqueue
from tests.bot.channels.conftest import BOT_TOKEN
from tests.bot.channels.telegram_double import TelegramDouble

CHAT = 4242


async def _enqueue(db: Database, reply: OutboundMessage, key: str = "msg:1") -> int:
    async with db.unit_of_work() as session:
        event = await enqueue(session, topic=TELEGRAM_TOPIC, payload=reply.model_dump(mode="json"),
                              idempotency_key=key)
        return event.id


async def _event(db: Database, event_id: int) -> OutboxEvent:
    async with db.unit_of_work() as session:
        event: OutboxEvent | None = await session.get(OutboxEvent, event_id)
        assert event is not None
        return event


def _worker(db: Database, channel: TelegramChannel) -> OutboxWorker:
    return OutboxWorker(db.sessions, channel_handlers(telegram=channel, hub=None))


async def _make_due(db: Database, event_id: int) -> None:
    async with db.unit_of_work() as session:
        event = await session.get(OutboxEvent, event_id)
        assert event is not None
        event.next_attempt_at = utcnow()


async def test_reply_is_sent_escaped_split_and_with_short_callback_data(
        db: Database, channel: TelegramChannel, telegram_double: TelegramDouble) -> None:
    long_payload = "search:" + "不锈钢电水壶" * 20
    reply = OutboundMessage(channel="telegram", recipient_id=str(CHAT), message_id=1,
                            text="<b>not bold</b> & <a href='x'>" + "z" * 5000,
                            buttons=[Button(title="More <like> this", payload=long_payload),
                                     Button(title="Cart", payload="/cart")])
    event_id = await _enqueue(db, reply)
    assert await _worker(db, channel).run_once() == 1
    sent = telegram_double.to(CHAT)
    assert len(sent) == 2
    assert sent[0].parse_mode == "HTML"
    assert sent[0].text.startswith("<b>not bold</b> & <a href='x'>")
    assert "".join(m.text for m in sent) == reply.text
    more = sent[1].button("More")
    assert more["text"] == "More <like> this"
    assert len(more["callback_data"].encode()) <= 64
    async with db.unit_of_work() as session:
        assert await resolve_callback_data(session, more["callback_data"]) == long_payload
        assert await resolve_callback_data(session, "~forgedtoken") is None
    assert sent[1].button("Cart")["callback_data"] == "/cart"
    assert (await _event(db, event_id)).status == DELIVERED


async def test_429_retry_after_is_honoured(db: Database, channel: TelegramChannel,
                                           telegram_double: TelegramDouble) -> None:
    telegram_double.rate_limit_next = [7]
    event_id = await _enqueue(db, OutboundMessage(channel="telegram", recipient_id=str(CHAT), text="hi"))
    worker = _worker(db, channel)
    await worker.run_once()
    event = await _event(db, event_id)
    assert event.status == PENDING
    assert timedelta(seconds=6) <= event.next_attempt_at - utcnow() <= timedelta(seconds=7.5)
    assert "retry" in (event.last_error or "").lower()
    assert telegram_double.to(CHAT) == []
    assert await worker.run_once() == 0  # not due before Telegram's retry_after
    await _make_due(db, event_id)
    assert await worker.run_once() == 1
    assert [m.text for m in telegram_double.to(CHAT)] == ["hi"]
    assert (await _event(db, event_id)).status == DELIVERED


async def test_429_mid_reply_resends_only_the_missing_pieces(db: Database, channel: TelegramChannel,
                                                             telegram_double: TelegramDouble) -> None:
    telegram_double.rate_limit_next = [0, 3]  # first piece goes through, the second is throttled
    reply = OutboundMessage(channel="telegram", recipient_id=str(CHAT), text="a" * 4096 + "b" * 10)
    event_id = await _enqueue(db, reply)
    worker = _worker(db, channel)
    await worker.run_once()
    assert [len(m.text) for m in telegram_double.to(CHAT)] == [4096]
    await _make_due(db, event_id)
    await worker.run_once()
    assert [m.text for m in telegram_double.to(CHAT)] == ["a" * 4096, "b" * 10]


async def test_blocked_by_the_user_is_a_recorded_permanent_failure(db: Database, channel: TelegramChannel,
                                                                  telegram_double: TelegramDouble) -> None:
    telegram_double.blocked_chats.add(CHAT)
    reply = OutboundMessage(channel="telegram", recipient_id=str(CHAT), text="your order shipped")
    event_id = await _enqueue(db, reply)
    await _worker(db, channel).run_once()
    event = await _event(db, event_id)
    assert event.status == DEAD
    assert "bot was blocked by the user" in (event.last_error or "")
    assert event.attempts == 1  # no pointless retries
    assert OutboundMessage.model_validate(event.payload).text == "your order shipped"  # kept for a retry later


def test_bot_token_never_reaches_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    url = f"https://api.telegram.org/bot{BOT_TOKEN}/getUpdates"
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("aiogram.dispatcher").error("Failed to fetch updates - %s", url)
        try:
            raise RuntimeError(f"cannot reach {url}")
        except RuntimeError:
            logging.getLogger("aiogram.event").exception("Cause exception while process update")
    assert caplog.records
    text = caplog.text + "".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert BOT_TOKEN not in text
    assert "[redacted]" in text
