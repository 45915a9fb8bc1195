from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Insert, MetaData, Numeric, Table, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from kit.clock import as_utc

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


def money_column_type() -> Numeric[Decimal]:
    """Money is stored exactly: 18 digits with 6 after the point covers KWD and FX rates."""
    return Numeric(24, 6, asdecimal=True)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Take the write lock at BEGIN so concurrent writers queue instead of deadlocking on upgrade.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


WRITE_OPTION = "shoptalk_write"


def _sqlite_begin(conn: Connection) -> None:
    # A unit of work takes the write lock at BEGIN, so concurrent writers queue instead of failing on
    # lock upgrade; plain sessions only read and never wait for a writer (WAL).
    mode = "IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


_INSERT_IF_NEW: dict[tuple[str, str, tuple[str, ...]], Insert] = {}


def insert_if_new(dialect: str, table: Table, keys: Sequence[str]) -> Insert:
    """`INSERT ... ON CONFLICT (keys) DO NOTHING RETURNING id` for the session's dialect: one statement that
    returns the new row's id, or no row when one with the same keys exists (also when a concurrent transaction
    inserted it: PostgreSQL waits for that one to end). Built once per (dialect, table, keys): a statement made
    per call costs a cache-key walk."""
    key = (dialect, table.name, tuple(keys))
    statement = _INSERT_IF_NEW.get(key)
    if statement is None:
        base = postgresql_insert(table) if dialect == "postgresql" else sqlite_insert(table)
        statement = _INSERT_IF_NEW[key] = base.on_conflict_do_nothing(index_elements=list(keys)).returning(
            table.c.id)
    return statement


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size * 2,
                                 pool_recycle=RECYCLE_SECONDS)
    event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
    return engine


# Pooled PostgreSQL connections are replaced after this long, so one the server or a proxy dropped silently
# (no FIN seen) does not stay in the pool for ever.
RECYCLE_SECONDS = 1800


def _refuse_closed_connection(dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: Any) -> None:
    """A pooled connection whose socket was closed (a server restart, an idle-session timeout, a terminated
    backend) is swapped for a fresh one at checkout. This replaces `pool_pre_ping`, which costs three round
    trips per checkout with asyncpg (BEGIN, a ping, ROLLBACK): asyncpg notices the closed socket on its own,
    so looking costs nothing. The pool retries the checkout with a new connection on DisconnectionError."""
    driver = getattr(dbapi_connection, "_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("pooled connection was closed by the server")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction per inbound event: commit when the block succeeds, roll back otherwise.

    Write through a unit of work; sessions opened with `sessions()` directly are for reading.
    """
    engine: AsyncEngine = sessions.kw["bind"]
    # Lazily, like any session: the write lock is taken at the first statement, not on entering the block.
    async with sessions(bind=engine.execution_options(**{WRITE_OPTION: True})) as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


class Database:
    """The process's engine and session factory, created once at start."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo, pool_size=pool_size)
        self.sessions = make_sessionmaker(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    def unit_of_work(self) -> Any:
        return unit_of_work(self.sessions)

    async def dispose(self) -> None:
        await self.engine.dispose()
