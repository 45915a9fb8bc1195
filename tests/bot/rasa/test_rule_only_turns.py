"""Rasa 3.6's rule-only data: MemoizationPolicy and TEDPolicy (`SupportedData.ML_DATA`) train on stories only and,
predicting, do not see the turns a rule no story uses predicted (`hide_rule_turn`), nor the slots and loops only
rules use (`RulePolicy._find_rule_only_slots_loops`, `Domain.states_for_tracker_history(ignore_rule_only_turns=True)`).
The expected states below follow that function step by step: a hidden run of turns goes, the first state after it
takes the previous action of the last state seen, rule-only slots are dropped."""
from __future__ import annotations

from bot.rasa.assistant import Assistant
from bot.rasa.project import RasaProject, load_project
from bot.rasa.tracker import LISTEN
from tests.bot.rasa.conftest import Chat

DOMAIN = """version: "3.1"
intents: [greet, affirm, thank, check_balance, give_email]
entities: [email]
slots:
  email:
    type: text
    mappings:
    - type: from_entity
      entity: email
responses:
  utter_greet: [{text: "Hello!"}]
  utter_balance: [{text: "You have 10 EUR."}]
  utter_ok: [{text: "OK."}]
  utter_welcome: [{text: "You're welcome."}]
  utter_noted: [{text: "Noted."}]
  utter_default: [{text: "Sorry, I didn't get that."}]
"""

STORIES = """version: "3.1"
stories:
- story: ok after the balance
  steps:
  - intent: check_balance
  - action: utter_balance
  - intent: affirm
  - action: utter_ok
- story: thanks inside a story
  steps:
  - intent: check_balance
  - action: utter_balance
  - intent: thank
  - action: utter_welcome
"""

RULES = """version: "3.1"
rules:
- rule: greet whenever
  steps:
  - intent: greet
  - action: utter_greet
- rule: thanks whenever
  steps:
  - intent: thank
  - action: utter_welcome
- rule: an email once known
  condition:
  - slot_was_set:
    - email
  steps:
  - intent: give_email
  - action: utter_noted
"""

CONFIG = """version: "3.1"
language: en
pipeline: []
policies:
  - name: MemoizationPolicy
  - name: RulePolicy
    core_fallback_threshold: 0.3
    core_fallback_action_name: action_default_fallback
"""


def _project() -> RasaProject:
    return load_project({"config.yml": CONFIG, "domain.yml": DOMAIN,
                         "data/stories.yml": STORIES, "data/rules.yml": RULES})


def _actions(chat: Chat, start: int) -> list[tuple[str, object, bool]]:
    return [(str(e["name"]), e.get("policy"), bool(e.get("hide_rule_turn"))) for e in chat.tracker.events[start:]
            if e.get("event") == "action"]


def test_rule_only_slots_and_loops_are_what_rules_use_and_stories_do_not() -> None:
    policies = _project().policies
    assert policies.rule_only_slots == frozenset({"email"})
    assert policies.rule_only_loops == frozenset()


async def test_a_rule_no_story_uses_is_hidden_and_one_a_story_uses_is_not() -> None:
    chat = Chat(Assistant(_project()))
    await chat.say("/check_balance")
    start = len(chat.tracker.events)
    assert await chat.say("/greet") == ["Hello!"]
    # utter_greet and the listen after it come from "greet whenever", which no story runs: hidden
    assert _actions(chat, start) == [("utter_greet", "RulePolicy", True), (LISTEN, "RulePolicy", True)]
    start = len(chat.tracker.events)
    assert await chat.say("/thank") == ["You're welcome."]
    # "thanks whenever" predicts what the story "thanks inside a story" does after check_balance: not hidden
    assert _actions(chat, start) == [("utter_welcome", "RulePolicy", False), (LISTEN, "RulePolicy", False)]


async def test_memoization_sees_the_story_through_a_rule_only_digression() -> None:
    chat = Chat(Assistant(_project()))
    await chat.say("/check_balance")
    await chat.say("/greet")  # rule-only turn
    start = len(chat.tracker.events)
    # Rasa's ML states: [check_balance, utter_balance, affirm]: the story "ok after the balance" continues
    assert await chat.say("/affirm") == ["OK."]
    assert _actions(chat, start)[0] == ("utter_ok", "MemoizationPolicy", False)
    policies = chat.assistant.project.policies
    assert "utter_greet" in [s.get("prev_action") for s in chat.tracker.past_states()]
    ml = chat.tracker.ml_states(policies.rule_only_slots, policies.rule_only_loops)
    assert [(s.get("prev_action"), s.get("intent")) for s in ml] == [
        (LISTEN, "check_balance"), ("utter_balance", None), (LISTEN, "affirm"), ("utter_ok", None),
        (LISTEN, "affirm")]


async def test_ml_states_drop_hidden_turns_and_rule_only_slots() -> None:
    chat = Chat(Assistant(_project()))
    await chat.say("/check_balance")
    await chat.say('/give_email{"email": "ann@example.com"}')  # sets the rule-only slot; no rule applies yet
    await chat.say("/greet")  # hidden
    policies = chat.assistant.project.policies
    full = chat.tracker.past_states()
    assert any(s.get("slot:email") for s in full)
    ml = chat.tracker.ml_states(policies.rule_only_slots, policies.rule_only_loops)
    assert all("slot:email" not in s for s in ml)
    # "an email once known" answered give_email (the slot was set first) and "greet whenever" the greeting: no
    # story runs either rule, so both turns are gone; the current state is the listen after the greeting
    assert [e.get("hide_rule_turn") for e in chat.tracker.events if e.get("name") in ("utter_noted", "utter_greet")] \
        == [True, True]
    assert [(s.get("prev_action"), s.get("intent")) for s in ml] == [
        (LISTEN, "check_balance"), ("utter_balance", None), (LISTEN, "greet")]


