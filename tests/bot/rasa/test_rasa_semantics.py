"""Rasa 3.6's semantics on unchanged projects: what import accepts and refuses, checkpoints, JSON annotations,
RulePolicy's order inside forms, default intents, and `rasa test`'s way of evaluating test stories."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.rasa.assistant import Assistant
from bot.rasa.errors import RasaProjectInvalid
from bot.rasa.project import load_project, read_project_folder
from bot.rasa.stories import UserStep
from bot.rasa.testing import run_test_stories
from bot.rasa.tracker import Tracker
from tests.bot.rasa.conftest import Chat

SHARED = Path("/work/shared/rasa-projects")


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def test_a_story_that_stops_a_form_and_starts_over_is_accepted(project_copy: Path) -> None:
    # The user stops the form, the bot starts over: Rasa emulates the form's rejection and trains this.
    _append(project_copy / "data" / "stories.yml", """
- story: user stops the cake form and starts over
  steps:
  - intent: order_cake
  - action: cake_form
  - active_loop: cake_form
  - intent: greet
  - action: utter_greet
  - action: action_deactivate_loop
  - active_loop: null
""")
    project = load_project(read_project_folder(project_copy))
    assert any(f.name == "user stops the cake form and starts over" for f in project.stories)


def test_a_real_rule_story_contradiction_keeps_rasas_message_and_names_the_story(project_copy: Path) -> None:
    _append(project_copy / "data" / "stories.yml", """
- story: goodbye answered wrongly
  steps:
  - intent: goodbye
  - action: utter_greet
""")
    with pytest.raises(RasaProjectInvalid) as caught:
        load_project(read_project_folder(project_copy))
    problems = caught.value.problems
    assert len(problems) == 1
    assert problems[0]["file"] == "data/stories.yml"
    assert isinstance(problems[0]["line"], int)
    assert problems[0]["line"] > 1
    assert "- the prediction of the action 'utter_greet' in story 'goodbye answered wrongly' is contradicting " \
           "with rule(s) 'Say goodbye anytime the user says goodbye' which predicted action 'utter_goodbye'" \
           in str(problems[0]["problem"])


def test_story_structure_conflicts_are_warnings_as_in_rasa_data_validate(project_copy: Path) -> None:
    _append(project_copy / "data" / "stories.yml", """
- story: mood one way
  steps:
  - intent: mood_unhappy
  - action: utter_greet
- story: mood the other way
  steps:
  - intent: mood_unhappy
  - action: utter_iamabot
""")
    project = load_project(read_project_folder(project_copy))
    assert any("story structure conflict" in w and "'mood one way'" in w for w in project.warnings)


def test_checkpoints_are_joined_and_unused_ones_warned(project_copy: Path) -> None:
    _append(project_copy / "data" / "stories.yml", """
- story: vip opening
  steps:
  - intent: mood_great
  - action: utter_greet
  - checkpoint: after_mood
- story: vip closing
  steps:
  - checkpoint: after_mood
  - intent: bot_challenge
  - action: utter_iamabot
- story: dangling
  steps:
  - checkpoint: nowhere
  - intent: affirm
  - action: utter_greet
""")
    project = load_project(read_project_folder(project_copy))
    joined = [f for f in project.stories if f.name == "vip opening > vip closing"]
    assert len(joined) == 1
    intents = [s.intent for s in joined[0].steps if isinstance(s, UserStep)]
    assert intents == ["mood_great", "bot_challenge"]
    assert not any("checkpoint" in type(s).__name__.lower() for s in joined[0].steps)
    assert any("checkpoint 'nowhere'" in w for w in project.warnings)
    assert not any(f.name == "dangling" for f in project.stories)


def test_a_checkpoint_in_the_middle_is_an_error_with_its_line(project_copy: Path) -> None:
    _append(project_copy / "data" / "stories.yml", """
- story: odd
  steps:
  - intent: mood_great
  - checkpoint: middle
  - action: utter_greet
