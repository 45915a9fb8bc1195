"""`shoptalk rates`: exchange rates for prices in the shopper's currency."""
from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from commerce.cross_border import import_rates
from commerce.cross_border.fx import parse_rates
from kit.db import Database
from kit.errors import ShopTalkError
from kit.settings import get_settings

app = typer.Typer(help="Exchange rates (ECB euro reference XML or date,base,currency,rate CSV).",
                  no_args_is_help=True)


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="eurofxref-daily.xml (ECB) or a CSV: date,base,currency,rate")],
    as_of: Annotated[str | None, typer.Option(help="Stamp every rate with this date (YYYY-MM-DD)")] = None,
    database_url: Annotated[str | None, typer.Option(help="Defaults to SHOPTALK_DATABASE__URL")] = None,
) -> None:
    """Import exchange rates from FILE; the format (XML or CSV) is read from the content."""
    try:
        content = file.read_bytes()
    except OSError as exc:
        typer.echo(f"cannot read {file}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    try:
        stamp = date.fromisoformat(as_of) if as_of else None
        kind, _ = parse_rates(content)
    except ValueError as exc:
        typer.echo(f"--as-of must be YYYY-MM-DD: {exc}", err=True)
        raise typer.Exit(2) from exc
    except ShopTalkError as exc:
        typer.echo(f"{exc.code}: {exc.detail}", err=True)
        raise typer.Exit(2) from exc

    async def run() -> int:
        database = Database(database_url or get_settings().database.url)
        try:
            async with database.unit_of_work() as session:
                return await import_rates(session, content=content, as_of=stamp, source=f"cli-{kind}")
        finally:
            await database.dispose()

    count = asyncio.run(run())
    typer.echo(f"imported {count} rates from {file.name} ({kind})")
