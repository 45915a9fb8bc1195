"""Every FAQ query."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Text, bindparam, cast, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from knowledge_base.models import FaqChange, FaqDraft, FaqEntry, FaqEntryVersion, FaqQuestionKey

# The live index's reads on chat turns, built once (SQLAlchemy reuses their cache key and compiled form).
_CHANGES_AFTER = select(FaqChange.id, FaqChange.entry_id).where(FaqChange.id > bindparam("after")) \
    .order_by(FaqChange.id)
_LIVE_VERSIONS = select(FaqEntry.id, FaqEntry.version).where(
    FaqEntry.id.in_(bindparam("ids", expanding=True)), FaqEntry.status == "published", FaqEntry.deleted_at.is_(None))


async def get_entry(session: AsyncSession, entry_id: int) -> FaqEntry | None:
    return await session.scalar(select(FaqEntry).where(FaqEntry.id == entry_id, FaqEntry.deleted_at.is_(None)))


async def find_translation(session: AsyncSession, group_key: str, language: str) -> FaqEntry | None:
    return await session.scalar(select(FaqEntry).where(FaqEntry.group_key == group_key,
                                                       FaqEntry.language == language,
                                                       FaqEntry.deleted_at.is_(None)))


async def group_members(session: AsyncSession, group_keys: Iterable[str]) -> Sequence[FaqEntry]:
    keys = list(set(group_keys))
    if not keys:
        return []
    rows = await session.scalars(select(FaqEntry).where(FaqEntry.group_key.in_(keys), FaqEntry.deleted_at.is_(None))
                                 .order_by(FaqEntry.language))
    return rows.all()


async def list_entries(session: AsyncSession, *, language: str | None, status: str | None, tag: str | None,
                       text: str | None, limit: int, offset: int) -> tuple[int, Sequence[FaqEntry]]:
    query = select(FaqEntry).where(FaqEntry.deleted_at.is_(None))
    if language:
        query = query.where(FaqEntry.language == language)
    if status:
        query = query.where(FaqEntry.status == status)
    if text:
        needle = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(FaqEntry.search_text.like(f"%{needle}%", escape="\\"))
    if tag:
        # Tags are stored lower-cased as a JSON list; the quoted tag matches one whole element.
        query = query.where(cast(FaqEntry.tags, Text).like(f'%"{tag.lower()}"%'))
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(query.order_by(FaqEntry.group_key, FaqEntry.language).limit(limit).offset(offset))
    return int(total), rows.all()


async def all_live_entries(session: AsyncSession) -> Sequence[FaqEntry]:
    rows = await session.scalars(select(FaqEntry).where(FaqEntry.deleted_at.is_(None))
                                 .order_by(FaqEntry.group_key, FaqEntry.language))
    return rows.all()


async def versions(session: AsyncSession, entry_id: int) -> Sequence[FaqEntryVersion]:
    rows = await session.scalars(select(FaqEntryVersion).where(FaqEntryVersion.entry_id == entry_id)
                                 .order_by(FaqEntryVersion.version.desc()))
    return rows.all()


async def version(session: AsyncSession, entry_id: int, number: int) -> FaqEntryVersion | None:
    return await session.scalar(select(FaqEntryVersion).where(FaqEntryVersion.entry_id == entry_id,
                                                              FaqEntryVersion.version == number))


async def taken_question_keys(session: AsyncSession, language: str, keys: Sequence[str],
                              *, except_entry: int | None) -> dict[str, int]:
    if not keys:
        return {}
    query = select(FaqQuestionKey.question_key, FaqQuestionKey.entry_id).where(
        FaqQuestionKey.language == language, FaqQuestionKey.question_key.in_(list(keys)))
    if except_entry is not None:
        query = query.where(FaqQuestionKey.entry_id != except_entry)
    return {str(row[0]): int(row[1]) for row in (await session.execute(query)).all()}


async def replace_question_keys(session: AsyncSession, entry_id: int, language: str, keys: Sequence[str]) -> None:
    await session.execute(delete(FaqQuestionKey).where(FaqQuestionKey.entry_id == entry_id))
    await session.flush()
    session.add_all(FaqQuestionKey(entry_id=entry_id, language=language, question_key=k) for k in keys)


# Set in a session's info when its transaction logged a change (knowledge_base.live counts such commits).
CHANGED = "knowledge_base.changed"


async def record_change(session: AsyncSession, entry_id: int, at: datetime) -> None:
    session.add(FaqChange(entry_id=entry_id, created_at=at))
    session.info[CHANGED] = True


async def latest_change(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(FaqChange.id))) or 0)


async def changes_after(session: AsyncSession, after: int, also: Iterable[int] = ()) -> list[tuple[int, int]]:
    """(change id, entry id) newer than `after`, plus the listed ids (gaps a slow writer may still fill)."""
    extra = list(also)
    if extra:
        rows = await session.execute(select(FaqChange.id, FaqChange.entry_id).where(
            or_(FaqChange.id > after, FaqChange.id.in_(extra))).order_by(FaqChange.id))
    else:
        rows = await session.execute(_CHANGES_AFTER, {"after": after})
    return [(int(a), int(b)) for a, b in rows.all()]


async def entries_by_id(session: AsyncSession, ids: Iterable[int]) -> Sequence[FaqEntry]:
    wanted = list(set(ids))
    if not wanted:
        return []
    return (await session.scalars(select(FaqEntry).where(FaqEntry.id.in_(wanted)))).all()


async def published_entries(session: AsyncSession, *, after_id: int, batch: int) -> Sequence[FaqEntry]:
    rows = await session.scalars(select(FaqEntry).where(FaqEntry.status == "published",
                                                        FaqEntry.deleted_at.is_(None), FaqEntry.id > after_id)
                                 .order_by(FaqEntry.id).limit(batch))
    return rows.all()


async def live_versions(session: AsyncSession, ids: Iterable[int]) -> dict[int, int]:
    """entry id -> version, for the listed entries that are published and not deleted right now."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.execute(_LIVE_VERSIONS, {"ids": wanted})
    return {int(a): int(b) for a, b in rows.all()}


