"""What the merchant's insights and dashboard read about conversations: how many shoppers wrote, how many were
handed to a person and resolved, and the questions the bot could not answer (the FAQ's gaps: the shopper asked
something FAQ-like and no entry answered or was suggested; not understood: the NLU found no intent, or the message
was out of scope, and no FAQ entry answered either)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.conversations.models import ConversationMessage
from bot.handoff.models import DEFAULT_SHOP_ID, HandoffThread
from bot.understanding import FALLBACK_INTENT, OUT_OF_SCOPE_INTENT
from kit.clock import as_utc

FAQ_INTENT = "faq"
SCAN_LIMIT = 5000  # newest inbound messages looked at for unanswered questions


@dataclass(frozen=True)
class ConversationFigures:
    conversations: int  # conversations in which a shopper wrote
    messages: int  # shopper messages
    handoffs: int  # conversations handed to a person
    resolved: int  # hand-offs a person resolved
    bot_only: int  # conversations the bot handled without a person

    @property
    def handoff_rate(self) -> float:
        return self.handoffs / self.conversations if self.conversations else 0.0


@dataclass(frozen=True)
class AskedQuestion:
    text: str
    times: int
    last_at: datetime
    intent: str


@dataclass(frozen=True)
class QuestionGaps:
    faq_gaps: list[AskedQuestion]
    not_understood: list[AskedQuestion]
    scanned: int


async def conversation_figures(session: AsyncSession, *, since: datetime,
                               shop_id: int = DEFAULT_SHOP_ID) -> ConversationFigures:
    inbound = (ConversationMessage.direction == "in", ConversationMessage.author == "shopper",
               ConversationMessage.created_at >= since)
    conversations = int(await session.scalar(
        select(func.count(func.distinct(ConversationMessage.conversation_id))).where(*inbound)) or 0)
    messages = int(await session.scalar(select(func.count()).select_from(ConversationMessage).where(*inbound)) or 0)
    handoffs = int(await session.scalar(select(func.count()).select_from(HandoffThread).where(
        HandoffThread.shop_id == shop_id, HandoffThread.opened_at >= since)) or 0)
    resolved = int(await session.scalar(select(func.count()).select_from(HandoffThread).where(
        HandoffThread.shop_id == shop_id, HandoffThread.resolved_at >= since)) or 0)
    return ConversationFigures(conversations=conversations, messages=messages, handoffs=handoffs, resolved=resolved,
                               bot_only=max(0, conversations - handoffs))


def _intent(nlu: dict[str, Any] | None) -> str:
    intent = (nlu or {}).get("intent")
    return str(intent.get("name") or "") if isinstance(intent, dict) else ""


def _answered_from_faq(content: dict[str, Any] | None) -> bool:
    """A reply that carried an FAQ answer or "did you mean" suggestions of FAQ entries."""
    if not content:
        return False
    custom = content.get("custom") or {}
    if isinstance(custom, dict) and custom.get("faq_entry_id") is not None:
        return True
    return any(str((b or {}).get("payload") or "").startswith("faq:entry:") for b in content.get("buttons") or [])


def _group(rows: list[tuple[str, datetime, str]], limit: int) -> list[AskedQuestion]:
    grouped: dict[str, list[Any]] = {}
    for text, at, intent in rows:
        key = " ".join(text.lower().split())[:300]
        if not key:
            continue
        entry = grouped.setdefault(key, [text.strip()[:300], 0, at, intent])
        entry[1] += 1
        if as_utc(at) > as_utc(entry[2]):
            entry[2] = at
    asked = [AskedQuestion(text=t, times=n, last_at=as_utc(at), intent=i) for t, n, at, i in grouped.values()]
    return sorted(asked, key=lambda q: (-q.times, -q.last_at.timestamp()))[:limit]


async def question_gaps(session: AsyncSession, *, since: datetime, limit: int = 20) -> QuestionGaps:
    """The questions the FAQ did not answer and those the bot did not understand, most asked first."""
    inbound = (await session.execute(
        select(ConversationMessage.id, ConversationMessage.text, ConversationMessage.created_at,
               ConversationMessage.nlu)
        .where(ConversationMessage.direction == "in", ConversationMessage.author == "shopper",
               ConversationMessage.created_at >= since, ConversationMessage.text.is_not(None))
        .order_by(ConversationMessage.id.desc()).limit(SCAN_LIMIT))).all()
    asked = {row.id: (row.text or "", row.created_at, _intent(row.nlu)) for row in inbound
             if _intent(row.nlu) in (FAQ_INTENT, FALLBACK_INTENT, OUT_OF_SCOPE_INTENT)}
    answered: set[int] = set()
    ids = list(asked)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for reply_to, content in (await session.execute(
                select(ConversationMessage.in_reply_to, ConversationMessage.content)
                .where(ConversationMessage.in_reply_to.in_(chunk)))).all():
            if reply_to is not None and _answered_from_faq(content):
                answered.add(reply_to)
    gaps = [v for k, v in asked.items() if k not in answered and v[2] == FAQ_INTENT]
    lost = [v for k, v in asked.items() if k not in answered and v[2] != FAQ_INTENT]
    return QuestionGaps(faq_gaps=_group(gaps, limit), not_understood=_group(lost, limit), scanned=len(inbound))
