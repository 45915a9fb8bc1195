"""Helpers for the handoff tests: agents and shopper conversations made through the real services, and the console
API's app client with an agent's sign-in (one definition for every console test)."""
from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from bot import handoff
from bot.conversations import service as conversations
from bot.handoff.models import Agent
from bot.messages import InboundMessage
from kit.db import Database
from kit.settings import Settings
from tests.http import app_client

PASSWORD = "correct horse battery"
# The Redis of the cross-process tests: SHOPTALK_TEST_REDIS_URL (each run its own db), never a fixed one.
REDIS_URL = os.environ.get("SHOPTALK_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(REDIS_URL is None, reason="set SHOPTALK_TEST_REDIS_URL")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(environment="test", data_dir=tmp_path, security={"secret_key": "test-secret-key-0123456789"})


@pytest.fixture
async def client(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings, database=db)) as http:
        yield http


async def sign_in(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    """Sign `email` in to the console (HttpOnly, SameSite=Strict cookie); the CSRF header to send with writes."""
    response = await client.post("/api/v1/agent/session", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    return {"X-CSRF-Token": response.json()["csrf_token"]}


async def make_agent(db: Database, email: str, *, role: str = "agent", shop_id: int = 1,
                     capacity: int = 3, online: bool = False) -> int:
    async with db.unit_of_work() as session:
        agent = await handoff.agents.create_agent(session, email=email, name=email.split("@")[0].title(), role=role,
                                                  password=PASSWORD, shop_id=shop_id, capacity=capacity)
        if online:
            await handoff.agents.check_in(session, agent_id=agent.id)
        return agent.id


async def load_agent(session: AsyncSession, agent_id: int) -> Agent:
    agent = await session.get(Agent, agent_id)
    assert agent is not None
    return agent


async def shopper_says(db: Database, text: str, *, channel: str = "webchat", sender: str = "shopper-1",
                       message_id: str | None = None, human: bool = False, payload: str | None = None) -> int:
    """A stored shopper message (as the engine stores it); optionally the conversation is handed to a person."""
    async with db.unit_of_work() as session:
        conversation = await conversations.get_or_create_conversation(session, channel=channel, sender_id=sender)
        inbound = InboundMessage(channel=channel, sender_id=sender,
                                 message_id=message_id or f"{sender}:{text}:{payload}", text=text,
                                 payload=payload, kind="callback" if payload else "text")
        await conversations.record_inbound(session, conversation=conversation, inbound=inbound,
                                           nlu={"intent": {"name": "human_handoff", "confidence": 0.91},
                                                "policy": "handoff"})
        if human:
            await conversations.set_mode(session, conversation_id=conversation.id, mode="human", queue="support")
        return conversation.id
