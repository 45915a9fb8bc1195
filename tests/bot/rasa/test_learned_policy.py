"""TEDPolicy's stand-in (bot/rasa/learned.py): where no rule and no remembered story predicts, the project's stories
suggest the action, as real Rasa 3.6.21's TED does (financial-demo: a bare "yes" after a rule's answer -> utter_ok,
learnt from the "say ok when user affirms after ..." stories); it wins only above RulePolicy's
core_fallback_threshold, never for an intent, entity or previous action no story has there, never for the loop that
just refused the message, not for an action that only one story runs after that intent, and not at all without
TEDPolicy in the config."""
from __future__ import annotations

from bot.rasa.assistant import Assistant
from bot.rasa.learned import LearnedPolicy
from bot.rasa.project import RasaProject, load_project
from bot.rasa.tracker import LISTEN, State
from tests.bot.rasa.conftest import Chat

DOMAIN = """version: "3.1"
intents: [greet, affirm, deny, thank, check_balance, ask_help, bye]
entities: [email]
responses:
  utter_greet: [{text: "Hello!"}]
  utter_balance: [{text: "You have 10 EUR."}]
  utter_help: [{text: "I can show your balance."}]
  utter_ok: [{text: "OK."}]
  utter_ask_whatelse: [{text: "What else can I do?"}]
  utter_welcome: [{text: "You're welcome."}]
  utter_bye: [{text: "Bye."}]
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
- story: ok after help
  steps:
  - intent: ask_help
  - action: utter_help
  - intent: affirm
  - action: utter_ok
- story: ok after a greeting
  steps:
  - intent: greet
  - action: utter_greet
  - intent: affirm
  - action: utter_ok
- story: nothing more after help
  steps:
  - intent: ask_help
  - action: utter_help
  - intent: deny
  - action: utter_ask_whatelse
"""

RULES = """version: "3.1"
rules:
- rule: thanks
  steps:
  - intent: thank
  - action: utter_welcome
- rule: bye
  steps:
  - intent: bye
  - action: utter_bye
"""


def _config(*, ted: bool = True, threshold: float = 0.4) -> str:
    return ("version: \"3.1\"\nlanguage: en\npipeline: []\npolicies:\n  - name: MemoizationPolicy\n"
            + ("  - name: TEDPolicy\n    epochs: 40\n" if ted else "")
            + f"  - name: RulePolicy\n    core_fallback_threshold: {threshold}\n"
              "    core_fallback_action_name: action_default_fallback\n")


def _project(**config: object) -> RasaProject:
    return load_project({"config.yml": _config(**config), "domain.yml": DOMAIN,  # type: ignore[arg-type]
                         "data/stories.yml": STORIES, "data/rules.yml": RULES})


def _actions(chat: Chat, start: int) -> list[str]:
    return [str(e["name"]) for e in chat.tracker.events[start:]
            if e.get("event") == "action" and e.get("name") != LISTEN]


async def test_the_stories_answer_where_no_rule_or_story_does() -> None:
    chat = Chat(Assistant(_project()))
    assert await chat.say("/thank") == ["You're welcome."]  # a rule
    # "thank -> welcome -> affirm" is in no rule and no story: memoization has nothing, the stories say utter_ok
    start = len(chat.tracker.events)
    assert await chat.say("/affirm") == ["OK."]
    assert _actions(chat, start) == ["utter_ok"]
    assert [e.get("policy") for e in chat.tracker.events[start:] if e.get("name") == "utter_ok"] == ["TEDPolicy"]


async def test_without_ted_in_the_config_the_core_fallback_answers() -> None:
    chat = Chat(Assistant(_project(ted=False)))
    await chat.say("/thank")
    start = len(chat.tracker.events)
    assert await chat.say("/affirm") == ["Sorry, I didn't get that."]
    assert _actions(chat, start) == ["action_default_fallback"]


async def test_a_guess_below_the_core_fallback_threshold_loses() -> None:
    chat = Chat(Assistant(_project(threshold=0.99)))
    await chat.say("/thank")
    start = len(chat.tracker.events)
    await chat.say("/affirm")
    assert _actions(chat, start) == ["action_default_fallback"]


async def test_an_intent_or_entity_no_story_has_there_gets_the_core_fallback() -> None:
    chat = Chat(Assistant(_project()))
    await chat.say("/thank")
    start = len(chat.tracker.events)
    await chat.say("/thank")  # the rule again
    assert _actions(chat, start) == ["utter_welcome"]
    start = len(chat.tracker.events)
    await chat.say('/affirm{"email": "a@example.com"}')  # affirm with an entity no story has
    assert _actions(chat, start) == ["action_default_fallback"]


