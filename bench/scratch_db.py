"""What the PostgreSQL benchmarks share: statements on the server's maintenance connection (a scratch database
per run is created and dropped with them)."""
from __future__ import annotations


async def postgres_admin(url: str, sql: str) -> None:
    """Run one statement (CREATE / DROP DATABASE) on the server of `url` (a SQLAlchemy asyncpg URL)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
