"""`shoptalk agent ...`: console accounts for human agents."""
from __future__ import annotations

import asyncio

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from bot import handoff
from kit.db import Database
from kit.errors import ShopTalkError
from kit.settings import get_settings

app = typer.Typer(help="Human agents of the console at /agent.", no_args_is_help=True)

DEMO_AGENTS = (("agent@demo.shoptalk.dev", "Demo Agent", "agent"),
               ("supervisor@demo.shoptalk.dev", "Demo Supervisor", "supervisor"))
DEMO_PASSWORD = "shoptalk-demo-agent"  # the demo's published password; never used outside the demo


@app.command("create")
def create(email: str = typer.Option(..., help="Sign-in email"),
           name: str = typer.Option(..., help="Shown to colleagues"),
           role: str = typer.Option("agent", help="agent or supervisor"),
           capacity: int = typer.Option(3, help="Open conversations before round-robin skips this agent"),
           password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                        help="At least 10 characters (asked for when not given)")) -> None:
    """Create a console account (the password is stored as an argon2id hash)."""
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
    typer.echo(f"agent {agent_id} created: {email} ({role}); sign in at /agent")


async def load_demo_agents(session: AsyncSession) -> list[str]:
    """The demo's agent and supervisor (password DEMO_PASSWORD) and two canned responses; skips what exists."""
    created = []
    supervisor = None
    for email, name, role in DEMO_AGENTS:
        agent = await handoff.agents.agent_by_email(session, email=email)
        if agent is None:
            agent = await handoff.agents.create_agent(session, email=email, name=name, role=role,
                                                      password=DEMO_PASSWORD)
            created.append(email)
        if role == "supervisor":
            supervisor = agent
    if supervisor is not None:
        existing = {c.shortcut for c in await handoff.canned.canned_responses(session, shop_id=supervisor.shop_id)}
        for shortcut, body in (("hello", "Hi {name}, this is {agent_name} from the shop team. How can I help?"),
                               ("order", "Hi {name}, I'm looking at order {order_number} for you now.")):
            if shortcut not in existing:
                await handoff.canned.create_canned(session, agent=supervisor, shortcut=shortcut, body=body)
    return created
