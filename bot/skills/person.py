"""A person takes over: `hand_off` is the one way the bot hands a conversation to the agent inbox (the engine
carries out the policy's hand-off decisions with it; the handoff hooks and an imported Rasa assistant use it too).
The inbox thread is opened at the end of the turn with `Turn.handoff_reason` (`bot.handoff.engine_hooks.finish`)."""
from __future__ import annotations

from bot.skills.base import Press, Skill, Turn
from bot.skills.order_status import order_number_in

HANDOFF_QUEUE = "support"
ASKED = "asked_for_person"  # the reason when the shopper asked (a button, a command)

skill = Skill("person")


def hand_off(turn: Turn, *, intent: str, reason: str) -> None:
    """Hand the conversation to a person: the bot goes quiet until an agent gives it back."""
    conversation = turn.conversation
    conversation.mode = "human"
    conversation.queue = HANDOFF_QUEUE
    conversation.pending = None
    turn.handed_off = True
    turn.handoff_reason = reason
    number = order_number_in(turn) if intent == "cancel_order" and turn.parsed is not None else None
    if number:
        turn.say("cancel_order_handoff", number=number)
    else:
        turn.say("handoff_complaint" if intent == "complaint" or reason == "negative_wording" else "handoff")


@skill.intent("human_handoff", "complaint", "cancel_order")
async def for_intent(turn: Turn, intent: str) -> None:
    hand_off(turn, intent=intent, reason=intent)


@skill.command("human", "agent")
async def by_command(turn: Turn) -> None:
    hand_off(turn, intent="human_handoff", reason=ASKED)


@skill.payload("handoff:request")
async def by_button(turn: Turn, press: Press) -> None:
    hand_off(turn, intent="human_handoff", reason=ASKED)
