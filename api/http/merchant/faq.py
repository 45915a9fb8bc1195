"""Merchant REST API of the FAQ knowledge base (merchant role)."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.exc import IntegrityError

import knowledge_base as kb
from api import accounts
from api.auth import MerchantDep, Principal
from api.deps import SessionDep
from api.params import Offset, PathId
from kit.errors import InvalidInput, Unavailable
from knowledge_base.models import FaqEntry
from knowledge_base.schemas import (
    FaqEntryIn,
    FaqEntryOut,
    FaqEntryPage,
    FaqEntryPatch,
    FaqVersionOut,
    ImportReport,
    MatchOut,
    RetrievalOut,
    StatusChange,
    TranslationIn,
    TranslationRef,
    TryQuestionIn,
)
from knowledge_base.transfer import parse_csv, parse_json, to_csv, to_json

router = APIRouter(prefix="/api/v1/merchant/faq", tags=["faq"])


def _author(principal: Principal) -> str:
    return f"{principal.name} (token {principal.token_id})"


async def _audit(session: SessionDep, principal: Principal, action: str, entry_id: int,
                 details: dict[str, object] | None = None) -> None:
    await accounts.record(session, actor=accounts.token_actor(principal.token_id, principal.name), area="faq",
                          action=action, subject=f"FAQ #{entry_id}", details=dict(details or {}))


async def _out(session: SessionDep, entries: list[FaqEntry]) -> list[FaqEntryOut]:
    groups = await kb.translations_of(session, entries=entries)
    return [FaqEntryOut.model_validate(e).model_copy(update={"translations": [
        TranslationRef(id=t.id, language=t.language, status=t.status)
        for t in groups.get(e.group_key, []) if t.id != e.id]}) for e in entries]


@router.get("/entries", response_model=FaqEntryPage)
async def list_entries(session: SessionDep, _: MerchantDep, language: str | None = None,
                       status_: Annotated[Literal["draft", "published"] | None, Query(alias="status")] = None,
                       tag: str | None = None, q: Annotated[str | None, Query(max_length=200)] = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 50,
                       offset: Offset = 0) -> FaqEntryPage:
    """Entries (not deleted), optionally by language, status, tag or a text search."""
    total, entries = await kb.list_entries(session, language=language, status=status_, tag=tag, text=q,
                                           limit=limit, offset=offset)
    return FaqEntryPage(total=total, entries=await _out(session, list(entries)))


@router.post("/entries", response_model=FaqEntryOut, status_code=status.HTTP_201_CREATED)
async def create_entry(data: FaqEntryIn, session: SessionDep, principal: MerchantDep) -> FaqEntryOut:
    entry = await kb.create_entry(session, data=data, author=_author(principal))
    await _audit(session, principal, "entry created", entry.id, {"status": entry.status})
    return (await _out(session, [entry]))[0]


@router.get("/entries/{entry_id}", response_model=FaqEntryOut)
async def get_entry(entry_id: PathId, session: SessionDep, _: MerchantDep) -> FaqEntryOut:
    return (await _out(session, [await kb.get_entry(session, entry_id=entry_id)]))[0]


@router.patch("/entries/{entry_id}", response_model=FaqEntryOut)
async def update_entry(entry_id: PathId, patch: FaqEntryPatch, session: SessionDep,
                       principal: MerchantDep) -> FaqEntryOut:
    entry = await kb.update_entry(session, entry_id=entry_id, patch=patch, author=_author(principal))
    await _audit(session, principal, "edited", entry_id, {"version": entry.version, "status": entry.status})
    return (await _out(session, [entry]))[0]


@router.delete("/entries/{entry_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_entry(entry_id: PathId, session: SessionDep, principal: MerchantDep) -> Response:
    try:
        async with session.begin_nested():
            await kb.delete_entry(session, entry_id=entry_id, author=_author(principal))
            await _audit(session, principal, "deleted", entry_id)
    except IntegrityError:
        # A concurrent DELETE of the same entry won (its version row took ours): it is gone, 404 like any later one.
        await kb.get_entry(session, entry_id=entry_id)
        raise
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/entries/{entry_id}/publish", response_model=FaqEntryOut)
async def publish_entry(entry_id: PathId, session: SessionDep, principal: MerchantDep,
                        change: StatusChange | None = None) -> FaqEntryOut:
    entry = await kb.set_status(session, entry_id=entry_id, status="published", author=_author(principal),
                                expected_version=change.expected_version if change else None)
    await _audit(session, principal, "published", entry_id, {"version": entry.version})
    return (await _out(session, [entry]))[0]


@router.post("/entries/{entry_id}/unpublish", response_model=FaqEntryOut)
async def unpublish_entry(entry_id: PathId, session: SessionDep, principal: MerchantDep,
                          change: StatusChange | None = None) -> FaqEntryOut:
    entry = await kb.set_status(session, entry_id=entry_id, status="draft", author=_author(principal),
                                expected_version=change.expected_version if change else None)
    await _audit(session, principal, "unpublished", entry_id, {"version": entry.version})
    return (await _out(session, [entry]))[0]


@router.post("/entries/{entry_id}/translations", response_model=FaqEntryOut, status_code=status.HTTP_201_CREATED)
async def translate_entry(entry_id: PathId, data: TranslationIn, session: SessionDep,
                          principal: MerchantDep) -> FaqEntryOut:
    entry = await kb.translate_entry(session, entry_id=entry_id, data=data, author=_author(principal))
    await _audit(session, principal, "translation added", entry.id, {"of": entry_id, "language": entry.language})
    return (await _out(session, [entry]))[0]


@router.get("/entries/{entry_id}/versions", response_model=list[FaqVersionOut])
async def entry_history(entry_id: PathId, session: SessionDep, _: MerchantDep) -> list[FaqVersionOut]:
    return [FaqVersionOut.model_validate(v) for v in await kb.entry_history(session, entry_id=entry_id)]


@router.post("/entries/{entry_id}/versions/{version}/restore", response_model=FaqEntryOut)
async def restore_version(entry_id: PathId, version: PathId, session: SessionDep,
                          principal: MerchantDep) -> FaqEntryOut:
    entry = await kb.restore_version(session, entry_id=entry_id, version=version, author=_author(principal))
    await _audit(session, principal, "restored", entry_id, {"from_version": version, "version": entry.version})
    return (await _out(session, [entry]))[0]


@router.post("/try", response_model=RetrievalOut)
async def try_question(data: TryQuestionIn, request: Request, session: SessionDep, _: MerchantDep) -> RetrievalOut:
    """What the bot would answer: the top matches with their calibrated scores and the decision."""
    index = getattr(request.app.state, "faq_index", None)
    if index is None:
        raise Unavailable("The FAQ index is not running in this process.", code="faq_index_unavailable")
    result = await kb.answer(index, question=data.question, language=data.language, country=data.country,
                             channel=data.channel, session=session, k=data.k)
    return RetrievalOut(decision=result.decision, matches=[
        MatchOut(entry_id=m.entry_id, group_key=m.group_key, language=m.language, question=m.question,
                 answer=m.answer, score=m.score) for m in result.matches])


@router.post("/import", response_model=ImportReport)
async def import_entries(request: Request, session: SessionDep, principal: MerchantDep,
                         format_: Annotated[Literal["csv", "json"], Query(alias="format")] = "json") -> ImportReport:
    """Import a CSV or JSON file (the export's format). All or nothing: any bad row rejects the file."""
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("The file must be UTF-8 text.", code="not_utf8") from None
    if format_ == "csv":
        records, row_errors = parse_csv(text)
    else:
        records, row_errors = parse_json(text), []
    report = await kb.import_entries(session, records=records, row_errors=row_errors, author=_author(principal))
    await accounts.record(session, actor=accounts.token_actor(principal.token_id, principal.name), area="faq",
                          action="imported", subject=f"{format_} file", details=report.model_dump())
    return report


@router.get("/export")
async def export_entries(session: SessionDep, _: MerchantDep,
                         format_: Annotated[Literal["csv", "json"], Query(alias="format")] = "json") -> Response:
    records = await kb.export_entries(session)
    if format_ == "csv":
        return Response(to_csv(records), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="faq.csv"'})
    return Response(to_json(records), media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="faq.json"'})
