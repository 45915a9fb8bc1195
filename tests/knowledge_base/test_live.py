"""Two index instances over one database stand for two processes (API and bot)."""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event, update

import knowledge_base as kb
from kit.db import Database
from knowledge_base.index import DIM, IvfBuild
from knowledge_base.live import LiveFaqIndex
from knowledge_base.models import FaqEntry
from knowledge_base.schemas import FaqEntryIn
from nlu.embedder import FloatMatrix
from tests.knowledge_base.conftest import RememberingEmbedder

pytestmark = pytest.mark.slow  # loads the real encoders (MiniLM + USE)

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


async def test_an_answer_reads_the_change_log_only_when_the_index_may_be_behind(
        db: Database, embedder: RememberingEmbedder) -> None:
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "kb_changes" in statement:
            reads.append(statement)

    bot = LiveFaqIndex(db, embedder=embedder, poll_interval=60)  # no poll in this test's time
    await bot.start()
    event.listen(db.engine.sync_engine, "before_cursor_execute", count)

    async def ask() -> list[int]:
        async with db.sessions() as session:
            result = await bot.search(QUESTION, language="en", session=session,
                                      embedding=embedder.encode([QUESTION])[0])
        return [m.entry_id for m in result.matches]

    try:
        assert await ask() == []
        assert len(reads) == 1  # never synced since the load: catch up
        assert await ask() == []
        assert len(reads) == 1  # just synced: no read
        async with db.unit_of_work() as session:  # a change committed in this process
            entry = await kb.create_entry(session, embedder=embedder, author="ana", data=FaqEntryIn(
                language="en", questions=[QUESTION], status="published", answer="Yes, Alipay works."))
        reads.clear()
        assert await ask() == [entry.id]  # answered at once
        assert len(reads) == 1
        bot.poll_interval = 0.0  # as if the last sync were older than the poll interval
        await ask()
        assert len(reads) == 2
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        await bot.stop()


class CountingEmbedder(RememberingEmbedder):
    """Counts the texts each process embeds (the real rows, remembered)."""

    def __init__(self, real: RememberingEmbedder) -> None:
        super().__init__(real.real)
        self.rows = real.rows
        self.texts = 0

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        self.texts += len(texts)
        return super().encode(texts)


async def test_vectors_of_an_older_row_layout_are_embedded_once_then_stored(
        db: Database, embedder: RememberingEmbedder) -> None:
    async with db.unit_of_work() as session:
        entry = await kb.create_entry(session, embedder=embedder, author="ana", data=FaqEntryIn(
            language="en", questions=[QUESTION, "Do you take Alipay?"], status="published",
            answer="Yes, Alipay and WeChat Pay are accepted."))
        entry_id, version, current = entry.id, entry.version, entry.vectors
    assert current is not None
    # An older layout: the phrasings and the question+answer row, no answer-paragraph row.
    old = np.frombuffer(current, dtype=np.float32).reshape(-1, DIM)[[0, 1, 3]].tobytes()
    async with db.unit_of_work() as session:
        await session.execute(update(FaqEntry).where(FaqEntry.id == entry_id).values(vectors=old))

    first = LiveFaqIndex(db, embedder=CountingEmbedder(embedder), poll_interval=60)
    await first.reload()
    assert first.embedder.texts > 0  # type: ignore[attr-defined]  # re-embedded for the new layout ...
    assert first.vectors_saved == 1  # ... and stored
    async with db.sessions() as session:
        stored = await session.get(FaqEntry, entry_id)
        assert stored is not None
        assert stored.version == version  # not a new version: no history entry, no change for the others
        assert stored.vectors == current  # the same rows the service stores
    second = LiveFaqIndex(db, embedder=CountingEmbedder(embedder), poll_interval=60)
    await second.reload()
    assert second.embedder.texts == 0  # type: ignore[attr-defined]  # the next start reads them
    assert second.vectors_saved == 0
    assert entry_id in second.index


async def test_the_serving_index_moves_to_ivf_on_a_thread_and_answers_meanwhile(
        db: Database, embedder: RememberingEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    # The build (on its worker thread) waits until the exact index has answered once: without the gate a
    # nine-row build can finish before the test looks, and "answers meanwhile" would go unchecked.
    released = threading.Event()
    build = IvfBuild.build

    def gated_build(self: IvfBuild) -> Any:
        assert released.wait(timeout=30), "the test never released the IVF build"
        return build(self)

    monkeypatch.setattr(IvfBuild, "build", gated_build)
    questions = ["Can I pay with Alipay?", "Do you ship to Norway?", "How long do refunds take?"]
    bot = LiveFaqIndex(db, embedder=embedder, poll_interval=60, ann_from_rows=9)  # 3 rows an entry
    await bot.start()
    try:
        ids = []
        for question in questions:
            async with db.unit_of_work() as session:
                entry = await kb.create_entry(session, embedder=embedder, author="ana", data=FaqEntryIn(
                    language="en", questions=[question], status="published", answer=f"About: {question}"))
                ids.append(entry.id)
        await bot.sync()  # the third entry reaches 9 rows: the move starts on a worker thread
        move = bot._ivf_task
        assert move is not None
        assert not bot.index.vectors.approximate
        answered = 0
        while not move.done():
            result = await bot.search(questions[0], language="en", embedding=embedder.encode(questions[0:1])[0])
            assert result.matches[0].entry_id == ids[0]
            answered += 1
            released.set()
            await asyncio.sleep(0.01)
        await move
        assert answered >= 1
        assert bot.index.vectors.approximate
        for question, entry_id in zip(questions, ids, strict=True):
            result = await bot.search(question, language="en", embedding=embedder.encode([question])[0])
            assert result.matches[0].entry_id == entry_id
    finally:
        await bot.stop()