""")
    with pytest.raises(RasaProjectInvalid) as caught:
        load_project(read_project_folder(project_copy))
    assert any("first or the last step" in str(p["problem"]) and p["line"] for p in caught.value.problems)


def test_json_annotations_in_stories_give_entity_value_role_and_group(project_copy: Path) -> None:
    annotated = ('ship from [Berlin]{"entity": "city", "role": "departure", "group": "1"} '
                 'to [Munich]{"entity": "city", "role": "destination", "group": "2"} '
                 'in [Dark]{"entity": "flavour", "value": "chocolate"}')
    _append(project_copy / "tests" / "test_stories.yml",
            f"\n- story: shipping with roles\n  steps:\n  - user: |\n      {annotated}\n    intent: ship\n")
    project = load_project(read_project_folder(project_copy))
    story = next(f for f in project.tests if f.name == "shipping with roles")
    user = story.steps[0]
    assert isinstance(user, UserStep)
    assert user.text == "ship from Berlin to Munich in Dark"
    assert list(user.entities) == [("city", "Berlin", "departure", "1"), ("city", "Munich", "destination", "2"),
                                   ("flavour", "chocolate", None, None)]


async def test_restart_and_session_start_are_default_intents(assistant: Assistant) -> None:
    chat = Chat(assistant)
    await chat.say('/order_cake{"flavour": "chocolate"}')
    assert chat.tracker.active_loop == "cake_form"
    await chat.say("/restart")
    names = [e.get("name") for e in chat.tracker.events if e.get("event") == "action"]
    assert "action_restart" in names
    assert chat.tracker.active_loop is None
    assert chat.tracker.get_slot("cake_flavour") is None
    await chat.say("/session_start")
    assert [e.get("name") for e in chat.tracker.events if e.get("event") == "action"][-2:] == \
        ["action_session_start", "action_listen"]


async def test_a_digression_inside_a_form_re_asks_the_forms_question(project_copy: Path) -> None:
    domain = project_copy / "domain.yml"
    domain.write_text(domain.read_text(encoding="utf-8").replace("  - validate_cake_form\n", ""), encoding="utf-8")
    chat = Chat(Assistant(load_project(read_project_folder(project_copy))))
    first = await chat.say('/order_cake{"size": "large"}')
    assert chat.tracker.get_slot("cake_size") == "large"
    assert chat.tracker.get_slot("requested_slot") == "cake_flavour"
    # "I am a VIP" is answered by a general rule; inside the form Rasa goes back to the form after it.
    replies = await chat.say("/i_am_vip")
    assert chat.tracker.active_loop == "cake_form"
    assert len(replies) >= 2
    assert replies[-1] == first[-1]
    assert chat.tracker.get_slot("requested_slot") == "cake_flavour"


def test_shared_projects_load_unchanged() -> None:
    for name in ("financial-demo", "helpdesk-assistant"):
        folder = SHARED / name
        if not folder.is_dir():
            pytest.skip(f"{folder} is not on this machine")
        project = load_project(read_project_folder(folder))
        assert project.tests, name


async def test_rasa_test_predicts_each_action_and_continues_from_the_story(project_copy: Path) -> None:
    # Intent-only test stories need no NLU: every action of the story is predicted from the story's own
    # events, a form that the story says is interrupted is emulated as rejected, as `rasa test` does.
    (project_copy / "tests" / "test_stories.yml").write_text("""version: "3.1"
stories:
- story: form with a digression
  steps:
  - intent: order_cake
  - action: cake_form
  - active_loop: cake_form
  - slot_was_set:
    - requested_slot: cake_flavour
  - intent: bot_challenge
  - action: utter_iamabot
  - action: cake_form
  - active_loop: null
  - slot_was_set:
    - requested_slot: null
  - action: utter_submit
  - action: action_submit_order
- story: wrong on purpose
  steps:
  - intent: goodbye
  - action: utter_greet
""", encoding="utf-8")
    project = load_project(read_project_folder(project_copy))
    report = await run_test_stories(Assistant(project))
    assert [s.passed for s in report.stories] == [True, False], report.lines()
    assert "expected action 'utter_greet', predicted 'utter_goodbye'" in str(report.stories[1].divergence)
    # action_listen before each later user message and at each story's end counts, as in Rasa
    assert report.actions_total == 9
    assert report.actions_correct == 8


async def test_rasa_test_counts_a_bot_text_step_as_an_action_to_predict(project_copy: Path) -> None:
    # real Rasa 3.6 fails the sample's "thanks from a VIP" at its `bot:` step (predicted: action_listen); the
    # rule and memoization policies never predict a text no training story has
    (project_copy / "tests" / "test_stories.yml").write_text("""version: "3.1"
stories:
- story: thanks from a VIP
  steps:
  - intent: i_am_vip
  - slot_was_set:
    - vip: true
  - action: utter_vip_noted
  - intent: thankyou
  - action: utter_you_are_welcome
  - bot: You're welcome, dear VIP!
