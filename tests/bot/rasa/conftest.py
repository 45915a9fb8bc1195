"""The sample Rasa project, copies of it to break, and an assistant over it without an NLU model."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.rasa.assistant import Assistant
from bot.rasa.project import RasaProject, load_project, read_project_folder
from bot.rasa.tracker import Tracker

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "rasa_project"


@pytest.fixture(scope="session")
def project() -> RasaProject:
    return load_project(read_project_folder(SAMPLE))


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    target = tmp_path / "project"
    shutil.copytree(SAMPLE, target)
    return target


@pytest.fixture
def assistant(project: RasaProject) -> Assistant:
    return Assistant(project)


class Chat:
    """One shopper talking to an assistant: send a message, read the bot's texts."""

    def __init__(self, assistant: Assistant, sender: str = "shopper-1", channel: str = "rest") -> None:
        self.assistant = assistant
        self.tracker = Tracker(sender, assistant.domain)
        self.channel = channel

    async def say(self, text: str) -> list[str]:
        replies = await self.assistant.handle_message(self.tracker, text, channel=self.channel)
        return [str(r.get("text", "")) for r in replies]


@pytest.fixture(scope="session")
def action_server_url() -> Iterator[str]:
    """A real rasa-sdk action server with the sample project's actions (skips if rasa-sdk cannot be installed)."""
    from tests.bot.rasa.action_server import ensure_rasa_sdk, running_action_server

    python = ensure_rasa_sdk()
    if isinstance(python, str):
        pytest.skip(python)
    with running_action_server(python, SAMPLE) as url:
        yield url


@pytest.fixture
def served_project(action_server_url: str, monkeypatch: pytest.MonkeyPatch) -> RasaProject:
    monkeypatch.setenv("CAKE_SHOP_ACTIONS_URL", action_server_url)
    return load_project(read_project_folder(SAMPLE))
