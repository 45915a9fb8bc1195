"""Process-wide things the engine needs: settings, the NLU, the FAQ knowledge base, limits."""
from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from bot.conversations import service as conversations
from bot.policy import PolicyThresholds
from bot.understanding import MessageParser
from commerce.catalog import service as catalog
from commerce.search import service as search
from commerce.search.index import Encoder
from commerce.search.service import warm_product_vectors
from kit.clock import utcnow
from kit.db import Database
from kit.settings import Settings

if TYPE_CHECKING:
    from bot.catalog_words import CatalogWords

log = logging.getLogger(__name__)

FaqDecision = Literal["answer", "suggest", "none"]


@dataclass(frozen=True)
class FaqMatch:
    question: str
    answer: str
    score: float
    entry_id: int | None = None
    language: str | None = None  # the answer's language (another one when the asked language has no translation)


@dataclass(frozen=True)
class FaqResult:
    decision: FaqDecision
    matches: list[FaqMatch] = field(default_factory=list)


class FaqSource(Protocol):
    """The knowledge base as the bot sees it: the best answers for a question, with a decision."""

    async def answer(self, session: AsyncSession, *, text: str, embedding: npt.NDArray[np.float32] | None,
                     language: str, country: str | None, channel: str | None) -> FaqResult: ...


@dataclass(frozen=True)
class ProofWaits:
    """Seconds before another ownership proof is heard: this conversation's own, and the order's."""

    by_conversation: int
    for_order: int


def _backoff(failures: int, free: int, base_seconds: int, cap_seconds: int) -> int:
    return 0 if failures < free else min(cap_seconds, base_seconds * 2 ** min(failures - free, 20))


@dataclass(frozen=True)
class VerificationLimiter:
    """Exponential back-off after wrong order-ownership proofs (counted in the database), never a lock.

    Per conversation (the client): after 3 failures in the window each attempt waits 30 s x 2^(failures-3), at
    most 15 minutes. Per order named (the target, across conversations, so new chat sessions do not buy new
    guesses): after 10 failures a wait that doubles up to 60 s, which never holds back a correct e-mail."""

    free_failures: int = 3
    base_wait_seconds: int = 30
    max_wait_seconds: int = 15 * 60
    free_failures_per_order: int = 10
    order_base_wait_seconds: int = 15
    max_order_wait_seconds: int = 60
    window_seconds: int = 60 * 60

    async def waits(self, session: AsyncSession, *, conversation_id: int,
                    order_number: str | None = None) -> ProofWaits:
        failed = await conversations.failed_verifications(
            session, conversation_id=conversation_id, order_number=order_number, window_seconds=self.window_seconds)
        now = utcnow()

        def left(last: datetime | None, wait: int) -> int:
            return 0 if last is None or wait == 0 else max(0, math.ceil((last - now).total_seconds()) + wait)

        return ProofWaits(
            by_conversation=left(failed.last_by_conversation, _backoff(
                failed.by_conversation, self.free_failures, self.base_wait_seconds, self.max_wait_seconds)),
            for_order=left(failed.last_for_order, _backoff(
                failed.for_order, self.free_failures_per_order, self.order_base_wait_seconds,
                self.max_order_wait_seconds)))

    async def record(self, session: AsyncSession, *, conversation_id: int, succeeded: bool,
                     order_number: str | None = None) -> None:
        await conversations.record_verification(session, conversation_id=conversation_id, succeeded=succeeded,
                                                order_number=order_number)


@dataclass
class BotDeps:
    settings: Settings
    nlu: MessageParser
    knowledge: FaqSource | None = None
    rate_limiter: VerificationLimiter = field(default_factory=VerificationLimiter)
    policy: PolicyThresholds = field(default_factory=PolicyThresholds)
    # Embeds product texts for semantic search (same space as the NLU's message embedding).
    encoder: Encoder | None = None
    page_size: int = 5
    # Keeps the NLU's catalog words in step with the catalog (None: taught once, by the caller).
    catalog_words: CatalogWords | None = None


def _encoder_of(nlu: Any) -> Encoder | None:
    embedder = getattr(nlu, "embedder", None)
    encode = getattr(embedder, "encode", None)
    if encode is None:
        return None

    def encoder(texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.asarray(encode(list(texts)), dtype=np.float32)
    return encoder


async def build_bot_deps(settings: Settings, database: Database) -> BotDeps:
    """Load the NLU model (training it from the shipped data the first time) and the FAQ index, once."""
    from bot.catalog_words import CatalogWords
    from nlu.service import get_nlu_service

    nlu = get_nlu_service()
    await asyncio.to_thread(nlu.ensure_model)
    encoder = _encoder_of(nlu)
    catalog_words = CatalogWords(database)
    await catalog_words.refresh(nlu)
    if encoder is not None:
        async with database.unit_of_work() as session:
            await warm_product_vectors(session, encoder=encoder)
    knowledge = await _knowledge_source(database)
    return BotDeps(settings=settings, nlu=nlu, knowledge=knowledge, encoder=encoder, catalog_words=catalog_words)


_CJK = re.compile(r"[\u3400-\u9fff]")


async def teach_catalog_words(nlu: Any, session: AsyncSession) -> None:
    """Let the entity extractor recognise this shop's category names, product tags and synonyms, and the NLU read a
    message made of the catalog's words (titles, brands, tags, categories, the merchant's synonym groups) as a
    product search."""
    # The merchant's synonym groups name products too ("充电宝" for a power bank titled 移动电源).
    synonyms = [term for group in await search.list_synonyms(session) for term in group.terms]
    set_lookup = getattr(nlu, "set_lookup", None)
    if set_lookup is not None:
        categories = await catalog.categories(session)
        set_lookup("category", {name: c.slug for c in categories for name in [c.slug, *c.name.values()] if name})
        products = await catalog.all_products(session)
        names = [*(tag for p in products for tag in p.tags), *synonyms]
        # Two Chinese characters name a thing (丝巾); two Latin letters rarely do.
        set_lookup("product", {name: name for name in names
                               if 2 < len(name) <= 40 or (len(name) == 2 and _CJK.search(name))})
    set_vocabulary = getattr(nlu, "set_catalog_vocabulary", None)
    if set_vocabulary is not None:  # the catalog's words are evidence of a product search (nlu.catalog_terms)
        await asyncio.to_thread(set_vocabulary, await catalog.catalog_vocabulary(session), names=synonyms)


async def _knowledge_source(database: Database) -> FaqSource:
    from bot.skills.faq import knowledge_base_source

    return await knowledge_base_source(database)