""", encoding="utf-8")
    project = load_project(read_project_folder(project_copy))
    report = await run_test_stories(Assistant(project))
    vip = next(s for s in report.stories if s.name == "thanks from a VIP")
    assert not vip.passed
    assert "expected the bot to say \"You're welcome, dear VIP!\", predicted 'action_listen'" in str(vip.divergence)


def _tracker(assistant: Assistant) -> Tracker:
    return Tracker("t", assistant.domain)


def test_responses_are_filled_as_rasa_fills_them() -> None:
    from bot.rasa.assistant import _fill

    values = {"topping1": None, "size": "large", "count": 2, "tags": ["a", "b"]}
    assert _fill("A {size} cake", values) == "A large cake"
    assert _fill("{count} x {tags}", values) == "2 x ['a', 'b']"
    assert _fill("with {topping1}", values) == "with None"  # an unset slot prints None, as in Rasa
    assert _fill("with {nowhere} and {size}", values) == "with {nowhere} and {size}"  # unknown: left unfilled
    assert _fill("literal {{size}}", values) == "literal {size}"
    assert _fill({"buttons": [{"title": "{size}"}]}, values) == {"buttons": [{"title": "large"}]}


async def test_the_action_endpoint_is_read_when_an_action_runs(project_copy: Path) -> None:
    from bot.rasa.assistant import ActionContext

    endpoints = project_copy / "endpoints.yml"
    endpoints.write_text('action_endpoint:\n  url: "http://127.0.0.1:9/webhook"\n', encoding="utf-8")
    assistant = Assistant(load_project(read_project_folder(project_copy)), endpoints_file=endpoints)
    first = assistant._client()
    assert first is not None
    assert first.url == "http://127.0.0.1:9/webhook"
    endpoints.write_text('action_endpoint:\n  url: "http://127.0.0.1:10/webhook"\n  timeout: 3\n', encoding="utf-8")
    import os
    os.utime(endpoints, (1, 1))  # a different mtime even within the same clock tick
    second = assistant._client()
    assert second is not None
    assert (second.url, second.timeout) == ("http://127.0.0.1:10/webhook", 3.0)
    # the server is down: the turn says so once and the conversation goes on
    tracker = Tracker("down", assistant.domain)
    ok = await assistant.run_action("action_submit_order", tracker, ActionContext(tracker=tracker))
    bots = [e for e in tracker.events if e.get("event") == "bot"]
    assert ok
    assert len(bots) == 1


async def test_a_message_nothing_follows_gets_the_fallback_not_silence(assistant: Assistant) -> None:
    chat = Chat(assistant)
    replies = await chat.say("/affirm")  # no rule or story follows "affirm" at the start
    assert replies == ["Sorry, I didn't get that. Can you rephrase?"]
    assert [e.get("name") for e in chat.tracker.events if e.get("event") == "action"][-2:] == \
        ["action_default_fallback", "action_listen"]


async def test_a_reverted_first_message_leaves_the_conversation_at_its_start(assistant: Assistant) -> None:
    # real Rasa 3.6 (parity bench, rasa_project): "no way" -> action_default_fallback, whose UserUtteranceReverted
    # takes back the message and the action_listen before it; "good morning" then meets the conversation_start rule
    chat = Chat(assistant)
    await chat.say("/deny")
    assert chat.tracker.latest_action_name == "action_listen"
    assert await chat.say("/greet") == ["Welcome to the cake shop! How are you today?"]
    assert await chat.say("/greet") == ["Hey! How are you?"]


def test_a_rejected_form_stays_rejected_until_it_runs_again(assistant: Assistant) -> None:
    # Rasa's tracker: ActionExecutionRejected holds through the next user message (financial-demo's "switch
    # forms" stories: the form is rejected, action_switch_forms_ask asks, and the answer /affirm goes to the
    # stories, not back to the form); only the loop's own next run clears it
    from bot.rasa.tracker import action_event, event

    tracker = _tracker(assistant)
    tracker.events.extend([action_event("action_listen"), event("user", text="/order_cake", parse_data={}),
                           action_event("cake_form"), event("active_loop", name="cake_form"),
                           action_event("action_listen"), event("user", text="/greet", parse_data={}),
                           event("action_execution_rejected", name="cake_form"), action_event("utter_greet"),
                           action_event("action_listen"), event("user", text="/affirm", parse_data={})])
    assert tracker.loop_rejected
    tracker.events.append(action_event("cake_form"))
    assert not tracker.loop_rejected
