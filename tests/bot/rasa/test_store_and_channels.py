"""An imported assistant inside ShopTalk: tracker store, REST channel, handoff, tracker export, import API."""
from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.auth import create_token
from bot import BotDeps, InboundMessage, handle_inbound
from bot.rasa.models import RasaAssistant
from bot.rasa.project import read_project_folder
from bot.rasa.repository import RasaRepository
from kit.clock import utcnow
from kit.db import Database
from kit.settings import Settings
from tests.bot.rasa.conftest import SAMPLE
from tests.http import app_client


async def _activate_sample(db: Database) -> int:
    """The sample project stored as the active assistant, without an NLU model (messages use /intent)."""
    async with db.unit_of_work() as session:
        row = RasaAssistant(name="cake-shop", files=read_project_folder(SAMPLE), summary={}, nlu_version=None,
                            created_at=utcnow())
        await RasaRepository(session).add_active(row)
        return row.id


async def _send(db: Database, deps: BotDeps, text: str, number: int, sender: str = "anna") -> list[str]:
    async with db.unit_of_work() as session:
        result = await handle_inbound(session, InboundMessage(channel="rest", sender_id=sender,
                                                              message_id=f"{sender}-{number}", text=text), deps=deps)
    return [reply.text for reply in result.replies]


async def test_active_assistant_answers_and_remembers_across_messages(db: Database, bot_deps: BotDeps) -> None:
    await _activate_sample(db)
    assert await _send(db, bot_deps, "/greet", 1) == ["Welcome to the cake shop! How are you today?"]
    assert await _send(db, bot_deps, "/i_am_vip", 2) == ["Noted: you are one of our VIP customers."]
    # a new unit of work reads the tracker back from the database
    assert await _send(db, bot_deps, "/thankyou", 3) == ["You're welcome, dear VIP!"]
    assert await _send(db, bot_deps, "/greet", 1) == ["Welcome to the cake shop! How are you today?"]  # duplicate


async def test_handoff_action_puts_the_conversation_in_the_agent_inbox(db: Database, bot_deps: BotDeps) -> None:
    await _activate_sample(db)
    replies = await _send(db, bot_deps, "/human", 1)
    assert replies  # the queue notice / handoff message
    assert await _send(db, bot_deps, "/greet", 2) == []  # a person has it now; the bot stays quiet
    from bot.conversations.repository import ConversationRepository

    async with db.unit_of_work() as session:
        conversation = await ConversationRepository(session).by_sender("rest", "anna")
        assert conversation is not None
        assert conversation.mode == "human"


async def test_handoff_action_follows_the_shops_switch_for_requests(db: Database, bot_deps: BotDeps) -> None:
    from bot import handoff
    from bot.conversations.repository import ConversationRepository

    await _activate_sample(db)
    async with db.unit_of_work() as session:
        await handoff.rules.save_rules(session, shop_id=1, rules=handoff.rules.EscalationRules(on_request=False))
    replies = await _send(db, bot_deps, "/human", 1)
    assert replies == ["I can't put you through to a person here, but I can help with products, orders "
                       "and your cart."]
    async with db.unit_of_work() as session:
        conversation = await ConversationRepository(session).by_sender("rest", "anna")
        assert conversation is not None
        assert conversation.mode == "bot"  # nobody was queued: the bot keeps answering
    assert await _send(db, bot_deps, "/greet", 2) == ["Welcome to the cake shop! How are you today?"]


async def test_without_an_active_assistant_shoptalk_answers(db: Database, bot_deps: BotDeps) -> None:
    replies = await _send(db, bot_deps, "hello", 1)
    assert replies
    assert "cake" not in " ".join(replies).lower()


@pytest.fixture
async def api(db: Database, bot_deps: BotDeps, tmp_path: object) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"},
                        data_dir=bot_deps.settings.data_dir)
    app = create_app(settings, database=db)
    async with app_client(app) as http:
        app.state.channels.runtime._deps = bot_deps  # the small trained NLU instead of the real one
        yield http


async def _headers(db: Database, role: str) -> dict[str, str]:
    async with db.unit_of_work() as session:
        token = await create_token(session, name=f"test {role}", role=role)
    return {"Authorization": f"Bearer {token}"}


