"""Policy by confidence: answer, answer and ask "did this help?", or hand the shopper to a person.

The engine's own handoff triggers (the shopper asks for a person, the complaint intent, N messages in a row not
understood) are the shop's to switch off and tune: `shop_triggers(session)` reads them from the shop's
escalation rules (`bot.handoff.rules.rules_of`, cached per process) and `decide(..., triggers=)` applies them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bot.understanding import FALLBACK_INTENT, OUT_OF_SCOPE_INTENT, ParsedMessage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

Action = Literal["answer", "confirm", "clarify", "handoff"]
# Intents that go to a person whatever the confidence (a request and a complaint only while the shop's
# trigger for them is on; a cancellation always: it needs a person to stop the parcel).
HANDOFF_INTENTS = frozenset({"human_handoff", "complaint", "cancel_order"})
# What the bot does instead when the shop switched the trigger off: a request gets what the bot can do,
# a complaint the knowledge base (returns, damaged parcels...).
INSTEAD_OF_HANDOFF = {"human_handoff": "help", "complaint": "faq"}


@dataclass(frozen=True)
class PolicyThresholds:
    answer_at: float = 0.6  # at or above: answer
    confirm_at: float = 0.35  # at or above: answer and ask whether it helped; below: clarify, then hand off
    misunderstandings_before_handoff: int = 2  # consecutive unclear messages before a person takes over


@dataclass(frozen=True)
class ShopTriggers:
    """The shop's say in the engine's own handoff triggers."""

    on_request: bool = True  # "I want a person" (the human_handoff intent) hands off
    on_complaint: bool = True  # the complaint intent hands off
    low_confidence_in_a_row: int = 2  # unclear messages in a row before a person takes over; 0 = never
    low_confidence_below: float | None = None  # a message below this is unclear; None = thresholds.confirm_at

    def hands_off(self, intent: str) -> bool:
        if intent == "human_handoff":
            return self.on_request
        if intent == "complaint":
            return self.on_complaint
        return True


async def shop_triggers(session: AsyncSession, *, shop_id: int | None = None) -> ShopTriggers:
    """The triggers from the shop's escalation rules (cached per process: no query on most messages)."""
    from bot.handoff import DEFAULT_SHOP_ID, rules_of

    rules = await rules_of(session, shop_id=DEFAULT_SHOP_ID if shop_id is None else shop_id)
    return ShopTriggers(on_request=rules.on_request, on_complaint=rules.on_complaint,
                        low_confidence_in_a_row=rules.low_confidence_in_a_row,
                        low_confidence_below=rules.low_confidence_below)


@dataclass(frozen=True)
class Decision:
    action: Action
    intent: str
    confidence: float


def decide(parsed: ParsedMessage, *, thresholds: PolicyThresholds, misunderstood_before: int,
           triggers: ShopTriggers | None = None) -> Decision:
    """What to do with a parsed message, given how many messages in a row were not understood before it.

    Without `triggers` the process defaults apply (every trigger on, `misunderstandings_before_handoff`)."""
    intent, confidence = parsed.intent, float(parsed.confidence)
    unclear_below = thresholds.confirm_at
    in_a_row = thresholds.misunderstandings_before_handoff
    if triggers is not None:
        in_a_row = triggers.low_confidence_in_a_row
        if triggers.low_confidence_below is not None:
            unclear_below = triggers.low_confidence_below
    if intent in HANDOFF_INTENTS and confidence >= unclear_below:
        if triggers is not None and not triggers.hands_off(intent):
            return Decision("answer", INSTEAD_OF_HANDOFF[intent], confidence)
        return Decision("handoff", intent, confidence)
    if intent == OUT_OF_SCOPE_INTENT and confidence >= unclear_below:
        return Decision("answer", intent, confidence)
    if intent == FALLBACK_INTENT or confidence < unclear_below:
        if in_a_row and misunderstood_before + 1 >= in_a_row:
            return Decision("handoff", intent, confidence)
        return Decision("clarify", intent, confidence)
    if confidence >= thresholds.answer_at:
        return Decision("answer", intent, confidence)
    return Decision("confirm", intent, confidence)
