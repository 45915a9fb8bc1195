"""The skill registry: which skill answers an intent, a button, a slash command or the answer to a question in
flight. Each skill module declares what it owns with its `Skill` (`bot.skills.base`); adding a skill is its module
plus one line in `SKILLS`. Two skills claiming the same intent, payload, command or question fail at import."""
from __future__ import annotations

import re
from typing import Any

from bot.skills import (
    cart,
    cart_link,
    checkout,
    cross_border,
    faq,
    order_status,
    person,
    product_qa,
    recommend,
    search,
    small_talk,
)
from bot.skills.base import AnswerReader, ButtonHandler, CommandHandler, IntentHandler, Press, Skill

SKILLS: tuple[Skill, ...] = (small_talk.skill, search.skill, recommend.skill, cart.skill, order_status.skill,
                             cross_border.skill, person.skill, faq.skill, product_qa.skill, checkout.skill,
                             cart_link.skill)
TRACKED = ":rec:"  # a recommendation's button carries its impression: "<payload>:rec:<impression id>"


class Registry:
    def __init__(self, skills: tuple[Skill, ...], *, otherwise: IntentHandler) -> None:
        self.otherwise = otherwise  # an intent no skill claims
        self.intents: dict[str, IntentHandler] = _merged(skills, "intents")
        self.payloads: dict[str, ButtonHandler] = _merged(skills, "payloads")
        self.commands: dict[str, CommandHandler] = _merged(skills, "commands")
        self.answers: dict[tuple[str, str | None], AnswerReader] = _merged(skills, "answers")
        # Longest prefix first: "cart:add:" before a shorter one it starts with.
        self._prefixes = sorted((p for p in self.payloads if p.endswith(":")), key=len, reverse=True)
        heads = sorted({p.split(":", 1)[0] for p in self.payloads}, key=len, reverse=True)
        # A message that is a button's payload typed as text (a channel that sends payloads back as text).
        self.payload_text = re.compile(rf"^({'|'.join(map(re.escape, heads))}):[^\s]*$")

    def for_intent(self, intent: str) -> IntentHandler:
        return self.intents.get(intent, self.otherwise)

    def for_payload(self, payload: str) -> tuple[ButtonHandler, Press] | None:
        """The handler of a button and what it pressed; None for a payload no skill knows."""
        payload, _, tracked = payload.partition(TRACKED)
        try:
            impression_id = int(tracked) if tracked else None
        except ValueError:
            return None
        if payload in self.payloads:
            return self.payloads[payload], Press("", impression_id)
        for prefix in self._prefixes:
            if payload.startswith(prefix):
                return self.payloads[prefix], Press(payload.removeprefix(prefix), impression_id)
        return None

    def for_command(self, name: str) -> CommandHandler | None:
        return self.commands.get(name)

    def for_answer(self, intent: str, slot: str) -> AnswerReader | None:
        """The reader of answers to this question (the slot's own, else the intent's for any slot)."""
        return self.answers.get((intent, slot)) or self.answers.get((intent, None))


def _merged(skills: tuple[Skill, ...], table: str) -> dict[Any, Any]:
    merged: dict[Any, Any] = {}
    owner: dict[Any, str] = {}
    for skill in skills:
        for key, handler in getattr(skill, table).items():
            if key in merged:
                raise ValueError(f"{skill.name} and {owner[key]} both claim {table[:-1]} {key!r}")
            merged[key], owner[key] = handler, skill.name
    return merged


REGISTRY = Registry(SKILLS, otherwise=faq.otherwise)
