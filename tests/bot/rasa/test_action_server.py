"""Custom actions on a real rasa-sdk action server: form validation, SlotSet, FollowupAction, failures."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.rasa.action_server import ActionServerClient
from bot.rasa.assistant import ActionContext, Assistant
from bot.rasa.project import RasaProject
from tests.bot.rasa.conftest import Chat

pytestmark = pytest.mark.slow

POLITE = "Sorry, our kitchen system is not answering right now. Please try again later."


async def test_form_validation_slot_set_and_followup(served_project: RasaProject) -> None:
    chat = Chat(Assistant(served_project))
    assert await chat.say("/order_cake") == ["Which flavour would you like?"]
    # validate_cake_form refuses a flavour the shop does not bake and asks again
    assert await chat.say('/inform{"flavour": "durian"}') == [
        "Sorry, we don't bake durian cakes. We have chocolate, lemon, vanilla, strawberry, carrot.",
        "Which flavour would you like?"]
    assert chat.tracker.get_slot("cake_flavour") is None
    assert await chat.say('/inform{"flavour": "Lemon"}') == ["What size should the lemon cake be?"]
    assert await chat.say('/inform{"size": "small"}') == ["What should we write on it?"]
    assert await chat.say("x" * 50) == ["That is too long for a cake; 40 letters at most.",
                                        "What should we write on it?"]
    replies = await chat.say("For Sam")
    assert replies[0] == 'Thanks! Your small lemon cake saying "For Sam" is on its way to the oven.'
    assert replies[1].startswith("Your order reference is CAKE-")
    assert replies[2] == "Anything else I can do?"  # FollowupAction from the action server
    assert str(chat.tracker.get_slot("order_reference")).startswith("CAKE-")  # SlotSet from the action server
    assert chat.tracker.active_loop is None


async def test_failing_action_is_a_polite_reply_and_the_chat_goes_on(served_project: RasaProject) -> None:
    chat = Chat(Assistant(served_project))
    assert await chat.say("/check_stock") == [POLITE]  # the action raises: HTTP 500
    assert await chat.say("/greet") == ["Hey! How are you?"]


async def test_slow_action_times_out_politely(served_project: RasaProject) -> None:
    chat = Chat(Assistant(served_project))
    assert await chat.say("/ask_quote") == [POLITE]  # the action sleeps 5 s; the endpoint allows 2 s
    assert chat.tracker.get_slot("quote") is None
    assert await chat.say("/mood_great") == ["Great, carry on!"]


async def test_unknown_action_on_the_server(served_project: RasaProject) -> None:
    chat = Chat(Assistant(served_project))
    await chat.say("/greet")
    assert await chat.assistant.run_action("action_junk", chat.tracker, _context(chat))
    assert chat.tracker.events[-1]["text"] == POLITE


def _context(chat: Chat) -> ActionContext:
    return ActionContext(tracker=chat.tracker)


@pytest.fixture
async def junk_server() -> AsyncIterator[str]:
    """A peer that answers HTTP 200 with something that is not Rasa's response format."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b'{"events": [{"event": "teleport"}]}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/webhook"
    server.close()


async def test_junk_and_down_servers_are_polite(project: RasaProject, junk_server: str) -> None:
    junk = Chat(Assistant(project, action_client=ActionServerClient(junk_server, timeout=2)))
    assert await junk.say("/check_stock") == [
        "Sorry, our kitchen system is not answering right now. Please try again later."]
    from tests.bot.rasa.action_server import free_port

    down = Chat(Assistant(project, action_client=ActionServerClient(f"http://127.0.0.1:{free_port()}/webhook")))
    assert await down.say("/order_cake") == ["Which flavour would you like?"]
    assert await down.say('/inform{"flavour": "lemon"}') == [POLITE]
    assert down.tracker.active_loop == "cake_form"  # the form is not lost