def test_hidden_flags_follow_rasas_states_for_tracker_history() -> None:
    """`ml_states` on hand-made events: a hidden action and the listen after it go; the user state after them gets
    the last visible previous action; a follow-up or the loop's own next step keep the hidden flag as it was."""
    from bot.rasa.tracker import Tracker, action_event, event

    project = _project()
    tracker = Tracker("t", project.domain)
    user = {"intent": {"name": "check_balance", "confidence": 1.0}, "entities": []}
    greet = {"intent": {"name": "greet", "confidence": 1.0}, "entities": []}
    affirm = {"intent": {"name": "affirm", "confidence": 1.0}, "entities": []}
    tracker.events = [
        action_event(LISTEN), event("user", parse_data=user), action_event("utter_balance"), action_event(LISTEN),
        event("user", parse_data=greet), action_event("utter_greet", hide_rule_turn=True),
        action_event(LISTEN, hide_rule_turn=True), event("user", parse_data=affirm)]
    ml = tracker.ml_states()
    assert [(s.get("prev_action"), s.get("intent")) for s in ml] == [
        (LISTEN, "check_balance"), ("utter_balance", None), (LISTEN, "affirm")]
    # a bot action right after a hidden one: its state takes the last visible previous action and user message
    tracker.events = [
        action_event(LISTEN), event("user", parse_data=user), action_event("utter_balance"), action_event(LISTEN),
        event("user", parse_data=greet), action_event("utter_greet", hide_rule_turn=True),
        action_event("utter_ok")]
    ml = tracker.ml_states()
    # Rasa: the utter_ok state takes action_listen (before the hidden greet) and the last kept state's user
    # message (check_balance: Rasa's state after utter_balance carries it)
    assert [(s.get("prev_action"), s.get("intent")) for s in ml] == [
        (LISTEN, "check_balance"), ("utter_balance", None), (LISTEN, "check_balance"), ("utter_ok", None)]


FORM_DOMAIN = """version: "3.1"
intents: [open_order, thank, inform]
entities: [email]
slots:
  email:
    type: text
    mappings:
    - type: from_entity
      entity: email
forms:
  order_form:
    required_slots: [email]
responses:
  utter_ask_email: [{text: "Your email?"}]
  utter_welcome: [{text: "You're welcome."}]
  utter_done: [{text: "Done."}]
  utter_default: [{text: "Sorry, I didn't get that."}]
"""

FORM_STORIES = """version: "3.1"
stories:
- story: thanks
  steps:
  - intent: thank
  - action: utter_welcome
- story: an order
  steps:
  - intent: open_order
  - action: order_form
  - active_loop: order_form
  - active_loop: null
  - action: utter_done
"""


def _form_project(memoization: str) -> RasaProject:
    config = (f"version: \"3.1\"\nlanguage: en\npipeline: []\npolicies:\n  - name: {memoization}\n    max_history: 4\n"
              "  - name: RulePolicy\n    core_fallback_threshold: 0.3\n"
              "    core_fallback_action_name: action_default_fallback\n")
    return load_project({"config.yml": config, "domain.yml": FORM_DOMAIN, "data/stories.yml": FORM_STORIES})


async def test_augmented_memoization_forgets_what_was_set_before_its_cut() -> None:
    """Rasa's AugmentedMemoizationPolicy rebuilds the conversation from each action on (`tracker.init_copy()` +
    the later events: the active loop and slots set before the cut are gone), so "thank" inside a form the user
    ignores is the "thanks" story's opening; plain MemoizationPolicy sees the form and remembers nothing."""
    chat = Chat(Assistant(_form_project("AugmentedMemoizationPolicy")))
    assert await chat.say("/open_order") == ["Your email?"]
    start = len(chat.tracker.events)
    assert (await chat.say("/thank"))[0] == "You're welcome."
    assert _actions(chat, start)[0] == ("utter_welcome", "MemoizationPolicy", False)
    plain = Chat(Assistant(_form_project("MemoizationPolicy")))
    await plain.say("/open_order")
    start = len(plain.tracker.events)
    await plain.say("/thank")
    assert _actions(plain, start)[0] == ("action_default_fallback", "RulePolicy", False)


def test_truncations_cut_at_each_action_within_max_history() -> None:
    from bot.rasa.tracker import Tracker, action_event, event

    project = _form_project("AugmentedMemoizationPolicy")
    tracker = Tracker("t", project.domain)
    parse = {"intent": {"name": "open_order", "confidence": 1.0}, "entities": []}
    thank = {"intent": {"name": "thank", "confidence": 1.0}, "entities": []}
    tracker.events = [action_event(LISTEN), event("user", parse_data=parse), action_event("order_form"),
                      event("active_loop", name="order_form"), action_event(LISTEN), event("user", parse_data=thank)]
    cuts = tracker.truncations(4)
    assert [c.events[0]["name"] for c in cuts] == [LISTEN, "order_form", LISTEN]
    last = cuts[-1].ml_states()
    assert last == [{"prev_action": LISTEN, "intent": "thank", "active_loop": None}]
    # Rasa's _trim_tracker_by_max_history: from the end, the first action_listen that is more than max_history
    # actions back starts the trimmed conversation (here every event is within reach)
    assert [c.events[0]["name"] for c in tracker.truncations(1)] == [LISTEN, "order_form", LISTEN]
    tracker.events += [action_event("utter_welcome"), action_event(LISTEN), event("user", parse_data=thank)]
    cuts = tracker.truncations(1)
    assert [c.events[0]["name"] for c in cuts] == [LISTEN, "utter_welcome", LISTEN]
    assert cuts[0].events[1]["event"] == "user"
