"""Alembic environment: one metadata, one version folder (and branch) per package."""
from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from api.migrations.registry import load_all_models, table_packages
from kit.db import Base, make_engine

config = context.config
load_all_models()
target_metadata = Base.metadata
only_package = context.get_x_argument(as_dictionary=True).get("package")


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    # `-x package=commerce` keeps an autogenerate to that package's own tables.
    if only_package and type_ == "table":
        return table_packages().get(name or "") == only_package
    if only_package and hasattr(obj, "table"):
        return table_packages().get(obj.table.name) == only_package
    return True


def run_with_connection(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      include_object=include_object, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(run_with_connection)
        await connection.commit()
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    run_with_connection(connection)
else:
    asyncio.run(run_online())
