from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram.client.telegram import TelegramAPIServer

from bot.channels.telegram import TelegramChannel
from bot.messages import InboundMessage
from kit.db import Database
from tests.bot.channels.graph_double import graph  # noqa: F401 - the one Graph API double fixture
from tests.bot.channels.telegram_double import TelegramDouble

# Looks like a real token (digits:35 characters) so the log redaction has something to catch.
BOT_TOKEN = "123456789:AAHfake-test-token_0123456789abcdefghi"


@pytest.fixture
async def telegram_double() -> AsyncIterator[TelegramDouble]:
    double = await TelegramDouble(token=BOT_TOKEN).start()
    try:
        yield double
    finally:
        await double.stop()


async def _only_sends(inbound: InboundMessage) -> None:
    raise AssertionError("no inbound expected")


@pytest.fixture
async def channel(db: Database, telegram_double: TelegramDouble) -> AsyncIterator[TelegramChannel]:
    """A Telegram channel that only sends, through the Bot API double."""
    telegram = TelegramChannel(token=BOT_TOKEN, database=db, handle=_only_sends,
                               api=TelegramAPIServer.from_base(telegram_double.base_url))
    try:
        yield telegram
    finally:
        await telegram.close()
