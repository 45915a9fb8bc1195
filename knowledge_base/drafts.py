"""FAQ drafts and review: an edit is saved as a draft beside the live entry (which keeps answering shoppers), then
published (by someone who may) or sent to a reviewer. No edit is lost silently: every save names the draft
revision it started from and the live version it saw, and a stale one is refused with who saved in between."""
from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.clock import utcnow
from knowledge_base import repository
from knowledge_base.errors import DuplicateFaqQuestion, FaqEntryNotFound, FaqVersionConflict
from knowledge_base.models import FaqDraft, FaqEntry
from knowledge_base.service import _apply, _Content, _content_of, _require
from knowledge_base.text import LANGUAGES, clean_answer, clean_questions, question_key
from nlu.embedder import Embedder


@dataclass(frozen=True)
class DraftState:
    """The entry as its editor sees it: the live text, the draft (if any) and its revision (0: no draft)."""

    entry: FaqEntry
    draft: FaqDraft | None

    @property
    def revision(self) -> int:
        return self.draft.revision if self.draft is not None else 0

    @property
    def questions(self) -> list[str]:
        return list(self.draft.questions if self.draft is not None else self.entry.questions)

    @property
    def answer(self) -> str:
        return self.draft.answer if self.draft is not None else self.entry.answer


async def draft_state(session: AsyncSession, *, entry_id: int) -> DraftState:
    entry = await _require(session, entry_id)
    return DraftState(entry=entry, draft=await repository.draft(session, entry_id))


def _stale(draft: FaqDraft | None, entry: FaqEntry) -> FaqVersionConflict:
    if draft is None:
        return FaqVersionConflict(
            "This entry's draft was published or discarded after you opened it; your text is kept on the page. "
            "Reload to see the entry now, then apply your change again.", code="draft_conflict", current_revision=0,
            current_version=entry.version)
    return FaqVersionConflict(
        f"{draft.author} saved this draft at {draft.updated_at:%H:%M:%S} UTC after you opened it; your text is "
        "kept on the page. Reload to see theirs, then apply your change again.", code="draft_conflict",
        current_revision=draft.revision, current_version=entry.version, saved_by=draft.author)


async def save_draft(session: AsyncSession, *, entry_id: int, questions: list[str], answer: str, author: str,
                     expected_revision: int, seen_version: int) -> FaqDraft:
    """Save the editor's text as the entry's draft. `expected_revision` is the draft revision the editor loaded
    (0: there was none), `seen_version` the live version it showed; either being stale -> FaqVersionConflict."""
    entry = await _require(session, entry_id)
    cleaned_questions, cleaned_answer = clean_questions(questions), clean_answer(answer)
    keys = list(dict.fromkeys(question_key(q) for q in cleaned_questions))
    taken = await repository.taken_question_keys(session, entry.language, keys, except_entry=entry.id)
    if taken:
        key, other = next(iter(taken.items()))
        raise DuplicateFaqQuestion(f"The question {key!r} is already asked by entry {other}.", entry_id=other,
                                   field="questions")
    existing = await repository.draft(session, entry_id)
    if seen_version != entry.version:
        raise FaqVersionConflict(
            f"The live entry changed to version {entry.version} (by {entry.updated_by}) after you opened it; your "
            "text is kept on the page. Reload, then apply your change again.", code="draft_conflict",
            current_revision=existing.revision if existing else 0, current_version=entry.version)
    now = utcnow()
    if existing is None:
        if expected_revision != 0:
            raise _stale(None, entry)
        row = FaqDraft(entry_id=entry_id, questions=cleaned_questions, answer=cleaned_answer,
                       base_version=entry.version, revision=1, author=author, updated_at=now)
        try:
            async with session.begin_nested():
                session.add(row)
                await session.flush()
        except IntegrityError:
            # Another tab created the draft at the same moment: theirs stands, this one is told.
            raise _stale(await repository.draft(session, entry_id), entry) from None
        return row
    saved = await repository.bump_draft(session, entry_id, expected_revision, {
        "questions": cleaned_questions, "answer": cleaned_answer, "base_version": entry.version, "author": author,
        "updated_at": now, "review_requested_by": None, "review_requested_at": None})
    current = await repository.draft(session, entry_id)
    if not saved or current is None:
        raise _stale(current, entry)
    return current


