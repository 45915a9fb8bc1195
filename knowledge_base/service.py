"""FAQ rules: versioned edits, translations, publish, restore, soft delete, import and export."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.clock import utcnow
from kit.ids import new_uuid
from knowledge_base import repository
from knowledge_base.errors import (
    DuplicateFaqQuestion,
    FaqEntryNotFound,
    FaqImportRejected,
    FaqVersionConflict,
    InvalidFaqEntry,
)
from knowledge_base.index import DIM, fold_rows, stored_rows, texts_to_embed
from knowledge_base.models import FaqEntry, FaqEntryVersion
from knowledge_base.schemas import FaqEntryIn, FaqEntryPatch, ImportReport, TranslationIn
from knowledge_base.text import (
    clean_answer,
    clean_codes,
    clean_language,
    clean_questions,
    question_key,
)
from nlu.embedder import Embedder, get_embedder

MAX_IMPORT_ROWS = 5_000
DEMO_FAQ = Path(__file__).parent / "demo" / "faq.json"


@dataclass(frozen=True)
class _Content:
    language: str
    questions: list[str]
    answer: str
    tags: list[str]
    countries: list[str]
    channels: list[str]
    status: str


def _clean(*, language: str, questions: list[str], answer: str, tags: list[str], countries: list[str],
           channels: list[str], status: str) -> _Content:
    return _Content(language=clean_language(language), questions=clean_questions(questions),
                    answer=clean_answer(answer), tags=clean_codes(tags, what="tag", upper=False),
                    countries=clean_codes(countries, what="country", upper=True),
                    channels=clean_codes(channels, what="channel", upper=False), status=status)


def _search_text(content: _Content) -> str:
    return "\n".join([*content.questions, content.answer]).casefold()


async def _check_duplicates(session: AsyncSession, content: _Content, *, entry_id: int | None) -> list[str]:
    keys = list(dict.fromkeys(question_key(q) for q in content.questions))
    taken = await repository.taken_question_keys(session, content.language, keys, except_entry=entry_id)
    if taken:
        key, other = next(iter(taken.items()))
        raise DuplicateFaqQuestion(f"The question {key!r} is already asked by entry {other}.", entry_id=other)
    return keys


def _snapshot(entry: FaqEntry, *, action: str, author: str) -> FaqEntryVersion:
    return FaqEntryVersion(entry_id=entry.id, version=entry.version, action=action, questions=list(entry.questions),
                           answer=entry.answer, tags=list(entry.tags), countries=list(entry.countries),
                           channels=list(entry.channels), status=entry.status, author=author,
                           created_at=entry.updated_at)


async def _embed_published(entries: Sequence[FaqEntry], embedder: Embedder | None) -> None:
    """Store vectors with published entries so every process's index reuses them."""
    todo = [e for e in entries if e.status == "published" and e.deleted_at is None and e.vectors_version != e.version]
    if not todo:
        return
    texts = [texts_to_embed(e.questions, e.answer) for e in todo]
    rows = await (embedder or get_embedder()).embed_many([t for group in texts for t in group])
    start = 0
    for entry, group in zip(todo, texts, strict=True):
        block = fold_rows(rows[start:start + len(group)], len(entry.questions))
        assert block.shape == (stored_rows(len(entry.questions)), DIM)
        entry.vectors = block.tobytes()
        entry.vectors_version = entry.version
        start += len(group)


