from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Insert, MetaData, Numeric, Table, event, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from kit.clock import as_utc
from kit.errors import ShopTalkError

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


class DatabaseUnavailable(ShopTalkError):
    """The database cannot be reached now (refused, dropped, shut down, no free connection); retry later."""

    code = "database_unavailable"
    status = 503
    title = "Database unavailable"


# Seconds a client is told to wait before retrying when the database is unavailable.
RETRY_AFTER_SECONDS = 5
# PostgreSQL SQLSTATEs of an unreachable server: connection exceptions (08), shutdown or starting (57P),
# too many connections (53300).
_UNREACHABLE_SQLSTATES = ("08", "57P", "53300")
_SQLITE_UNREACHABLE = ("unable to open database file", "disk i/o error", "database is locked")
_DRIVER_MODULES = ("sqlalchemy.", "asyncpg", "aiosqlite", "sqlite3")


def safe_url(url: str) -> str:
    """The database URL fit for a log line or an error message: password masked, no driver name."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as a placeholder, never raw
        return "<unparsable database URL>"
    return parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=True)


def _raised_in_driver(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(_DRIVER_MODULES):
            return True
        tb = tb.tb_next
    return False


def _unreachable_reason(exc: BaseException) -> str | None:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionError | EOFError):
        return "connection lost"
    if isinstance(exc, TimeoutError):
        return "connection timed out"
    if isinstance(exc, OSError):
        return (exc.strerror or str(exc) or type(exc).__name__).lower()
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and type(exc).__module__.startswith("asyncpg") and \
            sqlstate.startswith(_UNREACHABLE_SQLSTATES):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if type(exc).__module__.startswith("asyncpg") and "connection is closed" in str(exc):
        return "connection lost"
    if type(exc).__module__ == "sqlite3" and str(exc).lower().startswith(_SQLITE_UNREACHABLE):
        return str(exc)
    return None


def database_unavailable_cause(exc: BaseException, *, from_database: bool = False) -> str | None:
    """A short reason when `exc` means the database cannot be reached now, else None (any other error).

    A bare OSError counts only when raised inside the database driver (or `from_database`: the caller knows it
    was only talking to the database), so a failed call to a channel or Redis is not taken for the database."""
    if isinstance(exc, DatabaseUnavailable):
        return exc.detail
    if isinstance(exc, PoolTimeout):
        return "no free database connection (pool timeout)"
    if isinstance(exc, OSError) and not (from_database or _raised_in_driver(exc)):
        return None
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        reason = _unreachable_reason(current)
        if reason is not None:
            return reason
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return "connection lost"
        if isinstance(current, DBAPIError) and current.orig is not None and current.orig is not current:
            current = current.orig
        else:
            # An error raised while handling the outage (a rollback hook meeting the dead connection) is the
            # outage too: follow the chain Python prints, the implicit context included.
            current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return None


def _root_message(exc: BaseException) -> str:
    # The driver's own words, without SQLAlchemy's wrapping and background links.
    while True:
        inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc.__cause__
        if inner is None or inner is exc:
            break
        exc = inner
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


async def probe_database(url: str, *, timeout: float = 15.0) -> str | None:
    """None when the database answers a SELECT 1; otherwise one line naming it (password masked) and the cause."""
    engine = make_engine(url, pool_size=1)
    cause: str | None = None
    try:
        async with asyncio.timeout(timeout), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except TimeoutError:
        cause = f"no answer within {timeout:g} s"
    except Exception as exc:  # noqa: BLE001 - every failure becomes the one line the operator reads
        cause = database_unavailable_cause(exc, from_database=True) or _root_message(exc)
    finally:
        await engine.dispose()
    return None if cause is None else f"cannot reach the database at {safe_url(url)}: {cause}"


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
        except BaseException as exc:
            cause = database_unavailable_cause(exc) if isinstance(exc, Exception) else None
            try:
                await session.rollback()
            except Exception:  # the connection is gone: the caller hears about the first failure
                if cause is None:
                    raise
            if cause is not None and not isinstance(exc, DatabaseUnavailable):
                # Every caller (HTTP, chat sockets, workers) sees one typed error: 503, "try again".
                raise DatabaseUnavailable(f"The database cannot be reached now ({cause}); try again shortly.",
                                          retry_after=RETRY_AFTER_SECONDS) from exc
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
