"""Policy by confidence: answer, answer and ask "did this help?", or hand the shopper to a person."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.understanding import FALLBACK_INTENT, OUT_OF_SCOPE_INTENT, ParsedMessage

Action = Literal["answer", "confirm", "clarify", "handoff"]
# Intents that always go to a person whatever the confidence.
HANDOFF_INTENTS = frozenset({"human_handoff", "complaint", "cancel_order"})


@dataclass(frozen=True)
class PolicyThresholds:
    answer_at: float = 0.6  # at or above: answer
    confirm_at: float = 0.35  # at or above: answer and ask whether it helped; below: clarify, then hand off
    misunderstandings_before_handoff: int = 2  # consecutive unclear messages before a person takes over


@dataclass(frozen=True)
class Decision:
    action: Action
    intent: str
    confidence: float


def decide(parsed: ParsedMessage, *, thresholds: PolicyThresholds, misunderstood_before: int) -> Decision:
    """What to do with a parsed message, given how many messages in a row were not understood before it."""
    intent, confidence = parsed.intent, float(parsed.confidence)
    if intent in HANDOFF_INTENTS and confidence >= thresholds.confirm_at:
        return Decision("handoff", intent, confidence)
    if intent == OUT_OF_SCOPE_INTENT and confidence >= thresholds.confirm_at:
        return Decision("answer", intent, confidence)
    if intent == FALLBACK_INTENT or confidence < thresholds.confirm_at:
        if misunderstood_before + 1 >= thresholds.misunderstandings_before_handoff:
            return Decision("handoff", intent, confidence)
        return Decision("clarify", intent, confidence)
    if confidence >= thresholds.answer_at:
        return Decision("answer", intent, confidence)
    return Decision("confirm", intent, confidence)
