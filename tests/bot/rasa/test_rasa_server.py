"""Keeping a real Rasa server: ShopTalk forwards each turn to it (REST channel, or predict + execute with
ShopTalk's own actions run here) and keeps the channels and the handoff; a failed server says so once."""
from __future__ import annotations

import socket

import pytest

from bot import BotDeps, InboundMessage, handle_inbound
from bot.conversations.repository import ConversationRepository
from bot.rasa.errors import RasaServerSettingInvalid
from bot.rasa.remote import RasaServer
from bot.rasa.service import connect_server, deactivate
from kit.db import Database
from tests.bot.rasa.rasa_server_double import rasa_double

UNAVAILABLE = "Our assistant is not answering right now. Please try again in a moment, or ask for a person."


async def _connect(db: Database, server: RasaServer) -> None:
    async with db.unit_of_work() as session:
        await connect_server(session, server=server)


async def _send(db: Database, deps: BotDeps, text: str, number: int, sender: str = "anna") -> list[str]:
    async with db.unit_of_work() as session:
        result = await handle_inbound(session, InboundMessage(channel="rest", sender_id=sender,
                                                              message_id=f"{sender}-{number}", text=text), deps=deps)
    return [reply.text for reply in result.replies]


async def test_rest_mode_forwards_turns_with_the_token_from_the_environment(
        db: Database, bot_deps: BotDeps, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_RASA_TOKEN", "s3cret")
    async with rasa_double(token="s3cret") as double:
        await _connect(db, RasaServer(url=double.url, mode="rest", token_env="MY_RASA_TOKEN"))
        replies = await _send(db, bot_deps, "hello there", 1)
        assert replies == ["Hello from Rasa!"]
        assert double.requests[-1] == ("/webhooks/rest/webhook", {"sender": "anna", "message": "hello there",
                                                                  "metadata": {"channel": "rest"}})
        replies = await _send(db, bot_deps, "what a day", 2)
        assert replies == ["You said: what a day"]
        # a wrong token: Rasa's 401 is a failed turn, said once
        monkeypatch.setenv("MY_RASA_TOKEN", "wrong")
        assert (await _send(db, bot_deps, "hello", 3)) == [UNAVAILABLE]


async def test_predict_mode_runs_rasas_actions_there_and_shoptalks_here(db: Database, bot_deps: BotDeps) -> None:
    async with rasa_double() as double:
        await _connect(db, RasaServer(url=double.url, mode="predict"))
        assert (await _send(db, bot_deps, "/greet", 1)) == ["Hello from Rasa!"]
        assert [e.get("name") for e in double.trackers["anna"] if e["event"] == "action"] == \
            ["utter_greet", "action_listen"]
        # ShopTalk's order-status action runs in ShopTalk; its events go back to Rasa's tracker
        replies = await _send(db, bot_deps, "/order_status", 2)
        assert replies == ["Which order number should I look up?"]
        appended = [body for path, body in double.requests if path.endswith("/tracker/events")]
        assert appended
        assert appended[-1][0]["name"] == "action_shoptalk_order_status"
        assert appended[-1][1]["event"] == "bot"
        assert appended[-1][1]["text"] == replies[0]
        # what Rasa's NLU read is stored on the message, as for a local assistant
        async with db.unit_of_work() as session:
            conversation = await ConversationRepository(session).by_sender("rest", "anna")
            assert conversation is not None
            inbound = [m for m in await ConversationRepository(session).last_messages(conversation.id, 10)
                       if m.direction == "in"]
            inbound.sort(key=lambda m: m.id)
            parsed = inbound[-1].nlu
            assert parsed is not None
            assert parsed["intent"]["name"] == "order_status"
            assert parsed["policy"] == "rasa_server"


async def test_predict_mode_handoff_is_shoptalks(db: Database, bot_deps: BotDeps) -> None:
    async with rasa_double() as double:
        await _connect(db, RasaServer(url=double.url, mode="predict"))
        await _send(db, bot_deps, "/human", 1)
        async with db.unit_of_work() as session:
            conversation = await ConversationRepository(session).by_sender("rest", "anna")
            assert conversation is not None
            assert conversation.mode == "human"
        calls = len(double.requests)
        assert (await _send(db, bot_deps, "/greet", 2)) == []  # a person has it; Rasa is not asked
        assert len(double.requests) == calls


@pytest.mark.parametrize("behaviour", ["slow", "garbage", "error"])
async def test_a_failing_server_says_so_once_and_the_next_turn_works(db: Database, bot_deps: BotDeps,
                                                                     behaviour: str) -> None:
    for mode in ("rest", "predict"):
        async with rasa_double() as double:
            sender = f"{mode}-{behaviour}"
            await _connect(db, RasaServer(url=double.url, mode=mode, timeout=0.5))
            double.behaviour = behaviour
            assert (await _send(db, bot_deps, "/greet", 1, sender)) == [UNAVAILABLE]
            double.behaviour = "ok"
            assert (await _send(db, bot_deps, "/greet", 2, sender)) == ["Hello from Rasa!"]


async def test_a_server_that_is_down_says_so_once(db: Database, bot_deps: BotDeps) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    await _connect(db, RasaServer(url=f"http://127.0.0.1:{port}", mode="predict", timeout=2))
    assert (await _send(db, bot_deps, "hello", 1)) == [UNAVAILABLE]
    assert (await _send(db, bot_deps, "hello again", 2)) == [UNAVAILABLE]  # asked again, not stuck
    async with db.unit_of_work() as session:
        await deactivate(session)
    own = await _send(db, bot_deps, "hello", 3)
    assert own
    assert UNAVAILABLE not in own  # ShopTalk's own bot again


def test_the_setting_refuses_bad_values() -> None:
    with pytest.raises(RasaServerSettingInvalid):
        RasaServer(url="localhost:5005")
    with pytest.raises(RasaServerSettingInvalid):
        RasaServer(url="http://rasa:5005", mode="socketio")
    with pytest.raises(RasaServerSettingInvalid):
        RasaServer(url="http://rasa:5005", timeout=0)
    assert RasaServer.from_dict(RasaServer(url="http://rasa:5005", token_env="T").as_dict()) == \
        RasaServer(url="http://rasa:5005", token_env="T")
