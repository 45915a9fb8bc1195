"""Rasa 3.6's FormAction and its validation action (rasa/core/actions/forms.py): `validate_<form>` runs on every run of
the form, with nothing to validate too (at activation, through `do` -> `_validate_if_required` -> `validate_slots`),
and a `requested_slot` the validation action sets is the slot the form asks for (`request_next_slot`). Checked
against a real rasa-sdk action server running a dynamic form (`required_slots` overridden)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.rasa.assistant import Assistant
from bot.rasa.project import load_project, read_project_folder
from tests.bot.rasa.conftest import Chat

DYNAMIC_FORM = '''
from typing import Any, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict


class ValidateCakeForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_cake_form"

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> List[Text]:
        # the dedication first, whatever the domain's order
        return ["dedication", *[slot for slot in domain_slots if slot != "dedication"]]

    def validate_dedication(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                            domain: DomainDict) -> Dict[Text, Any]:
        return {"dedication": str(slot_value)}
'''


@pytest.fixture
def dynamic_form_chat(project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Chat]:
    from tests.bot.rasa.action_server import ensure_rasa_sdk, running_action_server

    (project_copy / "actions" / "actions.py").write_text(DYNAMIC_FORM, encoding="utf-8")
    python = ensure_rasa_sdk()
    if isinstance(python, str):
        pytest.skip(python)
    with running_action_server(python, project_copy) as url:
        monkeypatch.setenv("CAKE_SHOP_ACTIONS_URL", url)
        yield Chat(Assistant(load_project(read_project_folder(project_copy))))


async def test_the_validation_action_runs_at_activation_and_its_requested_slot_is_asked(
        dynamic_form_chat: Chat) -> None:
    chat = dynamic_form_chat
    # nothing prefilled: Rasa still calls validate_cake_form, whose required_slots puts the dedication first
    replies = await chat.say("/order_cake")
    assert chat.tracker.active_loop == "cake_form"
    assert chat.tracker.get_slot("requested_slot") == "dedication"
    assert replies[-1] == "What should we write on it?"
    # the answer fills the dedication; the next question is the validation action's next missing slot
    replies = await chat.say("Happy birthday")
    assert chat.tracker.get_slot("dedication") == "Happy birthday"
    assert chat.tracker.get_slot("requested_slot") == "cake_flavour"
    assert replies[-1] == "Which flavour would you like?"


async def test_a_form_activated_inside_another_fills_its_slots_from_the_activating_message(project_copy: Path) -> None:
    # Rasa 3.6.21's FormAction.activate runs action_extract_slots again with the new form active (not rejected) and
    # requested_slot still the old form's: a mapping conditioned on (new form, that slot) takes the message that
    # switched (financial-demo: the /affirm to "switch forms?" answers the new form's AA_CONTINUE_FORM)
    domain = project_copy / "domain.yml"
    text = domain.read_text(encoding="utf-8").replace("  - validate_cake_form\n", "")
    text = text.replace("slots:\n", """slots:
  rush:
    type: bool
    influence_conversation: false
    mappings:
    - type: from_intent
      intent: affirm
      value: true
      conditions:
      - active_loop: rush_form
        requested_slot: cake_flavour
""", 1).replace("forms:\n", "forms:\n  rush_form:\n    required_slots:\n    - rush\n", 1)
    text = text.replace("responses:\n", "responses:\n  utter_ask_rush:\n  - text: \"In a rush?\"\n", 1)
    domain.write_text(text, encoding="utf-8")
    (project_copy / "data" / "rules.yml").write_text(
        (project_copy / "data" / "rules.yml").read_text(encoding="utf-8") + """
- rule: Rush order inside the cake form
  condition:
  - active_loop: cake_form
  steps:
  - intent: affirm
  - action: rush_form
  - active_loop: rush_form
""", encoding="utf-8")
    chat = Chat(Assistant(load_project(read_project_folder(project_copy))))
    await chat.say("/order_cake")
    assert chat.tracker.get_slot("requested_slot") == "cake_flavour"
    replies = await chat.say("/affirm")
    assert chat.tracker.get_slot("rush") is True
    assert "In a rush?" not in replies
    assert chat.tracker.active_loop != "rush_form"
