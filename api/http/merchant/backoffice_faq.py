"""The back office FAQ: entries with their translations (a missing one shown as missing), an editor that saves
drafts beside the live answer, a preview of what shoppers get in each language and which phrasings reach the
entry, review (ask a reviewer, or publish when the role may), versions with diff and restore.

Two tabs saving one entry: the second save is refused with who saved in between, and its text stays in the form."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

import knowledge_base as kb
from api import accounts
from api.deps import get_database
from api.http.merchant.backoffice import (
    PAGE_SIZE,
    Editor,
    PageRoute,
    Staff,
    Viewer,
    field_error,
    pages,
    redirect,
    render,
)
from kit.errors import InvalidInput, NotFound, ShopTalkError, Unavailable
from knowledge_base.schemas import FaqEntryIn, TranslationIn
from knowledge_base.text import LANGUAGES
from knowledge_base.transfer import parse_csv, parse_json, to_csv, to_json

router = APIRouter(route_class=PageRoute, include_in_schema=False)
LANGUAGE_NAMES = {"en": "English", "zh": "中文"}
MAX_IMPORT_BYTES = 900_000  # under the app's body limit


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@router.get("/backoffice/faq")
async def faq_list(request: Request, who: Viewer, language: str | None = None, state: str | None = None,
                   q: str | None = None, offset: int = 0) -> HTMLResponse:
    who.require("faq")
    language = language if language in LANGUAGES else None
    offset = max(0, offset)
    async with get_database(request).sessions() as session:
        missing = await kb.missing_translations(session)
        if state == "review":
            waiting = await kb.awaiting_review(session, limit=200)
            entries = [await kb.get_entry(session, entry_id=d.entry_id) for d in waiting]
            total = len(entries)
        elif state == "missing":
            total, found = await kb.list_entries(session, language=language, text=q, limit=500)
            entries = [e for e in found if e.group_key in missing]
            total = len(entries)
        else:
            status = {"published": "published", "unpublished": "draft"}.get(state or "")
            total, found = await kb.list_entries(session, language=language, status=status, text=q,
                                                 limit=PAGE_SIZE, offset=offset)
            entries = list(found)
        drafts = await kb.drafts_for(session, entry_ids=[e.id for e in entries])
    query = "&".join(f"{k}={v}" for k, v in (("language", language), ("state", state), ("q", q)) if v)
    return render(request, "faq.html", {
        "entries": entries, "drafts": drafts, "missing": missing, "language": language, "state": state, "q": q or "",
        "languages": LANGUAGES, "names": LANGUAGE_NAMES, "pages": pages(total, offset),
        "base": "/backoffice/faq" + (f"?{query}" if query else ""), "notice": request.query_params.get("notice")},
        who=who)


async def _preview(request: Request, session: AsyncSession, entry_group: str, questions: list[str],
                   language: str) -> list[dict[str, Any]]:
    """For each phrasing: what a shopper asking it now gets (live index), and whether that is this entry."""
    index = getattr(request.app.state, "faq_index", None)
    if index is None:
        raise Unavailable("The FAQ index is not running in this process.", code="faq_index_unavailable")
    out = []
    for question in questions[:10]:
        result = await kb.answer(index, question=question, language=language, session=session, k=1)
        top = result.matches[0] if result.matches else None
        out.append({"question": question, "decision": result.decision,
                    "reaches": top is not None and top.group_key == entry_group,
                    "other": top.question if top is not None and top.group_key != entry_group else None})
    return out


async def _editor(request: Request, who: Staff, entry_id: int, *, status: int = 200,
                  error: dict[str, Any] | None = None, typed: dict[str, str] | None = None,
                  translation: dict[str, str] | None = None) -> HTMLResponse:
    async with get_database(request).sessions() as session:
        state = await kb.draft_state(session, entry_id=entry_id)
        entry = state.entry
        group = (await kb.translations_of(session, entries=[entry])).get(entry.group_key, [])
        group_drafts = await kb.drafts_for(session, entry_ids=[e.id for e in group])
        history = list(await kb.entry_history(session, entry_id=entry_id))
        diffs = {v.version: await kb.version_diff(session, entry_id=entry_id, version=v.version) for v in history[:10]}
        by_language = {e.language: e for e in group}
        reach = await _preview(request, session, entry.group_key, _lines(typed["questions"]) if typed
                               else state.questions, entry.language)
    return render(request, "faq_entry.html", {
        "entry": entry, "draft": state.draft, "revision": state.revision,
        "questions": typed["questions"] if typed else "\n".join(state.questions),
        "answer": typed["answer"] if typed else state.answer, "dirty": typed is not None,
        "by_language": by_language, "group_drafts": group_drafts, "languages": LANGUAGES, "names": LANGUAGE_NAMES,
        "history": history[:10], "diffs": diffs, "reach": reach, "error": error,
        "translation": translation or {}, "may_publish": who.may("faq_review"),
        "notice": request.query_params.get("notice")}, status=status, who=who)


@router.get("/backoffice/faq/new")
async def new_entry(request: Request, who: Viewer) -> HTMLResponse:
    who.require("faq")
    return render(request, "faq_new.html", {"form": {}, "names": LANGUAGE_NAMES}, who=who)


@router.post("/backoffice/faq/new")
async def create_entry(request: Request, who: Editor, language: Annotated[str, Form(max_length=8)],
                       questions: Annotated[str, Form(max_length=20_000)],
                       answer: Annotated[str, Form(max_length=20_000)]) -> Response:
    who.require("faq")
    try:
        async with get_database(request).unit_of_work() as session:
            entry = await kb.create_entry(session, data=FaqEntryIn(language=language, questions=_lines(questions),
                                                                   answer=answer, status="draft"), author=who.actor)
            await kb.save_draft(session, entry_id=entry.id, questions=entry.questions, answer=entry.answer,
                                author=who.actor, expected_revision=0, seen_version=entry.version)
            await accounts.record(session, actor=who.actor, area="faq", action="entry created",
                                  subject=f"FAQ #{entry.id} ({entry.language})")
            entry_id = entry.id
    except ShopTalkError as error:
        return render(request, "faq_new.html", {"form": {"language": language, "questions": questions,
                                                         "answer": answer}, "names": LANGUAGE_NAMES,
                                                "error": _faq_field(error)}, status=error.status, who=who)
    return redirect(f"/backoffice/faq/{entry_id}", notice="Saved as an unpublished draft.")


def _faq_field(error: ShopTalkError) -> dict[str, Any]:
    shown = field_error(error)
    if shown["field"] is None:
        shown["field"] = "questions" if "question" in error.code else "answer" if "answer" in error.code else None
    return shown


@router.get("/backoffice/faq/{entry_id}")
async def editor(request: Request, who: Viewer, entry_id: int) -> HTMLResponse:
    who.require("faq")
    return await _editor(request, who, entry_id)


@router.post("/backoffice/faq/{entry_id}/draft")
async def save(request: Request, who: Editor, entry_id: int, questions: Annotated[str, Form(max_length=20_000)],
               answer: Annotated[str, Form(max_length=20_000)], revision: Annotated[int, Form()],
               seen_version: Annotated[int, Form()], action: Annotated[str, Form(max_length=10)] = "save") -> Response:
    """Save the draft, then (action) ask for review or publish it; a stale revision keeps the typed text."""
    who.require("faq")
    if action == "publish":
        who.require("faq_review")  # a 403 page before anything is saved
    try:
        if action not in ("save", "review", "publish"):
            raise InvalidInput("Unknown action.", code="invalid_action")
        async with get_database(request).unit_of_work() as session:
            draft = await kb.save_draft(session, entry_id=entry_id, questions=_lines(questions), answer=answer,
                                        author=who.actor, expected_revision=revision, seen_version=seen_version)
            subject = f"FAQ #{entry_id}"
            if action == "review":
                await kb.request_review(session, entry_id=entry_id, author=who.actor,
                                        expected_revision=draft.revision)
                await accounts.record(session, actor=who.actor, area="faq", action="review requested",
                                      subject=subject)
            elif action == "publish":
                entry = await kb.publish_draft(session, entry_id=entry_id, author=who.actor,
                                               expected_revision=draft.revision)
                await accounts.record(session, actor=who.actor, area="faq", action="published", subject=subject,
                                      details={"version": entry.version})
            else:
                await accounts.record(session, actor=who.actor, area="faq", action="draft saved", subject=subject,
                                      details={"revision": draft.revision})
    except ShopTalkError as error:
        if error.status in (401, 403, 404):
            raise
        return await _editor(request, who, entry_id, status=error.status, error=_faq_field(error),
                             typed={"questions": questions, "answer": answer})
    notice = {"save": "Draft saved; shoppers still get the published answer.",
              "review": "Draft saved and sent for review.", "publish": "Published: shoppers get this answer now."}
    return redirect(f"/backoffice/faq/{entry_id}", notice=notice[action])


@router.post("/backoffice/faq/{entry_id}/discard")
async def discard(request: Request, who: Editor, entry_id: int, revision: Annotated[int, Form()]) -> Response:
    who.require("faq")
    async with get_database(request).unit_of_work() as session:
        await kb.discard_draft(session, entry_id=entry_id, expected_revision=revision)
        await accounts.record(session, actor=who.actor, area="faq", action="draft discarded",
                              subject=f"FAQ #{entry_id}")
    return redirect(f"/backoffice/faq/{entry_id}", notice="Draft discarded.")


@router.post("/backoffice/faq/{entry_id}/restore/{version}")
async def restore(request: Request, who: Editor, entry_id: int, version: int) -> Response:
    who.require("faq_review")  # a restore goes live at once, like a publish
    async with get_database(request).unit_of_work() as session:
        entry = await kb.restore_version(session, entry_id=entry_id, version=version, author=who.actor)
        await accounts.record(session, actor=who.actor, area="faq", action="restored", subject=f"FAQ #{entry_id}",
                              details={"from_version": version, "version": entry.version})
    return redirect(f"/backoffice/faq/{entry_id}", notice=f"Version {version} restored as version {entry.version}.")


@router.post("/backoffice/faq/{entry_id}/translations")
async def translate(request: Request, who: Editor, entry_id: int, language: Annotated[str, Form(max_length=8)],
                    questions: Annotated[str, Form(max_length=20_000)],
                    answer: Annotated[str, Form(max_length=20_000)]) -> Response:
    """Add the missing translation as an unpublished entry with a draft (published through review)."""
    who.require("faq")
    try:
        async with get_database(request).unit_of_work() as session:
            entry = await kb.translate_entry(session, entry_id=entry_id, author=who.actor, data=TranslationIn(
                language=language, questions=_lines(questions), answer=answer, status="draft"))
            await kb.save_draft(session, entry_id=entry.id, questions=entry.questions, answer=entry.answer,
                                author=who.actor, expected_revision=0, seen_version=entry.version)
            await accounts.record(session, actor=who.actor, area="faq", action="translation added",
                                  subject=f"FAQ #{entry.id} ({entry.language})", details={"of": entry_id})
            new_id = entry.id
    except ShopTalkError as error:
        if error.status in (401, 403, 404):
            raise
        return await _editor(request, who, entry_id, status=error.status, error=_faq_field(error),
                             translation={"language": language, "questions": questions, "answer": answer})
    return redirect(f"/backoffice/faq/{new_id}", notice="Translation saved as a draft; publish it or ask for review.")


@router.get("/backoffice/faq/export/{name}")
async def export(request: Request, who: Viewer, name: str) -> Response:
    """The FAQ as `faq.csv` or `faq.json` (the import's format)."""
    who.require("faq")
    if name not in ("faq.csv", "faq.json"):
        raise NotFound("Export as faq.csv or faq.json.")
    async with get_database(request).sessions() as session:
        records = await kb.export_entries(session)
    if name == "faq.csv":
        return Response(to_csv(records), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="faq.csv"'})
    return Response(to_json(records), media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="faq.json"'})


@router.post("/backoffice/faq/import")
async def import_file(request: Request, who: Editor, file: UploadFile) -> Response:
    """All or nothing, as the API's import: a bad row rejects the file and each bad row is listed. Imported
    entries go live as their `status` column says, so importing is a reviewer's action."""
    who.require("faq_review")
    try:
        raw = await file.read(MAX_IMPORT_BYTES + 1)
        if len(raw) > MAX_IMPORT_BYTES:
            raise InvalidInput(f"The file is over {MAX_IMPORT_BYTES // 1_000_000} MB; split it.",
                               code="import_too_large", field="file")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("The file must be UTF-8 text.", code="not_utf8", field="file") from None
        row_errors: list[dict[str, Any]] = []
        if (file.filename or "").lower().endswith(".json"):
            records = parse_json(text)
        else:
            records, row_errors = parse_csv(text)
        async with get_database(request).unit_of_work() as session:
            report = await kb.import_entries(session, records=records, row_errors=row_errors, author=who.actor)
            await accounts.record(session, actor=who.actor, area="faq", action="imported",
                                  subject=file.filename or "file", details=report.model_dump())
    except ShopTalkError as error:
        if error.status in (401, 403):
            raise
        rows = error.extra.get("errors") or []
        listed = "; ".join(f"row {e['row']}: {e['detail']}" for e in rows[:20])
        return redirect("/backoffice/faq", notice=f"Nothing imported. {error.detail} {listed}".strip())
    return redirect("/backoffice/faq", notice=f"Imported: {report.created} new, {report.updated} updated, "
                                               f"{report.unchanged} unchanged.")