def test_the_learnt_model_ranks_and_excludes() -> None:
    policy = LearnedPolicy(history=3, threshold=0.4)
    after = {"prev_action": LISTEN, "active_loop": None}
    policy.fit([[({**after, "intent": "affirm"}, "utter_ok"), ({"prev_action": "utter_ok"}, LISTEN)],
                [({**after, "intent": "affirm"}, "utter_ok"), ({"prev_action": "utter_ok"}, LISTEN)],
                [({**after, "intent": "deny"}, "utter_ask_whatelse"),
                 ({"prev_action": "utter_ask_whatelse"}, LISTEN)]])
    state = {**after, "intent": "affirm"}
    found = policy.predict([state])
    assert found is not None
    assert found[0] == "utter_ok"
    assert found[1] > 0.4
    # the rejected action is zeroed; what is left is below the threshold here
    assert policy.predict([state], excluded=["utter_ok"]) is None
    assert policy.predict([{**after, "intent": "never_in_a_story"}]) is None


async def test_what_one_story_alone_does_after_an_intent_is_not_generalised() -> None:
    # deny -> utter_ask_whatelse is in one story only (real Rasa 3.6.21 on tests/data/rasa_project: a bare /deny
    # at the start, which one story answers after its own question, gets the core fallback)
    chat = Chat(Assistant(_project()))
    await chat.say("/thank")
    start = len(chat.tracker.events)
    assert await chat.say("/deny") == ["Sorry, I didn't get that."]
    assert _actions(chat, start) == ["action_default_fallback"]


def test_a_bare_answer_at_the_start_is_not_taken_for_a_form_opening() -> None:
    # stories that open with a user message all open a form; the "yes -> ok" stories start after an answer.
    # Real Rasa 3.6.21's TED (financial-demo) answers a bare /affirm at the start (or after a hidden rule-only turn)
    # with utter_ok; a "conversation start" feature made the stand-in guess a form there.
    policy = LearnedPolicy(history=3, threshold=0.4)
    listen = {"prev_action": LISTEN, "active_loop": None}
    runs: list[list[tuple[State, str]]] = [
        [({**listen, "intent": intent}, form), ({"prev_action": form, "active_loop": form}, LISTEN)]
            for intent, form in (("pay", "pay_form"), ("search", "search_form"), ("search", "search_form"),
                                 ("transfer", "transfer_form"))]
    runs += [[({"active_loop": None}, answer), ({"prev_action": answer, "active_loop": None}, LISTEN),
              ({**listen, "intent": "affirm"}, "utter_ok"), ({"prev_action": "utter_ok", "active_loop": None}, LISTEN)]
             for answer in ("show_balance", "show_help")]
    policy.fit(runs)
    found = policy.predict([{**listen, "intent": "affirm"}])
    assert found is not None
    assert found[0] == "utter_ok"


def test_the_latest_intent_outweighs_an_earlier_action() -> None:
    # helpdesk-assistant, real Rasa 3.6.21: /trigger_handoff after an out-of-scope digression -> action_handoff,
    # although the stories' digressions (utter_out_of_scope) are always followed by the form
    policy = LearnedPolicy(history=3, threshold=0.4)
    listen = {"prev_action": LISTEN, "active_loop": None}
    handoff = [({**listen, "intent": "human"}, "utter_options"), ({"prev_action": "utter_options", "active_loop": None},
               LISTEN), ({**listen, "intent": "trigger"}, "action_handoff")]
    digression = [({**listen, "intent": "out_of_scope"}, "utter_out_of_scope"),
                  ({"prev_action": "utter_out_of_scope", "active_loop": None}, "the_form")]
    policy.fit([handoff, handoff, digression, digression, digression])
    after = {"prev_action": "utter_out_of_scope", "active_loop": None}
    found = policy.predict([{**listen, "intent": "out_of_scope"}, after, {**listen, "intent": "trigger"}])
    assert found is not None
    assert found[0] == "action_handoff"


def test_a_message_a_form_refuses_gets_what_the_stories_do_inside_the_form() -> None:
    # financial-demo, real Rasa 3.6.21: /affirm or /deny that a form just opened by its intent refuses ->
    # action_switch_forms_ask, what the stories run after any other intent interrupting that form, though no
    # story runs it right after affirm or deny (TED reads the rejected loop, not only the intent)
    policy = LearnedPolicy(history=3, threshold=0.4)
    listen = {"prev_action": LISTEN, "active_loop": None}
    asking = {"prev_action": "pay_form", "active_loop": "pay_form"}
    runs: list[list[tuple[State, str]]] = [
        [({**listen, "intent": "pay"}, "pay_form"), (asking, LISTEN),
         ({**listen, "active_loop": "pay_form", "intent": other}, "switch_ask"),
         ({"prev_action": "switch_ask", "active_loop": "pay_form"}, LISTEN)]
        for other in ("search", "transfer", "search")]
    runs += [[({"active_loop": None}, answer), ({"prev_action": answer, "active_loop": None}, LISTEN),
              ({**listen, "intent": "affirm"}, "utter_ok"), ({"prev_action": "utter_ok", "active_loop": None}, LISTEN)]
             for answer in ("show_balance", "show_help")]
    policy.fit(runs)
    refused: list[State] = [{**listen, "intent": "pay"}, asking,
                            {**listen, "active_loop": "pay_form", "intent": "affirm"}]
    found = policy.predict(refused, excluded=["pay_form"], rejected=True)
    assert found is not None
    assert found[0] == "switch_ask"
    # outside a refusing form, what no story runs right after the intent is still not the answer to it
    assert policy.predict(refused, excluded=["pay_form"]) is None
    # a form reached in a way no story interrupts (financial-demo: switched to; real Rasa: mostly the core
    # fallback there) is not answered from the intent alone
    switched: list[State] = [{"prev_action": "switch_affirm", "active_loop": "search_form"}, asking, refused[-1]]
    assert policy.predict(switched, excluded=["pay_form"], rejected=True) is None


