from __future__ import annotations

import pytest

import knowledge_base as kb
from kit.db import Database
from knowledge_base.errors import (
    DuplicateFaqQuestion,
    FaqEntryNotFound,
    FaqImportRejected,
    FaqVersionConflict,
    InvalidFaqEntry,
)
from knowledge_base.schemas import FaqEntryIn, FaqEntryPatch, TranslationIn
from tests.knowledge_base.conftest import RememberingEmbedder


def _entry(**overrides: object) -> FaqEntryIn:
    data: dict[str, object] = {"language": "en", "questions": ["How long is delivery to Germany?"],
                               "answer": "2-4 business days from Rotterdam.", "tags": ["Shipping"]}
    data.update(overrides)
    return FaqEntryIn.model_validate(data)


async def test_every_change_is_a_version_and_an_old_one_can_be_restored(db: Database) -> None:
    async with db.unit_of_work() as session:
        entry = await kb.create_entry(session, data=_entry(), author="ana")
        entry_id = entry.id
    async with db.unit_of_work() as session:
        await kb.update_entry(session, entry_id=entry_id, author="ben",
                              patch=FaqEntryPatch(answer="3-5 business days.", expected_version=1))
    async with db.unit_of_work() as session:
        restored = await kb.restore_version(session, entry_id=entry_id, version=1, author="ana")
        assert restored.answer == "2-4 business days from Rotterdam."
        assert restored.version == 3
        assert restored.tags == ["shipping"]
    async with db.unit_of_work() as session:
        history = await kb.entry_history(session, entry_id=entry_id)
    assert [(v.version, v.action, v.author) for v in history] == [
        (3, "restored", "ana"), (2, "edited", "ben"), (1, "created", "ana")]
    assert history[1].answer == "3-5 business days."


async def test_a_stale_edit_is_refused(db: Database) -> None:
    async with db.unit_of_work() as session:
        entry_id = (await kb.create_entry(session, data=_entry(), author="ana")).id
    async with db.unit_of_work() as session:
        await kb.update_entry(session, entry_id=entry_id, author="ana", patch=FaqEntryPatch(answer="New."))
    with pytest.raises(FaqVersionConflict):
        async with db.unit_of_work() as session:
            await kb.update_entry(session, entry_id=entry_id, author="ben",
                                  patch=FaqEntryPatch(answer="Mine.", expected_version=1))
    async with db.unit_of_work() as session:
        assert (await kb.get_entry(session, entry_id=entry_id)).answer == "New."


async def test_soft_delete_hides_the_entry_keeps_history_and_frees_the_question(db: Database) -> None:
    async with db.unit_of_work() as session:
        entry_id = (await kb.create_entry(session, data=_entry(), author="ana")).id
    async with db.unit_of_work() as session:
        await kb.delete_entry(session, entry_id=entry_id, author="ana")
    async with db.unit_of_work() as session:
        with pytest.raises(FaqEntryNotFound):
            await kb.get_entry(session, entry_id=entry_id)
        total, _ = await kb.list_entries(session)
        assert total == 0
        history = await kb.entry_history(session, entry_id=entry_id)
        assert history[0].action == "deleted"
        again = await kb.create_entry(session, data=_entry(), author="ana")
        assert again.id != entry_id


async def test_duplicate_questions_are_refused_per_language(db: Database) -> None:
    async with db.unit_of_work() as session:
        await kb.create_entry(session, data=_entry(), author="ana")
    with pytest.raises(DuplicateFaqQuestion):
        async with db.unit_of_work() as session:
            await kb.create_entry(session, data=_entry(questions=["how long is delivery to germany"]), author="ben")
    async with db.unit_of_work() as session:
        total, _ = await kb.list_entries(session)
        assert total == 1


@pytest.mark.slow  # loads the real encoders (MiniLM + USE)
async def test_translations_are_linked_and_one_per_language(db: Database, embedder: RememberingEmbedder) -> None:
    async with db.unit_of_work() as session:
        source = await kb.create_entry(session, data=_entry(countries=["de"], group_key="ship-de"), author="ana")
        translation = await kb.translate_entry(
            session, entry_id=source.id, author="li", embedder=embedder,
            data=TranslationIn(language="zh", questions=["寄到德国要多久？"], answer="从鹿特丹发货，2-4 个工作日。",
                               status="published"))
        assert translation.group_key == "ship-de"
        assert translation.countries == ["DE"]
        assert translation.vectors is not None
        groups = await kb.translations_of(session, entries=[source])
        assert sorted(e.language for e in groups["ship-de"]) == ["en", "zh"]
    with pytest.raises(DuplicateFaqQuestion) as caught:
        async with db.unit_of_work() as session:
            await kb.translate_entry(session, entry_id=source.id, author="li",
                                     data=TranslationIn(language="zh", questions=["另一个"], answer="答案"))
    assert caught.value.code == "duplicate_translation"


async def test_unsafe_answers_never_reach_the_database(db: Database) -> None:
    with pytest.raises(InvalidFaqEntry) as caught:
        async with db.unit_of_work() as session:
            await kb.create_entry(session, data=_entry(answer="<script>alert('x')</script>"), author="ana")
    assert caught.value.code == "answer_contains_html"
    async with db.unit_of_work() as session:
        assert (await kb.list_entries(session))[0] == 0


async def test_an_import_with_a_bad_row_imports_nothing(db: Database) -> None:
    good = {"key": "k1", "language": "en", "questions": ["Do you ship to Japan?"], "answer": "Yes."}
    rows = [
        {"_row": 1, **good},
        {"_row": 2, "key": "k2", "language": "en", "questions": ["Returns?"], "answer": ""},
        {"_row": 3, "key": "k3", "language": "en", "questions": ["Do you ship to Japan"], "answer": "Dup."},
        {"_row": 4, "key": "k4", "language": "en", "questions": ["Hi?"], "answer": "<script>x</script>"},
        {"_row": 5, "key": "k5", "language": "xx", "questions": ["Q"], "answer": "A"},
    ]
    with pytest.raises(FaqImportRejected) as caught:
        async with db.unit_of_work() as session:
            await kb.import_entries(session, records=rows, author="ana")
    assert [(e["row"], e["code"]) for e in caught.value.extra["errors"]] == [
        (2, "empty_answer"), (3, "duplicate_question"), (4, "answer_contains_html"), (5, "unsupported_language")]
    async with db.unit_of_work() as session:
        assert (await kb.list_entries(session))[0] == 0
        report = await kb.import_entries(session, records=[{"_row": 1, **good}], author="ana")
        assert (report.created, report.updated) == (1, 0)
    async with db.unit_of_work() as session:
        again = await kb.import_entries(session, records=[{"_row": 1, **good, "answer": "Yes, 3-7 days."}],
                                        author="ana")
        assert (again.created, again.updated) == (0, 1)
        exported = await kb.export_entries(session)
    assert exported == [{"key": "k1", "language": "en", "status": "draft", "questions": ["Do you ship to Japan?"],
                         "answer": "Yes, 3-7 days.", "tags": [], "countries": [], "channels": []}]
