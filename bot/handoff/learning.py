"""What agents teach the bot: intent corrections (rewritten as Rasa YAML for the next `shoptalk nlu train`) and
answers saved as draft FAQ entries for the merchant to publish."""
from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.conversations.models import ConversationMessage
from bot.handoff.errors import BadAgentInput
from bot.handoff.inbox import thread_of_shop
from bot.handoff.models import Agent, FaqDraftFromAgent, IntentCorrection
from bot.handoff.replies import MAX_REPLY_CHARS, clean_text
from bot.handoff.rules import INTENT_NAME
from kit.clock import utcnow


@dataclass
class LearningCounts:
    corrections: int
    corrections_by_intent: dict[str, int] = field(default_factory=dict)
    faq_drafts: int = 0
    faq_drafts_published: int = 0


class LearningRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def message(self, message_id: int) -> ConversationMessage | None:
        return await self.session.get(ConversationMessage, message_id)

    async def correction_for(self, message_id: int) -> IntentCorrection | None:
        return await self.session.scalar(select(IntentCorrection).where(IntentCorrection.message_id == message_id))

    async def corrections(self, shop_id: int | None = None) -> Sequence[IntentCorrection]:
        query = select(IntentCorrection).order_by(IntentCorrection.intent, IntentCorrection.id)
        if shop_id is not None:
            query = query.where(IntentCorrection.shop_id == shop_id)
        return (await self.session.scalars(query)).all()

    async def faq_drafts(self, shop_id: int) -> Sequence[FaqDraftFromAgent]:
        return (await self.session.scalars(select(FaqDraftFromAgent).where(FaqDraftFromAgent.shop_id == shop_id)
                                           .order_by(FaqDraftFromAgent.id.desc()))).all()


async def correct_intent(session: AsyncSession, *, agent: Agent, message_id: int, intent: str) -> IntentCorrection:
    """Record the right intent of a shopper message; it becomes a training example (see corrections_yaml)."""
    if not INTENT_NAME.match(intent):
        raise BadAgentInput("An intent name is lowercase letters, digits and '_'.", code="invalid_intent")
    repo = LearningRepository(session)
    message = await repo.message(message_id)
    if message is None or message.direction != "in" or not (message.text or "").strip():
        raise BadAgentInput("Only a shopper's text message can be corrected.", code="not_a_shopper_message",
                            status=404 if message is None else 422)
    await thread_of_shop(session, agent, message.conversation_id)
    nlu = message.nlu or {}
    predicted = nlu.get("intent", {}).get("name") if isinstance(nlu.get("intent"), dict) else None
    correction = await repo.correction_for(message_id)
    if correction is None:
        correction = IntentCorrection(shop_id=agent.shop_id, message_id=message_id, agent_id=agent.id,
                                      text=(message.text or "").strip(), predicted_intent=predicted, intent=intent,
                                      created_at=utcnow())
        session.add(correction)
    else:
        correction.intent = intent
        correction.agent_id = agent.id
    await session.flush()
    return correction


def _example_line(text: str) -> str:
    # One line per example; square brackets would read as Rasa entity annotations.
    return " ".join(text.replace("[", "(").replace("]", ")").split())


async def corrections_yaml(session: AsyncSession) -> str:
    """Every correction as Rasa NLU YAML (version 3.1), grouped by intent."""
    by_intent: dict[str, list[str]] = {}
    for correction in await LearningRepository(session).corrections():
        line = _example_line(correction.text)
        if line and line not in by_intent.setdefault(correction.intent, []):
            by_intent[correction.intent].append(line)
    lines = ['version: "3.1"', "# Intent corrections made by agents in the console (regenerated on each one).",
             "nlu:"]
    for intent, examples in sorted(by_intent.items()):
        lines.append(f"- intent: {intent}")
        lines.append("  examples: |")
        lines.extend(f"    - {example}" for example in examples)
    if not by_intent:
        lines[-1] = "nlu: []"
    return "\n".join(lines) + "\n"


async def write_corrections(session: AsyncSession, *, path: Path) -> Path:
    """Write the corrections file atomically (picked up by the next `shoptalk nlu train`)."""
    content = await corrections_yaml(session)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
    temporary.write_text(content, encoding="utf-8")
    temporary.replace(path)
    return path


async def save_faq_draft(session: AsyncSession, *, agent: Agent, question: str, answer: str,
                         language: str) -> FaqDraftFromAgent:
    """Save an agent's answer as a draft FAQ entry; the merchant publishes it in the FAQ editor."""
    from knowledge_base import create_entry
    from knowledge_base.schemas import FaqEntryIn

    q = clean_text(question, limit=500, what="question")
    a = clean_text(answer, limit=MAX_REPLY_CHARS, what="answer")
    entry = await create_entry(session, data=FaqEntryIn(language=language, questions=[q], answer=a,
                                                        tags=["from-agent"], status="draft"),
                               author=f"agent:{agent.id}")
    draft = FaqDraftFromAgent(shop_id=agent.shop_id, agent_id=agent.id, faq_entry_id=entry.id, question=q,
                              created_at=utcnow())
    session.add(draft)
    await session.flush()
    return draft


async def learning_counts(session: AsyncSession, *, shop_id: int) -> LearningCounts:
    from kit.errors import NotFound
    from knowledge_base import get_entry

    repo = LearningRepository(session)
    by_intent: dict[str, int] = {}
    for correction in await repo.corrections(shop_id):
        by_intent[correction.intent] = by_intent.get(correction.intent, 0) + 1
    drafts = await repo.faq_drafts(shop_id)
    published = 0
    for draft in drafts:
        try:
            entry = await get_entry(session, entry_id=draft.faq_entry_id)
        except NotFound:
            continue
        published += entry.status == "published"
    return LearningCounts(corrections=sum(by_intent.values()), corrections_by_intent=by_intent,
                          faq_drafts=len(drafts), faq_drafts_published=published)
