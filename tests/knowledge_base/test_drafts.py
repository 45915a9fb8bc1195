"""FAQ drafts and review: the live entry keeps answering until a draft is published; two tabs saving one entry
conflict and the second is told who saved; versions diff; missing translations are listed."""
from __future__ import annotations

import pytest

import knowledge_base as kb
from kit.db import Database
from knowledge_base.errors import DuplicateFaqQuestion, FaqVersionConflict
from knowledge_base.schemas import FaqEntryIn
from tests.knowledge_base.conftest import RememberingEmbedder


async def _published(db: Database, embedder: RememberingEmbedder, *, question: str = "How long is delivery?",
                     answer: str = "2-4 business days.") -> int:
    async with db.unit_of_work() as session:
        entry = await kb.create_entry(session, data=FaqEntryIn(language="en", questions=[question], answer=answer,
                                                               status="published"),
                                      author="ana", embedder=embedder)
        return entry.id


async def test_a_draft_leaves_the_live_answer_alone_until_published(db: Database,
                                                                    embedder: RememberingEmbedder) -> None:
    entry_id = await _published(db, embedder)
    async with db.unit_of_work() as session:
        draft = await kb.save_draft(session, entry_id=entry_id,
                                    questions=["How long is delivery?", "When will it arrive?"],
                                    answer="3-5 business days.", author="ben", expected_revision=0, seen_version=1)
        assert draft.revision == 1
    async with db.sessions() as session:
        state = await kb.draft_state(session, entry_id=entry_id)
        assert state.entry.answer == "2-4 business days."  # what shoppers get
        assert state.entry.status == "published"
        assert state.answer == "3-5 business days."
        assert state.revision == 1
    async with db.unit_of_work() as session:
        waiting = await kb.request_review(session, entry_id=entry_id, author="ben", expected_revision=1)
        assert waiting.review_requested_by == "ben"
        assert [d.entry_id for d in await kb.awaiting_review(session)] == [entry_id]
    async with db.unit_of_work() as session:
        live = await kb.publish_draft(session, entry_id=entry_id, author="olga", expected_revision=2,
                                      embedder=embedder)
        assert (live.version, live.answer, live.status) == (2, "3-5 business days.", "published")
        assert live.questions == ["How long is delivery?", "When will it arrive?"]
    async with db.sessions() as session:
        state = await kb.draft_state(session, entry_id=entry_id)
        assert state.draft is None
        history = await kb.entry_history(session, entry_id=entry_id)
        assert [(v.version, v.action, v.author) for v in history] == [(2, "published", "olga"), (1, "created", "ana")]
        diff = await kb.version_diff(session, entry_id=entry_id, version=2)
    assert ("+", "When will it arrive?") in diff
    assert ("-", "2-4 business days.") in diff
    assert ("+", "3-5 business days.") in diff


async def test_two_tabs_saving_one_entry_the_second_is_told_and_nothing_is_lost(
        db: Database, embedder: RememberingEmbedder) -> None:
    entry_id = await _published(db, embedder)
    async with db.unit_of_work() as session:
        await kb.save_draft(session, entry_id=entry_id, questions=["How long is delivery?"], answer="Tab one.",
                            author="ana", expected_revision=0, seen_version=1)
    with pytest.raises(FaqVersionConflict) as refused:
        async with db.unit_of_work() as session:
            # The second tab also opened the entry with no draft (revision 0).
            await kb.save_draft(session, entry_id=entry_id, questions=["How long is delivery?"], answer="Tab two.",
                                author="ben", expected_revision=0, seen_version=1)
    assert "ana saved this draft" in refused.value.detail
    assert refused.value.extra["current_revision"] == 1
    async with db.sessions() as session:
        assert (await kb.draft_state(session, entry_id=entry_id)).answer == "Tab one."
    # The second tab reloads (revision 1) and saves again: accepted.
    async with db.unit_of_work() as session:
        again = await kb.save_draft(session, entry_id=entry_id, questions=["How long is delivery?"],
                                    answer="Tab two.", author="ben", expected_revision=1, seen_version=1)
        assert again.revision == 2
    # A publish from a page that saw revision 1 is refused too.
    with pytest.raises(FaqVersionConflict):
        async with db.unit_of_work() as session:
            await kb.publish_draft(session, entry_id=entry_id, author="olga", expected_revision=1, embedder=embedder)


async def test_a_draft_cannot_take_another_entrys_question(db: Database, embedder: RememberingEmbedder) -> None:
    first = await _published(db, embedder)
    second = await _published(db, embedder, question="Do you ship to Japan?", answer="Yes.")
    with pytest.raises(DuplicateFaqQuestion) as refused:
        async with db.unit_of_work() as session:
            await kb.save_draft(session, entry_id=second, questions=["how long is delivery"], answer="Yes.",
                                author="ben", expected_revision=0, seen_version=1)
    assert refused.value.extra["entry_id"] == first
    assert refused.value.extra["field"] == "questions"


async def test_groups_without_a_chinese_entry_are_listed_as_missing(db: Database,
                                                                    embedder: RememberingEmbedder) -> None:
    entry_id = await _published(db, embedder)
    async with db.sessions() as session:
        entry = await kb.get_entry(session, entry_id=entry_id)
        assert await kb.missing_translations(session) == {entry.group_key: ["zh"]}
