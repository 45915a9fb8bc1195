from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["draft", "published"]


class FaqEntryIn(BaseModel):
    """A new entry; `group_key` links translations (generated when absent)."""

    model_config = ConfigDict(extra="forbid")
    group_key: str | None = Field(default=None, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    language: str = Field(max_length=16)
    questions: list[str] = Field(max_length=50)
    answer: str = Field(max_length=20_000)
    tags: list[str] = Field(default_factory=list, max_length=30)
    countries: list[str] = Field(default_factory=list, max_length=250)
    channels: list[str] = Field(default_factory=list, max_length=30)
    status: Status = "draft"


class FaqEntryPatch(BaseModel):
    """Changed fields only; `expected_version` refuses to overwrite someone else's newer edit."""

    model_config = ConfigDict(extra="forbid")
    questions: list[str] | None = Field(default=None, max_length=50)
    answer: str | None = Field(default=None, max_length=20_000)
    tags: list[str] | None = Field(default=None, max_length=30)
    countries: list[str] | None = Field(default=None, max_length=250)
    channels: list[str] | None = Field(default=None, max_length=30)
    status: Status | None = None
    expected_version: int | None = None


class TranslationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    language: str = Field(max_length=16)
    questions: list[str] = Field(max_length=50)
    answer: str = Field(max_length=20_000)
    status: Status = "draft"


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: int | None = None


class TranslationRef(BaseModel):
    id: int
    language: str
    status: str


class FaqEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    group_key: str
    language: str
    questions: list[str]
    answer: str
    tags: list[str]
    countries: list[str]
    channels: list[str]
    status: str
    version: int
    created_at: datetime
    updated_at: datetime
    updated_by: str
    translations: list[TranslationRef] = Field(default_factory=list)


class FaqVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    version: int
    action: str
    questions: list[str]
    answer: str
    tags: list[str]
    countries: list[str]
    channels: list[str]
    status: str
    author: str
    created_at: datetime


class FaqEntryPage(BaseModel):
    total: int
    entries: list[FaqEntryOut]


class TryQuestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=2_000)
    language: str = Field(default="en", max_length=16)
    country: str | None = Field(default=None, max_length=2)
    channel: str | None = Field(default=None, max_length=40)
    k: int = Field(default=5, ge=1, le=20)


class MatchOut(BaseModel):
    entry_id: int
    group_key: str
    language: str
    question: str
    answer: str
    score: float


class RetrievalOut(BaseModel):
    decision: Literal["answer", "suggest", "none"]
    matches: list[MatchOut]


class ImportReport(BaseModel):
    created: int
    updated: int
    unchanged: int
