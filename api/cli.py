"""The `shoptalk` command line."""
from __future__ import annotations

import asyncio
import copy
import importlib
import importlib.util
import logging
from datetime import datetime
from typing import Any

import typer
import uvicorn
import uvicorn.config

from kit.clock import as_utc
from kit.db import Database
from kit.logging import configure_logging
from kit.settings import get_settings

app = typer.Typer(help="ShopTalk: conversational commerce and support.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo shop.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
app.add_typer(token_app, name="token")

# Sub-command groups contributed by the packages: (name, module exposing a Typer `app`).
SUBCOMMANDS = [("nlu", "api.cli_nlu"), ("recommend", "api.cli_recommend"), ("rates", "api.cli_rates"),
               ("rasa", "api.cli_rasa"), ("agent", "api.cli_agent")]
for _name, _module in SUBCOMMANDS:
    if importlib.util.find_spec(_module) is not None:
        app.add_typer(importlib.import_module(_module).app, name=_name)


def _require_database(url: str) -> None:
    """Stop with one readable line on stderr and exit code 1 when the database cannot be reached (no traceback)."""
    from kit.db import probe_database

    problem = asyncio.run(probe_database(url))
    if problem is not None:
        typer.echo(f"shoptalk: {problem}", err=True)
        raise typer.Exit(1)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve the API, the web chat and the consoles."""
    _require_database(get_settings().database.url)
    configure_logging()
    uvicorn.run("api.app:app_factory", factory=True, host=host, port=port, workers=workers,
                log_level="info", proxy_headers=True, log_config=uvicorn_log_config())


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging, with secrets redacted: its access log prints every URL, and a web chat socket's URL
    carries the session token (applied in each worker process too)."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": "kit.logging.RedactingFilter"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    return config


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (alembic upgrade heads)."""
    from api.migrate import upgrade

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


@app.command()
def worker() -> None:
    """Deliver the outbox (messages, stock pushes) and run periodic jobs."""
    from api.worker import run_worker

    settings = get_settings()
    _require_database(settings.database.url)
    configure_logging()
    asyncio.run(run_worker(settings))


@demo_app.command("load")
def demo_load() -> None:
    """Load the demo shop (catalog, stock, channels, shoppers, orders, FAQ); does nothing if loaded."""
    from api.demo.loader import load_demo

    logging.basicConfig(level=logging.WARNING)
    settings = get_settings()

    async def run() -> str:
        database = Database(settings.database.url)
        try:
            async with database.unit_of_work() as session:
                return await load_demo(session)
        finally:
            await database.dispose()

    typer.echo(asyncio.run(run()))


@token_app.command("create")
def token_create(name: str = typer.Option(..., help="Who or what uses the token."),
                 role: str = typer.Option("merchant", help="admin, merchant, agent or channel (a server that posts "
                                                           "to the REST chat channel)"),
                 expires_in: str | None = typer.Option(None, "--expires-in",
                                                       help="e.g. 30d, 12h, 2w; default: never expires")) -> None:
    """Create an API token and print it once (only its hash is stored)."""
    from api.auth import create_token, parse_duration
    from kit.errors import ShopTalkError

    settings = get_settings()
    try:
        lifetime = parse_duration(expires_in) if expires_in else None
    except ShopTalkError as error:
        raise typer.BadParameter(error.detail, param_hint="--expires-in") from error

    async def run() -> str:
        database = Database(settings.database.url)
        try:
            async with database.unit_of_work() as session:
                return await create_token(session, name=name, role=role, expires_in=lifetime)
        finally:
            await database.dispose()

    typer.echo(asyncio.run(run()))


@token_app.command("list")
def token_list() -> None:
    """List API tokens (id, name, role, status, created, expires, last used, revoked); never the tokens."""
    from api.auth import list_tokens, token_status

    settings = get_settings()

    async def run() -> list[tuple[str, ...]]:
        database = Database(settings.database.url)
        try:
            async with database.sessions() as session:
                return [(str(row.id), row.name, row.role, token_status(row), _when(row.created_at),
                         _when(row.expires_at, "never"), _when(row.last_used_at, "never"), _when(row.revoked_at))
                        for row in await list_tokens(session)]
        finally:
            await database.dispose()

    rows = [("id", "name", "role", "status", "created", "expires", "last used", "revoked"), *asyncio.run(run())]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@token_app.command("revoke")
def token_revoke(token_id: int = typer.Argument(..., help="The token's id (see `shoptalk token list`).")) -> None:
    """Revoke an API token at once: its next request gets 401."""
    from api.auth import revoke_token
    from kit.errors import NotFound

    settings = get_settings()

    async def run() -> str:
        database = Database(settings.database.url)
        try:
            async with database.unit_of_work() as session:
                row = await revoke_token(session, token_id=token_id)
                return f"revoked token {row.id} ({row.name}, {row.role})"
        finally:
            await database.dispose()

    try:
        typer.echo(asyncio.run(run()))
    except NotFound as error:
        typer.echo(error.detail, err=True)
        raise typer.Exit(code=1) from error


def _when(value: datetime | None, empty: str = "-") -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M UTC") if value is not None else empty


def main() -> None:
    app()
