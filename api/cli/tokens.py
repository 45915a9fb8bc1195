"""`shoptalk token create | list | revoke`: API tokens."""
from __future__ import annotations

import asyncio
from datetime import datetime

import typer

from kit.clock import as_utc
from kit.db import Database
from kit.settings import get_settings

app = typer.Typer(help="API tokens.", no_args_is_help=True)


@app.command("create")
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


@app.command("list")
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


@app.command("revoke")
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
