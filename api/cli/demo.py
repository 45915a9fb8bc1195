"""`shoptalk demo load`: the demo shop."""
from __future__ import annotations

import asyncio
import logging

import typer

from kit.db import Database
from kit.settings import get_settings

app = typer.Typer(help="The demo shop.", no_args_is_help=True)


@app.command("load")
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
