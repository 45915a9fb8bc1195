"""`shoptalk agent ...`: console accounts for human agents."""
from __future__ import annotations

import asyncio

import typer

from bot import handoff
from kit.db import Database
from kit.errors import ShopTalkError
from kit.settings import get_settings

app = typer.Typer(help="Accounts of the agent console (/agent) and the back office (/backoffice).",
                  no_args_is_help=True)


@app.command("create")
def create(email: str = typer.Option(..., help="Sign-in email"),
           name: str = typer.Option(..., help="Shown to colleagues"),
           role: str = typer.Option("agent", help="owner, staff, supervisor or agent (the first owner invites the rest "
                                                  "from /backoffice/team)"),
           capacity: int = typer.Option(3, help="Open conversations before round-robin skips this agent"),
           password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                        help="At least 10 characters (asked for when not given)")) -> None:
    """Create an account (the password is stored as an argon2id hash)."""
    settings = get_settings()

    async def run() -> int:
        database = Database(settings.database.url)
        try:
            async with database.unit_of_work() as session:
                agent = await handoff.agents.create_agent(session, email=email, name=name, role=role, password=password,
                                                          capacity=capacity)
                return agent.id
        finally:
            await database.dispose()

    try:
        agent_id = asyncio.run(run())
    except ShopTalkError as error:
        typer.echo(f"error: {error.detail} ({error.code})", err=True)
        raise typer.Exit(1) from error
    where = "/backoffice" if role in ("owner", "staff") else "/agent"
    typer.echo(f"account {agent_id} created: {email} ({role}); sign in at {where}")
