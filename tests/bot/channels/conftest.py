from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

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
