"""Policy thresholds."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from bot import handoff
from bot.policy import Decision, PolicyThresholds, Signals, decide, triggers_of


@dataclass
class Parsed:
    intent: str
    confidence: float
    text: str = "text"
    language: str = "en"
    entities: tuple[Any, ...] = ()
    embedding: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))

    def entity_values(self, entity: str) -> list[Any]:
        return []

    def to_rasa(self, *, include_embedding: bool = False) -> dict[str, Any]:
        return {}


@pytest.mark.parametrize(("intent", "confidence", "before", "action"), [
    ("order_status", 0.9, 0, "answer"),
    ("order_status", 0.5, 0, "confirm"),
    ("order_status", 0.2, 0, "clarify"),
    ("nlu_fallback", 0.3, 0, "clarify"),
    ("nlu_fallback", 0.3, 1, "handoff"),  # the second unclear message in a row goes to a person
    ("human_handoff", 0.9, 0, "handoff"),
    ("complaint", 0.7, 0, "handoff"),
    ("out_of_scope", 0.8, 0, "answer"),
])
def test_policy_by_confidence(intent: str, confidence: float, before: int, action: str) -> None:
    decision = decide(Parsed(intent, confidence), thresholds=PolicyThresholds(), misunderstood_before=before)
    assert decision.action == action


def test_escalation_triggers_are_configurable() -> None:
    """The shop's escalation rules, read by the policy (the one place that decides): each trigger hands off with
    its reason, and a shop that switched every trigger off keeps the bot answering."""
    rules = handoff.rules.EscalationRules(order_value_above=Decimal("500"))

    def decision(text: str, intent: str, confidence: float, *, rules: handoff.rules.EscalationRules = rules,
                 before: int = 0, **signals: Any) -> Decision:
        parsed = Parsed(intent, confidence, text=text)
        return decide(parsed, thresholds=PolicyThresholds(), misunderstood_before=before, triggers=triggers_of(rules),
                      signals=Signals(negative_wording=handoff.rules.strongly_negative(text), **signals))

    asked = decision("talk to a human", "human_handoff", 0.9)
    assert (asked.action, asked.reason) == ("handoff", "human_handoff")
    assert decision("this is broken", "complaint", 0.8).reason == "complaint"
    assert decision("this shop is a SCAM", "other", 0.8).reason == "negative_wording"
    assert decision("你们就是骗子", "other", 0.8).reason == "negative_wording"
    assert decision("order A1", "order_status", 0.9, order_value=Decimal("800.00")).reason == "order_value"
    assert decision("order A1", "order_status", 0.9, order_value=Decimal("400.00")).action == "answer"
    assert decision("order A1", "order_status", 0.9, order_value_unknown=True).reason == "order_value"
    assert decision("hmm", "x", 0.2, before=0).action == "clarify"
    assert decision("hmm", "x", 0.2, before=1).action == "handoff"
    assert decision("no", "deny", 0.9, unhelpful_in_a_row=2).reason == "not_helpful"
    quiet = handoff.rules.EscalationRules(on_request=False, on_complaint=False, on_negative_wording=False,
                                          low_confidence_in_a_row=0, unhelpful_in_a_row=0)
    assert decision("SCAM!! talk to a human", "human_handoff", 0.1, rules=quiet, before=5,
                    unhelpful_in_a_row=5).action == "clarify"
    assert decision("talk to a human", "human_handoff", 0.9, rules=quiet).reason == "request_declined"
    mixed = handoff.rules.EscalationRules(mixed_reply_by_intent={"return_refund": "draft_for_agent"})
    assert decision("can I return it", "return_refund", 0.5, rules=mixed).action == "draft_for_agent"
    assert decision("shipping to Peru?", "shipping_info", 0.5, rules=mixed).action == "confirm"