async def _flush_unique(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as error:
        # Two merchants saving the same question at once: the unique key decides.
        raise DuplicateFaqQuestion("One of the questions is already used by another entry.") from error


async def _apply(session: AsyncSession, entry: FaqEntry, content: _Content, *, action: str, author: str,
                 embedder: Embedder | None, embed: bool = True) -> FaqEntry:
    keys = await _check_duplicates(session, content, entry_id=entry.id)
    now = utcnow()
    entry.language, entry.questions, entry.answer = content.language, content.questions, content.answer
    entry.tags, entry.countries, entry.channels = content.tags, content.countries, content.channels
    entry.status, entry.search_text = content.status, _search_text(content)
    entry.version = (entry.version or 0) + 1
    entry.updated_at, entry.updated_by = now, author
    if entry.created_at is None:
        entry.created_at = now
    if embed:
        await _embed_published([entry], embedder)
    if entry.id is None:
        session.add(entry)
        await _flush_unique(session)
    await repository.replace_question_keys(session, entry.id, entry.language, keys)
    session.add(_snapshot(entry, action=action, author=author))
    await repository.record_change(session, entry.id, now)
    await _flush_unique(session)
    return entry


async def _require(session: AsyncSession, entry_id: int, expected_version: int | None = None) -> FaqEntry:
    entry = await repository.get_entry(session, entry_id)
    if entry is None:
        raise FaqEntryNotFound(f"There is no FAQ entry {entry_id}.")
    if expected_version is not None and expected_version != entry.version:
        raise FaqVersionConflict(f"Entry {entry_id} is at version {entry.version}, not {expected_version}; "
                                 "reload it and apply your change again.", current_version=entry.version)
    return entry


def _content_of(entry: FaqEntry) -> _Content:
    return _Content(language=entry.language, questions=list(entry.questions), answer=entry.answer,
                    tags=list(entry.tags), countries=list(entry.countries), channels=list(entry.channels),
                    status=entry.status)


async def create_entry(session: AsyncSession, *, data: FaqEntryIn, author: str,
                       embedder: Embedder | None = None) -> FaqEntry:
    """Create an entry (version 1); a published one is answerable as soon as the transaction commits."""
    content = _clean(language=data.language, questions=data.questions, answer=data.answer, tags=data.tags,
                     countries=data.countries, channels=data.channels, status=data.status)
    group_key = data.group_key or new_uuid()[:16]
    if data.group_key and await repository.find_translation(session, group_key, content.language):
        raise DuplicateFaqQuestion(f"Group {group_key!r} already has a {content.language} entry.",
                                   code="duplicate_translation")
    entry = FaqEntry(group_key=group_key, version=0)
    return await _apply(session, entry, content, action="created", author=author, embedder=embedder)


async def update_entry(session: AsyncSession, *, entry_id: int, patch: FaqEntryPatch, author: str,
                       embedder: Embedder | None = None) -> FaqEntry:
    """Save an edit as a new version."""
    entry = await _require(session, entry_id, patch.expected_version)
    old = _content_of(entry)
    content = _clean(language=old.language,
                     questions=patch.questions if patch.questions is not None else old.questions,
                     answer=patch.answer if patch.answer is not None else old.answer,
                     tags=patch.tags if patch.tags is not None else old.tags,
                     countries=patch.countries if patch.countries is not None else old.countries,
                     channels=patch.channels if patch.channels is not None else old.channels,
                     status=patch.status or old.status)
    if content == old:
        return entry
    action = "edited" if content.status == old.status else content.status.replace("draft", "unpublished")
    return await _apply(session, entry, content, action=action, author=author, embedder=embedder)


async def set_status(session: AsyncSession, *, entry_id: int, status: str, author: str,
                     expected_version: int | None = None, embedder: Embedder | None = None) -> FaqEntry:
    """Publish or unpublish (back to draft)."""
    entry = await _require(session, entry_id, expected_version)
    if entry.status == status:
        return entry
    content = _Content(**{**_content_of(entry).__dict__, "status": status})
    action = "published" if status == "published" else "unpublished"
    return await _apply(session, entry, content, action=action, author=author, embedder=embedder)


async def translate_entry(session: AsyncSession, *, entry_id: int, data: TranslationIn, author: str,
                          embedder: Embedder | None = None) -> FaqEntry:
    """Add the entry in another language, linked to it and sharing its tags, countries and channels."""
    source = await _require(session, entry_id)
    language = clean_language(data.language)
    if await repository.find_translation(session, source.group_key, language):
        raise DuplicateFaqQuestion(f"This entry already has a {language} translation.", code="duplicate_translation")
    content = _clean(language=language, questions=data.questions, answer=data.answer, tags=source.tags,
                     countries=source.countries, channels=source.channels, status=data.status)
    entry = FaqEntry(group_key=source.group_key, version=0)
    return await _apply(session, entry, content, action="created", author=author, embedder=embedder)


async def restore_version(session: AsyncSession, *, entry_id: int, version: int, author: str,
                          embedder: Embedder | None = None) -> FaqEntry:
    """Bring back an old version's text, tags and scope as a new version (the status stays)."""
    entry = await _require(session, entry_id)
    old = await repository.version(session, entry_id, version)
    if old is None:
        raise FaqEntryNotFound(f"Entry {entry_id} has no version {version}.", code="faq_version_not_found")
    content = _clean(language=entry.language, questions=old.questions, answer=old.answer, tags=old.tags,
                     countries=old.countries, channels=old.channels, status=entry.status)
    return await _apply(session, entry, content, action="restored", author=author, embedder=embedder)


async def delete_entry(session: AsyncSession, *, entry_id: int, author: str) -> None:
    """Soft delete: the entry leaves every index and list; its history stays."""
    entry = await _require(session, entry_id)
    now = utcnow()
    entry.deleted_at, entry.updated_at, entry.updated_by = now, now, author
    entry.version += 1
    entry.vectors, entry.vectors_version = None, None
    await repository.replace_question_keys(session, entry.id, entry.language, [])
    session.add(_snapshot(entry, action="deleted", author=author))
    await repository.record_change(session, entry.id, now)
    await session.flush()


async def get_entry(session: AsyncSession, *, entry_id: int) -> FaqEntry:
    return await _require(session, entry_id)


async def translations_of(session: AsyncSession, *, entries: Sequence[FaqEntry]) -> dict[str, list[FaqEntry]]:
    members = await repository.group_members(session, (e.group_key for e in entries))
    out: dict[str, list[FaqEntry]] = {}
    for member in members:
        out.setdefault(member.group_key, []).append(member)
    return out


async def list_entries(session: AsyncSession, *, language: str | None = None, status: str | None = None,
                       tag: str | None = None, text: str | None = None, limit: int = 50,
                       offset: int = 0) -> tuple[int, Sequence[FaqEntry]]:
    return await repository.list_entries(session, language=language, status=status, tag=tag, text=text,
                                         limit=max(1, min(limit, 500)), offset=max(0, offset))


async def entry_history(session: AsyncSession, *, entry_id: int) -> Sequence[FaqEntryVersion]:
    entry = await repository.get_entry(session, entry_id)
    history = await repository.versions(session, entry_id)
    if entry is None and not history:
        raise FaqEntryNotFound(f"There is no FAQ entry {entry_id}.")
    return history


# ---------- import / export ----------
def export_record(entry: FaqEntry) -> dict[str, Any]:
    return {"key": entry.group_key, "language": entry.language, "status": entry.status,
            "questions": list(entry.questions), "answer": entry.answer, "tags": list(entry.tags),
            "countries": list(entry.countries), "channels": list(entry.channels)}


async def export_entries(session: AsyncSession) -> list[dict[str, Any]]:
    return [export_record(e) for e in await repository.all_live_entries(session)]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise InvalidFaqEntry("Expected a list of strings.", code="invalid_list")


async def import_entries(session: AsyncSession, *, records: Sequence[dict[str, Any]], author: str,
                         embedder: Embedder | None = None,
                         row_errors: Sequence[dict[str, Any]] = ()) -> ImportReport:
    """All or nothing: every row is checked first; one bad row rejects the file with per-row errors.

    Rows are matched on (key, language): an existing entry gets a new version, otherwise one is created.
    """
    errors = list(row_errors)
    if len(records) + len(errors) > MAX_IMPORT_ROWS:
        raise FaqImportRejected(f"An import holds at most {MAX_IMPORT_ROWS} rows; split the file.",
                                code="import_too_large", errors=[])
    planned: list[tuple[int, str, _Content]] = []
    seen_rows: dict[tuple[str, str], int] = {}
    seen_questions: dict[tuple[str, str], int] = {}
    for record in records:
        row = int(record.get("_row", 0))
        try:
            if not isinstance(record, dict):
                raise InvalidFaqEntry("A row must be an object.", code="invalid_row")
            key = str(record.get("key") or "").strip()
            if not key or len(key) > 80:
                raise InvalidFaqEntry("Every row needs a key (at most 80 characters) that links its translations.",
                                      code="missing_key")
            status = str(record.get("status") or "draft").strip().lower()
            if status not in ("draft", "published"):
                raise InvalidFaqEntry("status must be draft or published.", code="invalid_status")
            answer = record.get("answer")
            content = _clean(language=str(record.get("language") or ""), questions=_as_list(record.get("questions")),
                             answer="" if answer is None else str(answer), tags=_as_list(record.get("tags")),
                             countries=_as_list(record.get("countries")),
                             channels=_as_list(record.get("channels")), status=status)
            if (key, content.language) in seen_rows:
                raise InvalidFaqEntry(f"Row {seen_rows[key, content.language]} already has key {key!r} in "
                                      f"{content.language}.", code="duplicate_row")
            for question in content.questions:
                earlier = seen_questions.get((content.language, question_key(question)))
                if earlier is not None:
                    raise DuplicateFaqQuestion(f"The question {question!r} is also in row {earlier}.")
        except (InvalidFaqEntry, DuplicateFaqQuestion) as error:
            errors.append({"row": row, "code": error.code, "detail": error.detail})
            continue
        seen_rows[key, content.language] = row
        for question in content.questions:
            seen_questions[content.language, question_key(question)] = row
        planned.append((row, key, content))
    if errors:
        raise FaqImportRejected(f"{len(errors)} row(s) have errors; nothing was imported.",
                                errors=sorted(errors, key=lambda e: int(e["row"])))
    existing = {(e.group_key, e.language): e for e in
                await repository.group_members(session, (key for _row, key, _content in planned))}
    created = updated = unchanged = 0
    touched: list[tuple[int, FaqEntry, _Content]] = []
    for row, key, content in planned:
        entry = existing.get((key, content.language))
        if entry is None:
            touched.append((row, FaqEntry(group_key=key, version=0), content))
            created += 1
        elif _content_of(entry) == content:
            unchanged += 1
        else:
            touched.append((row, entry, content))
            updated += 1
    # Free the old question keys first so phrasings may move between entries in one file.
    for _row, entry, _content in touched:
        if entry.id is not None:
            await repository.replace_question_keys(session, entry.id, entry.language, [])
    await session.flush()
    for row, entry, content in touched:
        try:
            await _apply(session, entry, content, action="created" if entry.id is None else "imported",
                         author=author, embedder=embedder, embed=False)
        except DuplicateFaqQuestion as error:
            errors.append({"row": row, "code": error.code, "detail": error.detail})
    if errors:
        raise FaqImportRejected(f"{len(errors)} row(s) have errors; nothing was imported.", errors=errors)
    # One batch for the whole file instead of one forward pass per entry.
    await _embed_published([entry for _row, entry, _content in touched], embedder)
    await session.flush()
    return ImportReport(created=created, updated=updated, unchanged=unchanged)


async def load_demo_faq(session: AsyncSession, *, author: str = "demo",
                        embedder: Embedder | None = None) -> ImportReport:
    """Load (or refresh) the demo shop's FAQ, English and Simplified Chinese, published."""
    data = json.loads(DEMO_FAQ.read_text(encoding="utf-8"))
    records = [{"_row": i + 1, "key": group["key"], "language": language, "status": "published",
                "questions": text["questions"], "answer": text["answer"], "tags": group.get("tags", []),
                "countries": group.get("countries", []), "channels": group.get("channels", [])}
               for i, group in enumerate(data["entries"]) for language, text in group["translations"].items()]
    return await import_entries(session, records=records, author=author, embedder=embedder)
