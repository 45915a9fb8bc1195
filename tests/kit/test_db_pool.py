"""Pooled PostgreSQL connections the server closed are replaced at checkout (no ping per checkout)."""
from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from kit.db import Database


async def test_a_connection_the_server_closed_is_replaced_at_checkout(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to drop connections")
    async with db.sessions() as session:
        first = await session.scalar(text("SELECT pg_backend_pid()"))
    async with db.sessions() as session:  # the pool hands the same connection back
        assert await session.scalar(text("SELECT pg_backend_pid()")) == first
    admin = await asyncpg.connect(db.url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
    finally:
        await admin.close()
    await asyncio.sleep(0.3)  # the event loop reads the closed socket; asyncpg marks the connection closed
    for _ in range(3):  # no error: the dead connection is swapped at checkout
        async with db.unit_of_work() as session:
            assert await session.scalar(text("SELECT pg_backend_pid()")) != first