SWITCH_DOMAIN = """version: "3.1"
intents: [pay, search, transfer, affirm, deny, check_balance, ask_help]
entities: [amount]
slots:
  amount:
    type: text
    mappings:
    - type: from_entity
      entity: amount
forms:
  pay_form:
    required_slots: [amount]
responses:
  utter_ask_amount: [{text: "How much?"}]
  utter_switch: [{text: "Leave the payment?"}]
  utter_balance: [{text: "You have 10 EUR."}]
  utter_help: [{text: "I can pay."}]
  utter_ok: [{text: "OK."}]
  utter_default: [{text: "Sorry, I didn't get that."}]
"""

SWITCH_STORIES = """version: "3.1"
stories:
""" + "".join(f"""- story: payment interrupted by {other}
  steps:
  - intent: pay
  - action: pay_form
  - active_loop: pay_form
  - intent: {other}
  - action: utter_switch
  - intent: deny
  - action: pay_form
""" for other in ("search", "transfer", "check_balance")) + "".join(f"""- story: ok after {answer}
  steps:
  - intent: {intent}
  - action: {answer}
  - intent: affirm
  - action: utter_ok
""" for intent, answer in (("check_balance", "utter_balance"), ("ask_help", "utter_help")))


async def test_a_form_just_opened_that_refuses_a_bare_yes_asks_whether_to_leave_it() -> None:
    # financial-demo, real Rasa 3.6.21: /affirm or /deny that a form opened by its own intent refuses ->
    # action_switch_forms_ask and listen (what the stories run when that form, reached the same way, is
    # interrupted), not the core fallback, and not the form again (it stays refused until it runs)
    project = load_project({"config.yml": _config(), "domain.yml": SWITCH_DOMAIN,
                            "data/stories.yml": SWITCH_STORIES})
    chat = Chat(Assistant(project))
    assert await chat.say("/pay") == ["How much?"]
    start = len(chat.tracker.events)
    assert await chat.say("/affirm") == ["Leave the payment?"]
    assert _actions(chat, start) == ["utter_switch"]
    assert chat.tracker.events[-1].get("name") == LISTEN
    assert chat.tracker.active_loop == "pay_form"


RULE_FORM_DOMAIN = """version: "3.1"
intents: [order_cake, mood_great, mood_unhappy, affirm]
entities: [flavour]
slots:
  flavour:
    type: text
    mappings:
    - type: from_entity
      entity: flavour
forms:
  cake_form:
    required_slots: [flavour]
responses:
  utter_ask_flavour: [{text: "Which flavour?"}]
  utter_happy: [{text: "Great!"}]
  utter_cheer_up: [{text: "Cheer up."}]
  utter_did_that_help: [{text: "Did that help?"}]
  utter_default: [{text: "Sorry, I didn't get that."}]
"""

RULE_FORM_STORIES = """version: "3.1"
stories:
- story: happy path
  steps:
  - intent: mood_great
  - action: utter_happy
""" + "".join(f"""- story: sad path {n}
  steps:
  - intent: mood_unhappy
  - action: utter_cheer_up
  - action: utter_did_that_help
  - intent: affirm
  - action: utter_happy
""" for n in (1,))

RULE_FORM_RULES = """version: "3.1"
rules:
- rule: open the cake form
  steps:
  - intent: order_cake
  - action: cake_form
  - active_loop: cake_form
"""


async def test_a_form_only_rules_run_is_no_refusing_form_to_the_stand_in() -> None:
    # tests/data/rasa_project, real Rasa 3.6.21: /affirm refused by cake_form (a loop only rules run, which TED
    # never sees) -> the core fallback, not what a story opens with
    project = load_project({"config.yml": _config(), "domain.yml": RULE_FORM_DOMAIN,
                            "data/stories.yml": RULE_FORM_STORIES, "data/rules.yml": RULE_FORM_RULES})
    assert project.policies.rule_only_loops == {"cake_form"}
    chat = Chat(Assistant(project))
    assert await chat.say("/order_cake") == ["Which flavour?"]
    start = len(chat.tracker.events)
    assert await chat.say("/affirm") == ["Sorry, I didn't get that."]
    assert _actions(chat, start) == ["action_default_fallback"]
