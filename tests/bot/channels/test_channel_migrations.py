"""The channels' schema steps keep what was stored (SQLite and PostgreSQL)."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from api.migrations import upgrade
from bot.channels import repository
from kit.db import Database
from tests.migrating import migrate_to


@pytest.mark.slow
async def test_payload_tokens_move_to_the_neutral_table_and_back(unmigrated_url: str) -> None:
    database = Database(unmigrated_url)
    try:
        await upgrade(database.engine)
        await migrate_to(database, unmigrated_url, "downgrade", "bot_channels_0003")
        async with database.engine.begin() as connection:  # a WhatsApp row id stored before the rename
            await connection.execute(text("INSERT INTO bot_telegram_callback_tokens (token, payload, created_at) "
                                          "VALUES ('tok123', 'search:kettle page 2', '2026-12-01 10:00:00')"))
        await migrate_to(database, unmigrated_url, "upgrade", "heads")
        async with database.sessions() as session:
            assert await repository.callback_payload(session, token="tok123") == "search:kettle page 2"
        async with database.unit_of_work() as session:
            await repository.save_callback_token(session, token="tok456", payload="cart:add KET-1")
        await migrate_to(database, unmigrated_url, "downgrade", "bot_channels_0003")
        async with database.engine.begin() as connection:
            rows = (await connection.execute(text("SELECT token FROM bot_telegram_callback_tokens"))).scalars()
            assert sorted(rows) == ["tok123", "tok456"]
    finally:
        await database.dispose()
