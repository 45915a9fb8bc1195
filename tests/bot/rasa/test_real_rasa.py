"""Against REAL Rasa 3.6.21 (slow; skipped with the reason when its venv is absent, see real_rasa.py):
- the "keep a real Rasa server" setting forwards turns to `rasa run --enable-api` in both modes;
- `shoptalk rasa export` writes a project real Rasa trains and whose test stories pass (fail) alike in both."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench.rasa_oracle import run_logged
from bot import BotDeps, InboundMessage, handle_inbound
from bot.conversations.repository import ConversationRepository
from bot.rasa.models import RasaAssistant
from bot.rasa.project import load_project, read_project_folder
from bot.rasa.remote import RasaServer
from bot.rasa.repository import RasaRepository
from bot.rasa.service import connect_server, export_active
from kit.clock import utcnow
from kit.db import Database
from tests.bot.rasa.conftest import SAMPLE
from tests.bot.rasa.real_rasa import rasa_executable, running_rasa, trained_model

pytestmark = pytest.mark.slow
UNAVAILABLE = "Our assistant is not answering right now. Please try again in a moment, or ask for a person."


@pytest.fixture(scope="module")
def rasa() -> Path:
    found = rasa_executable()
    if isinstance(found, str):
        pytest.skip(found)
    return found


async def _send(db: Database, deps: BotDeps, text: str, number: int, sender: str) -> list[str]:
    async with db.unit_of_work() as session:
        result = await handle_inbound(session, InboundMessage(channel="rest", sender_id=sender,
                                                              message_id=f"{sender}-{number}", text=text), deps=deps)
    return [reply.text for reply in result.replies]


async def test_turns_go_to_a_real_rasa_server(rasa: Path, db: Database, bot_deps: BotDeps, tmp_path: Path) -> None:
    model = trained_model(rasa, SAMPLE)
    with running_rasa(rasa, SAMPLE, model, tmp_path) as (url, server):
        async with db.unit_of_work() as session:
            await connect_server(session, server=RasaServer(url=url, mode="predict", timeout=60),
                                 files=read_project_folder(SAMPLE))
        # Rasa's NLU, policies and responses answer ...
        assert await _send(db, bot_deps, "/greet", 1, "pia") == ["Welcome to the cake shop! How are you today?"]
        # (a rule answers: what real Rasa's TED does with /mood_great after the welcome is its own guess -- on
        # this model it is the core fallback, which says nothing as the sample has no utter_default)
        assert await _send(db, bot_deps, "/greet", 2, "pia") == ["Hey! How are you?"]
        # ... ShopTalk's own actions run in ShopTalk when Rasa predicts them
        assert await _send(db, bot_deps, "/ask_order_status", 3, "pia") == ["Which order number should I look up?"]
        await _send(db, bot_deps, "/human", 4, "pia")
        async with db.unit_of_work() as session:
            conversation = await ConversationRepository(session).by_sender("rest", "pia")
            assert conversation is not None
            assert conversation.mode == "human"
        # the REST channel mode
        async with db.unit_of_work() as session:
            await connect_server(session, server=RasaServer(url=url, mode="rest", timeout=60))
        assert await _send(db, bot_deps, "/greet", 1, "rob") == ["Welcome to the cake shop! How are you today?"]
        server.terminate()
        server.wait(timeout=60)
        # the server is gone: the turn says so once, and the next one asks again
        assert await _send(db, bot_deps, "/mood_great", 2, "rob") == [UNAVAILABLE]
        assert await _send(db, bot_deps, "/mood_great", 3, "rob") == [UNAVAILABLE]


def _rasa_test(rasa: Path, folder: Path, model: Path, out: Path) -> list[str]:
    """The test stories real Rasa fails (`rasa test core --e2e`: the user texts through its NLU, as ShopTalk's test)."""
    run_logged([str(rasa), "test", "core", "--e2e", "--stories", "tests", "--model", str(model), "--out",
                str(out), "--no-plot"], cwd=folder, log=out.parent / "rasa-test.log", timeout=3600)
    failed = out / "failed_test_stories.yml"
    loaded = yaml.safe_load(failed.read_text(encoding="utf-8")) if failed.exists() else None
    # Rasa names a failed story "<name> (<its file>)"
    return sorted(str(s["story"]).rsplit(" (", 1)[0] for s in (loaded or {}).get("stories") or [])


async def test_the_exported_assistant_trains_in_real_rasa_and_its_tests_agree(rasa: Path, db: Database,
                                                                             tmp_path: Path) -> None:
    from bot.rasa.assistant import Assistant
    from bot.rasa.testing import run_test_stories
    from nlu.service import NluService

    async with db.unit_of_work() as session:
        await RasaRepository(session).add_active(RasaAssistant(
            name="cake-shop", files=read_project_folder(SAMPLE), summary={}, nlu_version=None, created_at=utcnow()))
    async with db.unit_of_work() as session:
        await export_active(session, target=tmp_path / "exported")
    exported = tmp_path / "exported"
    model = trained_model(rasa, exported)  # real Rasa trains it
    assert model.stat().st_size > 0
    rasa_failed = _rasa_test(rasa, exported, model, tmp_path / "rasa-results")
    project = load_project(read_project_folder(exported))
    parser = NluService(models_dir=tmp_path / "nlu", data_paths=[], default_language=project.language)
    parser.train(data=project.nlu)
    report = await run_test_stories(Assistant(project, parser=parser))
    shoptalk_failed = sorted(s.name for s in report.stories if not s.passed)
    assert len(report.stories) == len(project.tests)
    # the same stories fail, but one: real Rasa's TED answers "welcome and happy mood" (/greet, then /mood_great
    # after the conversation_start welcome) with the core fallback, where ShopTalk's memoization remembers the
    # "happy path" story (mood_great -> utter_happy) from any point of a conversation
    assert set(shoptalk_failed) <= set(rasa_failed), "\n".join(report.lines())
    assert set(rasa_failed) - set(shoptalk_failed) <= {"welcome and happy mood"}, "\n".join(report.lines())
