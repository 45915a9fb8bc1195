"""FAQ tables: entries (current state), every version, normalised questions, and the change log."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit counter.
ChangeId = BigInteger().with_variant(Integer(), "sqlite")


class FaqEntry(Base):
    """One FAQ entry in one language; translations share `group_key`."""

    __tablename__ = "kb_entries"
    __table_args__ = (Index("ix_kb_entries_group_language", "group_key", "language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_key: Mapped[str] = mapped_column(String(80))
    language: Mapped[str] = mapped_column(String(8))
    questions: Mapped[list[str]] = mapped_column(JSON)
    answer: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Empty list: applies to every country / channel.
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(12))  # draft, published
    version: Mapped[int] = mapped_column(Integer)
    search_text: Mapped[str] = mapped_column(Text)  # lower-cased questions + answer for list search
    # float32 rows (phrasings..., answer paragraph mean, question+answer) of `vectors_version` (index.fold_rows).
    vectors: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    vectors_version: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(120))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class FaqEntryVersion(Base):
    """An immutable snapshot written on every change (edit, publish, restore, delete)."""

    __tablename__ = "kb_entry_versions"
    __table_args__ = (UniqueConstraint("entry_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("kb_entries.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))  # created, edited, published, unpublished, restored, deleted
    questions: Mapped[list[str]] = mapped_column(JSON)
    answer: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(12))
    author: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FaqQuestionKey(Base):
    """Normalised question per live entry: the unique constraint refuses duplicates even under races."""

    __tablename__ = "kb_question_keys"
    __table_args__ = (UniqueConstraint("language", "question_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("kb_entries.id"), index=True)
    language: Mapped[str] = mapped_column(String(8))
    question_key: Mapped[str] = mapped_column(String(500))


class FaqChange(Base):
    """Monotonic change log every process's index polls to stay live."""

    __tablename__ = "kb_changes"

    id: Mapped[int] = mapped_column(ChangeId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FaqDraft(Base):
    """Unpublished changes to an entry (one per entry): the live entry keeps answering until the draft is
    published. `base_version` is the entry version the draft was started from (a newer live version means a
    conflict); `review_requested_*` marks it waiting for a reviewer."""

    __tablename__ = "kb_drafts"

    entry_id: Mapped[int] = mapped_column(ForeignKey("kb_entries.id"), primary_key=True)
    questions: Mapped[list[str]] = mapped_column(JSON)
    answer: Mapped[str] = mapped_column(Text)
    base_version: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)  # bumped on every save: two tabs saving one draft conflict
    author: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    review_requested_by: Mapped[str | None] = mapped_column(String(120), default=None)
    review_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
