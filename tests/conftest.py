"""Shared fixtures: every database test runs on SQLite and, when configured, on real PostgreSQL.

Set SHOPTALK_TEST_POSTGRES_URL (for example postgresql+asyncpg://postgres@127.0.0.1:5432/test) to add
the PostgreSQL backend; `.ci/run` does. Each test session gets its own PostgreSQL database (so runs in
parallel never meet) and each test starts from empty tables.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from api.migrations import upgrade
from kit.db import Database

PG_URL = os.environ.get("SHOPTALK_TEST_POSTGRES_URL")
T = TypeVar("T")
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "db" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


def run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even while a loop runs in this thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _migrate(url: str) -> None:
    database = Database(url)
    try:
        await upgrade(database.engine)
    finally:
        await database.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.db"
    run_in_thread(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


async def _admin(sql: str) -> None:
    import asyncpg

    assert PG_URL is not None
    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    assert PG_URL is not None
    name = f"shoptalk_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    run_in_thread(_admin(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    run_in_thread(_migrate(url))
    yield url
    run_in_thread(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate_all(database: Database) -> None:
    async with database.engine.begin() as conn:
        tables = (await conn.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )).scalars().all()
        if tables:
            names = ", ".join(f'"{name}"' for name in tables)
            await conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty, migrated database on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "shoptalk.db"
        shutil.copy(template, path)
        database = Database(f"sqlite+aiosqlite:///{path}")
    else:
        database = Database(request.getfixturevalue("postgres_url"), pool_size=20)
        await _truncate_all(database)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture(params=BACKENDS)
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new database with no schema at all, on each backend: for tests that run migrations themselves."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}"
        return
    assert PG_URL is not None
    name = f"shoptalk_migrate_{uuid.uuid4().hex[:8]}"
    run_in_thread(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        run_in_thread(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
