"""Two index instances over one database stand for two processes (API and bot)."""
from __future__ import annotations

import asyncio
import time

import knowledge_base as kb
from kit.db import Database
from knowledge_base.live import LiveFaqIndex
from knowledge_base.schemas import FaqEntryIn
from tests.knowledge_base.conftest import RememberingEmbedder

QUESTION = "Can I pay with Alipay?"


async def _served(index: LiveFaqIndex, embedder: RememberingEmbedder, entry_id: int) -> bool:
    embedding = embedder.encode([QUESTION])[0]
    result = await index.search(QUESTION, language="en", embedding=embedding)
    return any(m.entry_id == entry_id for m in result.matches)


async def test_a_published_edit_answers_in_another_process_within_a_second_and_a_delete_never(
        db: Database, embedder: RememberingEmbedder) -> None:
    editor = LiveFaqIndex(db, embedder=embedder, poll_interval=0.2)
    bot = LiveFaqIndex(db, embedder=embedder, poll_interval=0.2)
    await editor.start()
    await bot.start()
    try:
        async with db.unit_of_work() as session:
            entry = await kb.create_entry(session, embedder=embedder, author="ana", data=FaqEntryIn(
                language="en", questions=[QUESTION, "Do you take Alipay?"], status="published",
                answer="Yes, Alipay and WeChat Pay are accepted."))
            entry_id = entry.id
        published = time.monotonic()
        while not await _served(bot, embedder, entry_id):
            assert time.monotonic() - published < 1.0, "the other process did not answer within 1 s"
            await asyncio.sleep(0.02)

        async with db.unit_of_work() as session:
            await kb.delete_entry(session, entry_id=entry_id, author="ana")
        # Answering with the unit of work's session checks the database: never served after the commit.
        async with db.unit_of_work() as session:
            result = await bot.search(QUESTION, language="en", session=session,
                                      embedding=embedder.encode([QUESTION])[0])
            assert all(m.entry_id != entry_id for m in result.matches)
        deleted = time.monotonic()
        while await _served(bot, embedder, entry_id):
            assert time.monotonic() - deleted < 1.0
            await asyncio.sleep(0.02)
    finally:
        await editor.stop()
        await bot.stop()


async def test_an_answer_with_a_session_sees_an_edit_immediately(db: Database, embedder: RememberingEmbedder) -> None:
    bot = LiveFaqIndex(db, embedder=embedder, poll_interval=60)
    await bot.start()
    try:
        async with db.unit_of_work() as session:
            entry = await kb.create_entry(session, embedder=embedder, author="ana", data=FaqEntryIn(
                language="en", questions=[QUESTION], status="published", answer="Yes, Alipay works."))
        async with db.unit_of_work() as session:
            result = await kb.answer(bot, question=QUESTION, language="en", session=session,
                                     embedding=embedder.encode([QUESTION])[0])
        assert result.matches[0].entry_id == entry.id
        assert result.matches[0].answer == "Yes, Alipay works."
        assert result.decision == "answer"
        async with db.unit_of_work() as session:
            await kb.set_status(session, entry_id=entry.id, status="draft", author="ana")
        async with db.unit_of_work() as session:
            result = await kb.answer(bot, question=QUESTION, language="en", session=session,
                                     embedding=embedder.encode([QUESTION])[0])
        assert result.matches == []
        assert result.decision == "none"
    finally:
        await bot.stop()
