"""`shoptalk serve | migrate | worker`: the processes of a shop, each started only once its database answers."""
from __future__ import annotations

import asyncio
import copy
from typing import Any

import typer
import uvicorn
import uvicorn.config

from kit.db import Database
from kit.logging import configure_logging
from kit.settings import get_settings


def _require_database(url: str) -> None:
    """Stop with one readable line on stderr and exit code 1 when the database cannot be reached (no traceback)."""
    from kit.db import probe_database

    problem = asyncio.run(probe_database(url))
    if problem is not None:
        typer.echo(f"shoptalk: {problem}", err=True)
        raise typer.Exit(1)


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve the API, the web chat and the consoles."""
    _require_database(get_settings().database.url)
    configure_logging()
    uvicorn.run("api.app:app_factory", factory=True, host=host, port=port, workers=workers,
                log_level="info", proxy_headers=True, log_config=uvicorn_log_config(),
                # Open console streams are told to reconnect and end; this bounds whatever else is still open.
                timeout_graceful_shutdown=5)


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging, with secrets redacted: its access log prints every URL, and a web chat socket's URL
    carries the session token (applied in each worker process too)."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": "kit.logging.RedactingFilter"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    return config


def migrate() -> None:
    """Bring the database schema up to date (alembic upgrade heads)."""
    from api.migrations import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _require_database(settings.database.url)

    async def run() -> None:
        database = Database(settings.database.url)
        try:
            await upgrade(database.engine)
        finally:
            await database.dispose()

    asyncio.run(run())
    typer.echo("database is up to date")


def worker() -> None:
    """Deliver the outbox (messages, stock pushes) and run periodic jobs."""
    from api.workers.process import run_worker

    settings = get_settings()
    _require_database(settings.database.url)
    configure_logging()
    asyncio.run(run_worker(settings))
