"""Rasa's two-stage fallback: ask whether the best guess was meant, then go on as if it had been said."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.rasa.assistant import Assistant
from bot.rasa.project import load_project, read_project_folder
from tests.bot.rasa.conftest import Chat


class UnsureParser:
    """Our NLU's parse shape with fixed, low confidences for one phrase (the real model's figures vary)."""

    async def parse(self, text: str) -> dict[str, Any]:
        if text == "feelin fine-ish":
            ranking = [{"name": "mood_great", "confidence": 0.2}, {"name": "mood_unhappy", "confidence": 0.18}]
        else:
            ranking = [{"name": "deny", "confidence": 0.99}]
        return {"text": text, "intent": ranking[0], "intent_ranking": ranking, "entities": []}


@pytest.fixture
def two_stage(project_copy: Path) -> Assistant:
    rules = project_copy / "data" / "rules.yml"
    text = rules.read_text(encoding="utf-8").replace(
        "  - intent: nlu_fallback\n  - action: utter_please_rephrase\n",
        "  - intent: nlu_fallback\n  - action: action_two_stage_fallback\n"
        "  - active_loop: action_two_stage_fallback\n")
    rules.write_text(text, encoding="utf-8")
    return Assistant(load_project(read_project_folder(project_copy)), parser=UnsureParser())


async def test_affirmed_guess_is_answered(two_stage: Assistant) -> None:
    chat = Chat(two_stage)
    replies = await chat.assistant.handle_message(chat.tracker, "feelin fine-ish")
    assert replies[0]["text"] == "Did you mean 'mood_great'?"
    assert replies[0]["buttons"][0] == {"title": "Yes", "payload": "/mood_great"}
    assert await chat.say("/mood_great") == ["Great, carry on!"]
    assert chat.tracker.active_loop is None


async def test_refused_twice_ends_in_the_default_fallback_as_rasa_does(two_stage: Assistant) -> None:
    chat = Chat(two_stage)
    await chat.say("feelin fine-ish")
    assert await chat.say("/out_of_scope") == ["Can you rephrase that?"]  # the "No" button
    # still unclear: Rasa asks about its best guess again (nlu_fallback after a rephrase request) ...
    assert await chat.say("feelin fine-ish") == ["Did you mean 'mood_great'?"]
    assert chat.tracker.active_loop == "action_two_stage_fallback"
    # ... and gives up when that is refused too (out_of_scope, nlu_fallback, out_of_scope)
    assert await chat.say("/out_of_scope") == ["Sorry, I didn't get that. Can you rephrase?"]
    assert chat.tracker.active_loop is None
    # the loop's later runs fold into its first one and the give-up takes back that first message (and the
    # action_listen before it), as Rasa's applied_events does: the conversation is at its start again
    assert await chat.say("/greet") == ["Welcome to the cake shop! How are you today?"]
    assert await chat.say("/greet") == ["Hey! How are you?"]


async def test_two_unclear_messages_in_a_row_give_up(two_stage: Assistant) -> None:
    chat = Chat(two_stage)
    await chat.say("feelin fine-ish")
    assert await chat.say("feelin fine-ish") == ["Sorry, I didn't get that. Can you rephrase?"]
    assert chat.tracker.active_loop is None


async def test_a_typed_no_is_understood_and_ends_the_fallback(two_stage: Assistant) -> None:
    chat = Chat(two_stage)
    await chat.say("feelin fine-ish")
    # "no" is read as deny (0.99): an understood intent, so the fallback ends as if "no" had been said first;
    # nothing answers a bare deny here, so the core fallback does (real Rasa 3.6.21: action_default_fallback)
    start = len(chat.tracker.events)
    replies = await chat.say("no")
    assert replies == ["Sorry, I didn't get that. Can you rephrase?"]
    turn = chat.tracker.events[start:]
    last_user = max(i for i, e in enumerate(turn) if e["event"] == "user")
    assert turn[last_user]["parse_data"]["intent"]["name"] == "deny"
    assert [e["name"] for e in turn[last_user:] if e["event"] == "action"] == ["action_default_fallback",
                                                                               "action_listen"]
    assert chat.tracker.active_loop is None
