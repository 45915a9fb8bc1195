"""FAQ answers from the knowledge base: answer, "did you mean" buttons, or none."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from babel import Locale, UnknownLocaleError
from sqlalchemy.ext.asyncio import AsyncSession

import knowledge_base
from bot.deps import FaqMatch, FaqResult, FaqSource
from bot.skills.base import Press, Skill, Turn
from bot.understanding import usable_embedding
from kit.db import Database
from knowledge_base import LiveFaqIndex

SUGGESTIONS = 3


@dataclass
class KnowledgeBaseFaq:
    """The merchant's FAQ (knowledge_base's live index) as the bot's FaqSource."""

    index: LiveFaqIndex

    async def answer(self, session: AsyncSession, *, text: str, embedding: npt.NDArray[np.float32] | None,
                     language: str, country: str | None, channel: str | None) -> FaqResult:
        retrieval = await knowledge_base.answer(self.index, question=text, language=language, country=country,
                                                channel=channel, embedding=embedding, session=session,
                                                k=SUGGESTIONS)
        return FaqResult(decision=retrieval.decision,
                         matches=[FaqMatch(question=m.question, answer=m.answer, score=m.score, entry_id=m.entry_id,
                                           language=m.language)
                                  for m in retrieval.matches])


async def knowledge_base_source(database: Database) -> FaqSource:
    """The process's live FAQ index (loaded once, then following the merchant's edits)."""
    return KnowledgeBaseFaq(await knowledge_base.open_index(database))


async def lookup(turn: Turn, *, question: str | None = None) -> FaqResult | None:
    """The FAQ's answer to the message, or to `question` (an earlier message, asked again once the bot knows the
    shopper's country: embedded afresh)."""
    source = turn.deps.knowledge
    text = turn.text if question is None else question
    if source is None or not text.strip():
        return None
    return await source.answer(turn.session, text=text,
                               embedding=usable_embedding(turn.parsed) if question is None else None,
                               language=turn.locale, country=turn.conversation.country, channel=turn.inbound.channel)


def answer_text(turn: Turn, match: FaqMatch) -> str:
    """The answer, with a note first when it is in another language than the shopper's (no translation yet)."""
    if match.language is None or match.language == turn.locale:
        return match.answer
    try:
        name = Locale.parse(turn.locale).languages.get(match.language, match.language)
    except (ValueError, UnknownLocaleError):
        name = match.language
    return f"{turn.t('faq_other_language', language=name)}\n\n{match.answer}"


async def answer(turn: Turn, *, result: FaqResult | None = None, question: str | None = None) -> bool:
    """Reply from the knowledge base (to the message, or to `question`); False when it has nothing (the caller
    decides what to say then)."""
    result = result or await lookup(turn, question=question)
    if result is None or result.decision == "none" or not result.matches:
        return False
    if result.decision == "answer":
        turn.say_text(answer_text(turn, result.matches[0]), custom={"faq_entry_id": result.matches[0].entry_id})
        return True
    buttons = [turn.button_text(m.question, f"faq:entry:{m.entry_id}" if m.entry_id is not None else m.question)
               for m in result.matches[:SUGGESTIONS]]
    turn.conversation.pending = {"intent": "faq", "slot": "suggestion",
                                 "data": {"answers": {str(m.entry_id): answer_text(turn, m)
                                                         for m in result.matches[:SUGGESTIONS]}}}
    turn.say("faq_did_you_mean", buttons=buttons)
    return True


def show_suggested(turn: Turn, entry_id: str) -> bool:
    """The shopper picked one of the "did you mean" questions."""
    pending = turn.conversation.pending or {}
    answers = (pending.get("data") or {}).get("answers") or {}
    text = answers.get(entry_id)
    if not text:
        return False
    turn.conversation.pending = None
    turn.say_text(str(text), custom={"faq_entry_id": entry_id})
    return True


def say_none(turn: Turn) -> None:
    """The knowledge base has no answer: say so, with a person to ask."""
    turn.say("faq_none", buttons=[turn.button("button.human", "handoff:request")])


skill = Skill("faq")


@skill.intent("faq")
async def otherwise(turn: Turn, intent: str) -> None:
    """Any intent no skill claims: the knowledge base, else "I don't know" with a person to ask."""
    if not await answer(turn):
        say_none(turn)


@skill.intent("out_of_scope")
async def out_of_scope(turn: Turn, intent: str) -> None:
    if not await answer(turn):
        turn.say("out_of_scope", buttons=turn.menu())


@skill.payload("faq:entry:")
async def suggestion_button(turn: Turn, press: Press) -> None:
    if not show_suggested(turn, press.arg):
        turn.say("unknown_button", buttons=turn.menu())
