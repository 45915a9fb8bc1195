"""Alembic steps in tests, on a database of the test's own (a downgrade must not touch the shared test database)."""
from __future__ import annotations

from alembic import command
from sqlalchemy.engine import Connection

from api.migrations import alembic_config
from kit.db import Database


async def migrate_to(database: Database, url: str, verb: str, target: str) -> None:
    """`alembic <verb> <target>` ("upgrade heads", "downgrade commerce_0401") on `database` (at `url`)."""
    def run(connection: Connection) -> None:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = connection
        getattr(command, verb)(cfg, target)

    async with database.engine.begin() as connection:
        await connection.run_sync(run)