async def test_rest_channel_and_tracker_export(db: Database, api: httpx.AsyncClient) -> None:
    await _activate_sample(db)
    channel = await _headers(db, "channel")
    first = await api.post("/webhooks/rest/webhook", json={"sender": "bob", "message": "/greet"}, headers=channel)
    assert first.status_code == 200
    assert first.json()[0]["text"] == "Welcome to the cake shop! How are you today?"
    assert first.json()[0]["buttons"][0] == {"title": "Order a cake", "payload": "/order_cake"}
    await api.post("/webhooks/rest/webhook", json={"sender": "bob", "message": "/order_cake"}, headers=channel)
    async with db.unit_of_work() as session:
        from bot.conversations.repository import ConversationRepository

        conversation = await ConversationRepository(session).by_sender("rest", "bob")
        assert conversation is not None
    agent = await _headers(db, "agent")
    assert (await api.get(f"/conversations/{conversation.id}/tracker")).status_code == 401
    tracker = (await api.get(f"/conversations/{conversation.id}/tracker", headers=agent)).json()
    assert tracker["sender_id"] == "bob"
    assert tracker["active_loop"]["name"] == "cake_form"
    assert tracker["slots"]["requested_slot"] == "cake_flavour"
    assert [e["event"] for e in tracker["events"]].count("user") == 2
    missing = await api.get("/conversations/999999/tracker", headers=agent)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    # Rasa names a conversation by its sender id, as Rasa's HTTP API does
    by_sender = (await api.get("/conversations/bob/tracker", headers=agent)).json()
    assert by_sender["sender_id"] == "bob"
    assert by_sender["events"] == tracker["events"]
    assert (await api.get("/conversations/nobody/tracker", headers=agent)).status_code == 404
    assert (await api.get("/conversations/2147483648/tracker", headers=agent)).status_code == 404
    # /model/parse answers with the active project's model: its intents, only its entities
    parsed = (await api.post("/model/parse", json={"text": '/order_cake{"flavour": "lemon"}'},
                             headers=agent)).json()
    from bot.rasa.project import load_project, read_project_folder
    from tests.bot.rasa.conftest import SAMPLE

    sample = load_project(read_project_folder(SAMPLE))
    assert parsed["intent"]["name"] == "order_cake"  # ShopTalk's shop model has no such intent
    assert parsed["entities"][0]["entity"] == "flavour"
    assert {e["entity"] for e in parsed["entities"]} <= set(sample.domain.entities)


async def test_import_api_refuses_a_bad_project_and_the_old_one_keeps_serving(db: Database,
                                                                               api: httpx.AsyncClient) -> None:
    await _activate_sample(db)
    files = read_project_folder(SAMPLE)
    files["data/stories.yml"] = files["data/stories.yml"].replace("action: utter_happy", "action: utter_hapy", 1)
    merchant = await _headers(db, "merchant")
    assert (await api.post("/api/v1/rasa/import", json={"files": files},
                           headers=await _headers(db, "agent"))).status_code == 403
    refused = await api.post("/api/v1/rasa/import", json={"files": files}, headers=merchant)
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["code"] == "rasa_project_invalid"
    assert problem["problems"][0]["file"] == "data/stories.yml"
    assert problem["problems"][0]["line"] == 7
    assert "utter_hapy" in problem["problems"][0]["problem"]
    active = await api.get("/api/v1/rasa/assistant", headers=merchant)
    assert active.json()["name"] == "cake-shop"
    reply = await api.post("/webhooks/rest/webhook", json={"sender": "cy", "message": "/mood_great"},
                           headers=await _headers(db, "channel"))
    assert reply.json()[0]["text"] == "Great, carry on!"
    assert (await api.delete("/api/v1/rasa/assistant", headers=merchant)).status_code == 204
    assert (await api.get("/api/v1/rasa/assistant", headers=merchant)).status_code == 404


async def test_export_writes_the_imported_assistant_back_as_its_project(db: Database, tmp_path: Path) -> None:
    from bot.rasa.errors import RasaAssistantMissing
    from bot.rasa.project import load_project
    from bot.rasa.service import deactivate, export_active

    await _activate_sample(db)
    async with db.unit_of_work() as session:
        counts = await export_active(session, target=tmp_path / "exported")
    assert counts["files"] == len(read_project_folder(SAMPLE))
    assert read_project_folder(tmp_path / "exported") == read_project_folder(SAMPLE)
    exported = load_project(read_project_folder(tmp_path / "exported"))
    assert exported.summary() == load_project(read_project_folder(SAMPLE)).summary()
    async with db.unit_of_work() as session:
        await deactivate(session)
    async with db.unit_of_work() as session:
        with pytest.raises(RasaAssistantMissing):
            await export_active(session, target=tmp_path / "none")