async def request_review(session: AsyncSession, *, entry_id: int, author: str, expected_revision: int) -> FaqDraft:
    """Mark the saved draft as waiting for a reviewer."""
    entry = await _require(session, entry_id)
    draft = await repository.draft(session, entry_id)
    if draft is None or draft.revision != expected_revision:
        raise _stale(draft, entry)
    await repository.bump_draft(session, entry_id, expected_revision,
                                {"review_requested_by": author, "review_requested_at": utcnow()})
    current = await repository.draft(session, entry_id)
    assert current is not None
    return current


async def publish_draft(session: AsyncSession, *, entry_id: int, author: str, expected_revision: int,
                        embedder: Embedder | None = None) -> FaqEntry:
    """Make the draft the live entry (a new published version) and drop the draft; shoppers get it as soon as
    the transaction commits. Refused when the draft or the live entry moved since the reviewer looked."""
    entry = await _require(session, entry_id)
    draft = await repository.draft(session, entry_id)
    if draft is None or draft.revision != expected_revision:
        raise _stale(draft, entry)
    if draft.base_version != entry.version:
        raise FaqVersionConflict(
            f"The live entry changed to version {entry.version} after this draft was saved; open the draft, check "
            "it against the live text and save it again before publishing.", code="draft_conflict",
            current_revision=draft.revision, current_version=entry.version)
    content = _Content(**{**_content_of(entry).__dict__, "questions": list(draft.questions),
                          "answer": draft.answer, "status": "published"})
    await repository.delete_draft(session, entry_id)
    return await _apply(session, entry, content, action="published", author=author, embedder=embedder)


async def discard_draft(session: AsyncSession, *, entry_id: int, expected_revision: int) -> None:
    entry = await _require(session, entry_id)
    draft = await repository.draft(session, entry_id)
    if draft is None or draft.revision != expected_revision:
        raise _stale(draft, entry)
    await repository.delete_draft(session, entry_id)
    await session.flush()


async def drafts_for(session: AsyncSession, *, entry_ids: Sequence[int]) -> dict[int, FaqDraft]:
    return {d.entry_id: d for d in await repository.drafts_of(session, entry_ids)}


async def awaiting_review(session: AsyncSession, *, limit: int = 50) -> Sequence[FaqDraft]:
    return await repository.drafts_awaiting_review(session, limit)


async def missing_translations(session: AsyncSession) -> dict[str, list[str]]:
    """Translation groups lacking a language the FAQ supports: group_key -> missing languages."""
    return await repository.groups_missing_language(session, LANGUAGES)


def text_diff(old: str, new: str) -> list[tuple[str, str]]:
    """A line diff for people: [(kind, line)] with kind ' ', '-' or '+'."""
    out: list[tuple[str, str]] = []
    for line in difflib.ndiff(old.splitlines(), new.splitlines()):
        if line.startswith(("- ", "+ ", "  ")):
            out.append((line[0], line[2:]))
    return out


async def version_diff(session: AsyncSession, *, entry_id: int, version: int) -> list[tuple[str, str]]:
    """How a version differs from the one before it (questions first, then the answer)."""
    history = {v.version: v for v in await repository.versions(session, entry_id)}
    this = history.get(version)
    if this is None:
        raise FaqEntryNotFound(f"Entry {entry_id} has no version {version}.", code="faq_version_not_found")
    before = history.get(version - 1)
    old = "\n".join([*(before.questions if before else []), "", before.answer if before else ""])
    new = "\n".join([*this.questions, "", this.answer])
    return text_diff(old, new)
