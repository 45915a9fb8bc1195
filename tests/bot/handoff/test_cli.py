"""`shoptalk agent create` and the demo agents."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.demo.agents import DEMO_PASSWORD, load_demo_agents
from bot import handoff
from kit.db import Database
from kit.settings import get_settings


@pytest.fixture
def database_env(db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHOPTALK_DATABASE__URL", db.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("SHOPTALK_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()


@pytest.mark.usefixtures("database_env")
def test_agent_create_then_sign_in(db: Database) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["agent", "create", "--email", "lin@shop.test", "--name", "Lin", "--role",
                                 "supervisor", "--password", "a long password"])
    assert result.exit_code == 0, result.output
    assert "a long password" not in result.output
    again = runner.invoke(app, ["agent", "create", "--email", "lin@shop.test", "--name", "Lin",
                                "--password", "a long password"])
    assert again.exit_code == 1
    assert "agent_exists" in again.output
    get_settings.cache_clear()


async def test_demo_agents_load_once_and_can_sign_in(db: Database) -> None:
    async with db.unit_of_work() as session:
        assert len(await load_demo_agents(session)) == 3  # agent, supervisor, owner
    async with db.unit_of_work() as session:
        assert await load_demo_agents(session) == []
        agent, _ = await handoff.agents.sign_in(session, email="agent@demo.shoptalk.dev", password=DEMO_PASSWORD,
                                                ttl_seconds=60)
        assert agent.role == "agent"
        assert [c.shortcut for c in await handoff.canned.canned_responses(session, shop_id=1)] == ["hello", "order"]


def test_demo_agents_go_through_the_handoff_service_api() -> None:
    import inspect

    import api.demo.agents

    source = inspect.getsource(api.demo.agents)
    assert "Repository" not in source  # the handoff modules' functions, never their queries
