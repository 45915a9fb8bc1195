"""The dialogue engine on the sample project, driven with Rasa's `/intent{"entity": "value"}` messages."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.rasa.assistant import Assistant
from bot.rasa.project import RasaProject, load_project, read_project_folder
from tests.bot.rasa.conftest import Chat


@pytest.fixture
def no_validation(project_copy: Path) -> Assistant:
    """The cake shop without its form validation action (no action server needed)."""
    domain = project_copy / "domain.yml"
    domain.write_text(domain.read_text(encoding="utf-8").replace("  - validate_cake_form\n", ""), encoding="utf-8")
    return Assistant(load_project(read_project_folder(project_copy)))


async def test_conversation_start_rule_then_plain_rule(assistant: Assistant) -> None:
    chat = Chat(assistant)
    assert await chat.say("/greet") == ["Welcome to the cake shop! How are you today?"]
    assert await chat.say("/greet") == ["Hey! How are you?"]


async def test_stories_are_remembered(assistant: Assistant) -> None:
    sad = Chat(assistant, "sad")
    assert await sad.say("/mood_unhappy") == ["Here is something to cheer you up:", "Did that help you?"]
    assert await sad.say("/affirm") == ["Great, carry on!"]
    sadder = Chat(assistant, "sadder")
    await sadder.say("/mood_unhappy")
    assert await sadder.say("/deny") == ["Bye"]


async def test_or_rule_and_response_condition_on_a_slot(assistant: Assistant) -> None:
    chat = Chat(assistant)
    assert await chat.say("/thankyou") == ["You're welcome."]
    assert await chat.say("/i_am_vip") == ["Noted: you are one of our VIP customers."]
    assert chat.tracker.get_slot("vip") is True  # from_intent mapping
    assert await chat.say("/praise") == ["You're welcome, dear VIP!"]


async def test_retrieval_intent_answers_from_its_sub_intent(assistant: Assistant) -> None:
    chat = Chat(assistant)
    assert await chat.say("/faq/delivery") == ["We deliver within 10 km of the shop, free over 30 EUR."]
    assert await chat.say("/faq/opening_hours") == ["We are open from 9am to 6pm, Monday to Saturday."]


async def test_buttons_images_and_channel_variants(assistant: Assistant) -> None:
    chat = Chat(assistant, channel="webchat")
    replies = await chat.assistant.handle_message(chat.tracker, "/greet", channel="webchat")
    assert replies[0]["buttons"][0] == {"title": "Order a cake", "payload": "/order_cake"}
    replies = await chat.assistant.handle_message(chat.tracker, "/mood_unhappy", channel="webchat")
    assert replies[0]["image"] == "https://i.imgur.com/nGF1K8f.jpg"
    replies = await chat.assistant.handle_message(chat.tracker, '/order_cake', channel="webchat")
    # {{ }} in a payload is a literal brace, as in Rasa
    assert replies[0]["buttons"][0]["payload"] == '/inform{"flavour": "chocolate"}'


async def test_form_fills_slots_in_order_and_submits(no_validation: Assistant) -> None:
    chat = Chat(no_validation)
    assert await chat.say('/inform{"flavour": "chocolate"}') == ["Sorry, I didn't get that. Can you rephrase?"]
    assert chat.tracker.get_slot("cake_flavour") is None  # mapping only while the form is active
    assert await chat.say("/order_cake") == ["Which flavour would you like?"]
    assert chat.tracker.active_loop == "cake_form"
    assert chat.tracker.get_slot("express") is False  # from_trigger_intent
    assert await chat.say('/inform{"flavour": "lemon"}') == ["What size should the lemon cake be?"]
    assert await chat.say("/bot_challenge") == ["I am a bot, powered by Rasa.", "What size should the lemon cake be?"]
    assert await chat.say('/inform{"size": "large"}') == ["What should we write on it?"]
    assert await chat.say("/chitchat") == ["Nice chatting! Shall we get back to your cake?",
                                           "What should we write on it?"]  # ignored intent: nothing filled
    assert chat.tracker.get_slot("dedication") is None
    replies = await chat.say("Happy birthday Anna")
    assert replies[0] == 'Thanks! Your large lemon cake saying "Happy birthday Anna" is on its way to the oven.'
    assert chat.tracker.active_loop is None
    assert chat.tracker.get_slot("requested_slot") is None


async def test_form_can_be_left(no_validation: Assistant) -> None:
    chat = Chat(no_validation)
    await chat.say("/order_cake")
    assert await chat.say("/deny") == ["Anything else I can do?"]
    assert chat.tracker.active_loop is None


async def test_fallback_restart_and_back(assistant: Assistant) -> None:
    chat = Chat(assistant)
    await chat.say("/i_am_vip")
    assert await chat.say("/nlu_fallback") == ["Sorry, I didn't quite understand. Could you rephrase?"]
    assert await chat.say("/go_back") == ["Undone: back to where we were."]
    assert await chat.say("/restart") == ["Let's start over."]
    assert chat.tracker.get_slot("vip") is None  # a restart forgets everything
    assert await chat.say("/mood_great") == ["Great, carry on!"]


async def test_expired_session_starts_again_carrying_slots(assistant: Assistant) -> None:
    chat = Chat(assistant)
    await chat.say("/i_am_vip")
    for event in chat.tracker.events:
        event["timestamp"] -= 2 * 3600  # two hours ago; the session expires after 60 minutes
    assert await chat.say("/greet") == ["Welcome to the cake shop! How are you today?"]
    assert [e["event"] for e in chat.tracker.events].count("session_started") == 2
    assert chat.tracker.get_slot("vip") is True


async def test_no_rule_or_story_gives_the_default_fallback(assistant: Assistant) -> None:
    chat = Chat(assistant)
    assert await chat.say("/affirm") == ["Sorry, I didn't get that. Can you rephrase?"]
    # The fallback rewinds the message it did not understand.
    assert chat.tracker.latest_intent is None


async def test_custom_action_without_a_server_is_a_polite_reply(assistant: Assistant) -> None:
    chat = Chat(assistant)
    assert await chat.say("/check_stock") == [
        "Sorry, our kitchen system is not answering right now. Please try again later."]
    assert await chat.say("/greet") == ["Hey! How are you?"]


async def test_tracker_json_has_rasa_shape(project: RasaProject, assistant: Assistant) -> None:
    chat = Chat(assistant)
    await chat.say("/greet")
    exported = chat.tracker.to_rasa()
    kinds = [e["event"] for e in exported["events"]]
    assert kinds[:4] == ["action", "session_started", "action", "user"]
    assert kinds[-2:] == ["bot", "action"]
    assert exported["latest_message"]["intent"]["name"] == "greet"
    assert exported["latest_action_name"] == "action_listen"
    assert set(exported["slots"]) == set(project.domain.slots)
