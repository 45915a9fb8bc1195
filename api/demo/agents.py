"""The demo shop's accounts: an owner (the back office at /backoffice), an agent and a supervisor (the console),
with a published password, and two canned responses."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot import handoff

DEMO_AGENTS = (("agent@demo.shoptalk.dev", "Demo Agent", "agent"),
               ("supervisor@demo.shoptalk.dev", "Demo Supervisor", "supervisor"),
               ("owner@demo.shoptalk.dev", "Demo Owner", "owner"))
DEMO_PASSWORD = "shoptalk-demo-agent"  # the demo's published password; never used outside the demo


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