async def store_vectors(session: AsyncSession, rows: Iterable[tuple[int, int, bytes]]) -> int:
    """Save re-embedded vectors, (entry id, version, bytes) each, where the entry is still at that version."""
    stored = 0
    for entry_id, version, vectors in rows:
        result = await session.execute(update(FaqEntry).where(FaqEntry.id == entry_id, FaqEntry.version == version)
                                       .values(vectors=vectors, vectors_version=version))
        stored += int(getattr(result, "rowcount", 0) or 0)
    return stored


# ---------- drafts ----------
async def draft(session: AsyncSession, entry_id: int) -> FaqDraft | None:
    return await session.get(FaqDraft, entry_id, populate_existing=True)


async def drafts_of(session: AsyncSession, entry_ids: Iterable[int]) -> Sequence[FaqDraft]:
    ids = list(set(entry_ids))
    if not ids:
        return []
    return (await session.scalars(select(FaqDraft).where(FaqDraft.entry_id.in_(ids)))).all()


async def drafts_awaiting_review(session: AsyncSession, limit: int) -> Sequence[FaqDraft]:
    return (await session.scalars(select(FaqDraft).where(FaqDraft.review_requested_at.is_not(None))
                                  .order_by(FaqDraft.review_requested_at).limit(limit))).all()


async def bump_draft(session: AsyncSession, entry_id: int, expected_revision: int, values: dict[str, object]) -> bool:
    """Save a draft only if nobody saved it since `expected_revision` (one conditional UPDATE: two tabs that
    read the same revision cannot both win)."""
    result = await session.execute(
        update(FaqDraft).where(FaqDraft.entry_id == entry_id, FaqDraft.revision == expected_revision)
        .values(revision=expected_revision + 1, **values).execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)


async def delete_draft(session: AsyncSession, entry_id: int) -> None:
    await session.execute(delete(FaqDraft).where(FaqDraft.entry_id == entry_id))


async def groups_missing_language(session: AsyncSession, languages: Sequence[str]) -> dict[str, list[str]]:
    """group_key -> the languages it has no live entry in."""
    rows = (await session.execute(select(FaqEntry.group_key, FaqEntry.language)
                                  .where(FaqEntry.deleted_at.is_(None)))).all()
    have: dict[str, set[str]] = {}
    for group_key, language in rows:
        have.setdefault(group_key, set()).add(language)
    return {g: [lang for lang in languages if lang not in langs] for g, langs in have.items()
            if any(lang not in langs for lang in languages)}
