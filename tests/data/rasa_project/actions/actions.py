"""Custom actions of the cake shop, run by a real rasa-sdk action server."""
import time
from typing import Any, Dict, List, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

FLAVOURS = ["chocolate", "lemon", "vanilla", "strawberry", "carrot"]


class ValidateCakeForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_cake_form"

    def validate_cake_flavour(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> Dict[Text, Any]:
        if str(slot_value).lower() in FLAVOURS:
            return {"cake_flavour": str(slot_value).lower()}
        dispatcher.utter_message(text=f"Sorry, we don't bake {slot_value} cakes. We have {', '.join(FLAVOURS)}.")
        return {"cake_flavour": None}

    def validate_dedication(self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                            domain: DomainDict) -> Dict[Text, Any]:
        if len(str(slot_value)) > 40:
            dispatcher.utter_message(text="That is too long for a cake; 40 letters at most.")
            return {"dedication": None}
        return {"dedication": str(slot_value)}


class ActionSubmitOrder(Action):
    def name(self) -> Text:
        return "action_submit_order"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        reference = f"CAKE-{len(tracker.events):04d}"
        dispatcher.utter_message(text=f"Your order reference is {reference}.")
        return [SlotSet("order_reference", reference), FollowupAction("utter_anything_else")]


class ActionCheckStock(Action):
    def name(self) -> Text:
        return "action_check_stock"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        raise RuntimeError("the stock system is down")


class ActionSlowQuote(Action):
    def name(self) -> Text:
        return "action_slow_quote"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        time.sleep(5)  # longer than the endpoint's timeout
        return [SlotSet("quote", 120.0)]
