"""`shoptalk recommend ...`: train the recommendation models from the shop's orders, see how they do."""
from __future__ import annotations

import asyncio
import json

import typer

from commerce.recommend.service import performance, train
from kit.db import Database
from kit.settings import get_settings

app = typer.Typer(help="Product recommendations.", no_args_is_help=True)


async def _train() -> str:
    settings = get_settings()
    database = Database(settings.database.url)
    try:
        async with database.unit_of_work() as session:
            report = await train(session, settings=settings)
        return report.model_dump_json(indent=1)
    finally:
        await database.dispose()


async def _performance() -> str:
    settings = get_settings()
    database = Database(settings.database.url)
    try:
        async with database.unit_of_work() as session:
            rows = await performance(session)
        return json.dumps([row.model_dump() for row in rows], indent=1)
    finally:
        await database.dispose()


@app.command("train")
def train_command() -> None:
    """Learn from every order and the catalog; saves the model under <data_dir>/models/recommend/."""
    typer.echo(asyncio.run(_train()))


@app.command("performance")
def performance_command() -> None:
    """Click-through and conversion per recommendation model."""
    typer.echo(asyncio.run(_performance()))
