"""The agent console: the page at /agent and its REST API under /api/v1/agent (session cookie + CSRF header).

Sign in with POST /api/v1/agent/session; the response sets an HttpOnly SameSite=Strict cookie and returns
the session's CSRF token, which every state-changing request must echo in the X-CSRF-Token header.
"""
from __future__ import annotations

import asyncio
import json
import re
from functools import cache
from html import escape
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from api import accounts
from api.deps import get_database, get_settings_dep
from api.errors import reader_locale
from api.http.agent.realtime import events_of
from api.pages import PAGES_DIR
from api.params import PathId, QueryId
from bot import handoff, i18n
from bot.channels import whatsapp
from bot.handoff.errors import NotSupervisor
from bot.handoff.models import Agent
from bot.messages import ProductCard
from kit.errors import NotFound, ShopTalkError
from kit.fields import MAX_ID, RowId
from kit.settings import Settings

router = APIRouter(tags=["agent console"])

SESSION_COOKIE = "shoptalk_agent"
CSRF_HEADER = "X-CSRF-Token"
PAGES = PAGES_DIR / "agent"
STATIC = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; connect-src 'self'; style-src 'self'; "
                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _secret(request: Request) -> str:
    return get_settings_dep(request).security.secret_key.get_secret_value()


class SignedIn:
    """The agent behind the request's session cookie (loaded fresh in each unit of work by id)."""

    def __init__(self, agent: Agent, token: str) -> None:
        self.agent_id = agent.id
        self.shop_id = agent.shop_id
        self.role = agent.role
        self.token = token


async def signed_in_account(request: Request) -> SignedIn:
    """Any account's session (the session itself: who am I, sign out)."""
    token = request.cookies.get(SESSION_COOKIE)
    async with get_database(request).unit_of_work() as session:
        agent = await handoff.agents.agent_for_session(session, token=token)
    assert token is not None
    return SignedIn(agent, token)


async def account_with_csrf(request: Request) -> SignedIn:
    who = await signed_in_account(request)
    handoff.agents.check_csrf(session_token=who.token, given=request.headers.get(CSRF_HEADER), secret=_secret(request))
    return who


async def signed_in(request: Request) -> SignedIn:
    """A console session: a role with the console in `api.accounts.PERMISSIONS` (staff get 403, nothing done)."""
    who = await signed_in_account(request)
    accounts.require(who.role, "console")
    return who


async def signed_in_with_csrf(request: Request) -> SignedIn:
    """For every state-changing request: a valid console session and its CSRF token in the header."""
    who = await account_with_csrf(request)
    accounts.require(who.role, "console")
    return who


Reader = Annotated[SignedIn, Depends(signed_in)]
Writer = Annotated[SignedIn, Depends(signed_in_with_csrf)]
AccountReader = Annotated[SignedIn, Depends(signed_in_account)]
AccountWriter = Annotated[SignedIn, Depends(account_with_csrf)]


async def _agent(session: AsyncSession, who: SignedIn) -> Agent:
    agent = await session.get(Agent, who.agent_id)
    assert agent is not None
    return agent


async def _changed(request: Request, shop_id: int, conversation_id: int | None = None) -> None:
    events = events_of(request.app)
    await events.publish(shop_id, {"type": "inbox"})
    if conversation_id is not None:
        await events.publish(shop_id, {"type": "conversation", "conversation_id": conversation_id})


# ---------------------------------------------------------------------------------------------- page

@router.get("/agent", response_class=HTMLResponse, include_in_schema=False)
async def console_page(request: Request) -> Response:
    """The console (its sign-in form when nobody is signed in); a 403 page for an account whose role has no console
    (staff), in the language the browser asks for."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            async with get_database(request).unit_of_work() as session:
                agent = await handoff.agents.agent_for_session(session, token=token)
            accounts.require(agent.role, "console")
        except accounts.NotAllowed:
            locale = console_locale(request)
            html = (PAGES / "forbidden.html").read_text(encoding="utf-8")
            for key in ("forbidden_title", "forbidden_text", "forbidden_back_office", "sign_out"):
                html = html.replace("{{" + key + "}}", escape(i18n.t(locale, f"console.{key}")))
            return HTMLResponse(html.replace("{{lang}}", locale), status_code=403, headers=SECURITY_HEADERS)
        except ShopTalkError:  # an expired session: the sign-in form
            pass
    return HTMLResponse(console_html(console_locale(request)), headers={**SECURITY_HEADERS, "Vary": "Accept-Language"})


@cache
def console_html(locale: str) -> str:
    """The console page in `locale`: its labels from the catalogs (`console.*`), and the words the script shows
    inlined as JSON data (not script: the CSP runs none)."""
    html = (PAGES / "index.html").read_text(encoding="utf-8")
    strings = console_strings(locale)
    data = json.dumps(strings, ensure_ascii=False).replace("<", "\\u003c")
    html = html.replace("{{STRINGS}}", data).replace("{{lang}}", locale)
    return re.sub(r"\{\{(\w+)\}\}", lambda found: escape(strings[found.group(1)]), html)


def console_strings(locale: str) -> dict[str, str]:
    """Every `console.*` text of the catalogs in `locale` (English where that catalog lacks one), placeholders
    unfilled (the script fills them)."""
    return {key.removeprefix("console."): i18n.template(locale, key) for key in i18n.keys_with_prefix("console.")}


def console_locale(request: Request) -> str:
    """The console's language: the browser's first supported language (Accept-Language), else English; the same
    rule translates the errors its API calls answer with (api.errors.reader_locale)."""
    return reader_locale(request)


@router.get("/agent/static/{name}", include_in_schema=False)
async def console_asset(name: str) -> FileResponse:
    if name not in STATIC:
        raise NotFound("No such file.")
    return FileResponse(PAGES / name, media_type=STATIC[name], headers={"X-Content-Type-Options": "nosniff"})


# ------------------------------------------------------------------------------------------ sessions

class AgentOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    shop_id: int
    available: bool


def _agent_out(agent: Agent) -> AgentOut:
    return AgentOut(id=agent.id, email=agent.email, name=agent.name, role=agent.role, shop_id=agent.shop_id,
                    available=agent.available)


# Sign-in, the current session and sign-out are api/http/accounts.py (one session for the console and the back
# office).


class AvailabilityBody(BaseModel):
    available: bool


@router.put("/api/v1/agent/availability", response_model=AgentOut, summary="Available for round-robin or not")
async def set_availability(body: AvailabilityBody, who: Writer, request: Request) -> AgentOut:
    async with get_database(request).unit_of_work() as session:
        agent = await handoff.agents.set_available(session, agent=await _agent(session, who), available=body.available)
        out = _agent_out(agent)
    await _changed(request, who.shop_id)
    return out


@router.get("/api/v1/agent/agents", response_model=list[handoff.agents.AgentCard], summary="Agents of my shop")
async def agents(who: Reader, request: Request) -> list[handoff.agents.AgentCard]:
    async with get_database(request).unit_of_work() as session:
        return await handoff.agents.list_agents(session, shop_id=who.shop_id)


# --------------------------------------------------------------------------------------------- inbox

@router.get("/api/v1/agent/inbox", response_model=list[handoff.inbox.InboxItem], summary="One inbox view")
async def inbox(who: Reader, request: Request,
                view: Annotated[Literal["queue", "unassigned", "mine", "open", "resolved", "bot"], Query()] = "queue",
                ) -> list[handoff.inbox.InboxItem]:
    async with get_database(request).unit_of_work() as session:
        return await handoff.inbox.inbox(session, agent=await _agent(session, who), view=view)


@router.get("/api/v1/agent/inbox/counts", response_model=list[handoff.inbox.ViewCount],
            summary="Conversations and unread shopper messages per inbox view (for the badges)")
async def inbox_counts(who: Reader, request: Request) -> list[handoff.inbox.ViewCount]:
    async with get_database(request).unit_of_work() as session:
        return await handoff.inbox.view_counts(session, agent=await _agent(session, who))


class ReadBody(BaseModel):
    message_id: int = Field(ge=0, le=MAX_ID)  # beyond MAX_ID: no such message (and an INTEGER overflow)


@router.post("/api/v1/agent/conversations/{conversation_id}/read", status_code=204,
             summary="I have seen this conversation up to message_id (unread counts drop)")
async def mark_read(conversation_id: PathId, body: ReadBody, who: Writer, request: Request) -> Response:
    async with get_database(request).unit_of_work() as session:
        await handoff.inbox.mark_read(session, agent=await _agent(session, who), conversation_id=conversation_id,
                                      message_id=body.message_id)
    return Response(status_code=204)


AgentLocale = Annotated[str | None, Query(max_length=35, description="The agent's language tag, e.g. en-GB, zh-CN "
                                                                      "(money and country names); default en")]


@router.get("/api/v1/agent/conversations/{conversation_id}/canned/{canned_id}",
            response_model=handoff.canned.FilledCanned,
            summary="A canned response filled from this conversation, with the variables it has no value for")
async def filled_canned(conversation_id: PathId, canned_id: PathId, who: Reader, request: Request,
                        locale: AgentLocale = None) -> handoff.canned.FilledCanned:
    async with get_database(request).unit_of_work() as session:
        agent = await _agent(session, who)
        values = await handoff.views.conversation_values(session, agent=agent, conversation_id=conversation_id,
                                                         locale=handoff.views.agent_locale(locale))
        return await handoff.canned.canned_for_conversation(session, agent=agent, conversation_id=conversation_id,
                                                            canned_id=canned_id, values=values)


@router.get("/api/v1/agent/conversations/{conversation_id}", response_model=handoff.views.ConversationView,
            summary="History with intents, the bot's draft, notes and the shopper panel")
async def conversation(conversation_id: PathId, who: Reader, request: Request,
                       locale: AgentLocale = None) -> handoff.views.ConversationView:
    async with get_database(request).unit_of_work() as session:
        view = await handoff.views.conversation_view(session, agent=await _agent(session, who),
                                                     conversation_id=conversation_id,
                                                     locale=handoff.views.agent_locale(locale))
        if view.channel == whatsapp.CHANNEL:
            window = await whatsapp.reply_window(session, sender_id=view.sender_id,
                                                 settings=get_settings_dep(request).whatsapp)
            view.reply_window = handoff.views.ReplyWindow(open=window.open, closes_at=window.closes_at,
                                                          templates=window.templates)
        return view


class ThreadOut(BaseModel):
    conversation_id: int
    status: str
    assignee_id: int | None


@router.post("/api/v1/agent/conversations/{conversation_id}/take", response_model=ThreadOut,
             summary="Take the conversation (the bot goes silent); 409 when another agent has it")
async def take(conversation_id: PathId, who: Writer, request: Request) -> ThreadOut:
    async with get_database(request).unit_of_work() as session:
        thread = await handoff.inbox.take(session, agent=await _agent(session, who), conversation_id=conversation_id)
        out = ThreadOut(conversation_id=conversation_id, status=thread.status, assignee_id=thread.assignee_id)
    _wake_delivery(request)  # the shopper's join / hand-back notice goes out at once
    await _changed(request, who.shop_id, conversation_id)
    return out


class AssignBody(BaseModel):
    agent_id: RowId


@router.post("/api/v1/agent/conversations/{conversation_id}/assign", response_model=ThreadOut,
             summary="Assign (supervisor) or transfer (owner) to another agent")
async def assign(conversation_id: PathId, body: AssignBody, who: Writer, request: Request) -> ThreadOut:
    async with get_database(request).unit_of_work() as session:
        thread = await handoff.inbox.assign(session, by=await _agent(session, who), conversation_id=conversation_id,
                                            agent_id=body.agent_id)
        out = ThreadOut(conversation_id=conversation_id, status=thread.status, assignee_id=thread.assignee_id)
    _wake_delivery(request)  # the shopper's join / hand-back notice goes out at once
    await _changed(request, who.shop_id, conversation_id)
    return out


@router.post("/api/v1/agent/conversations/{conversation_id}/hand-back", response_model=ThreadOut,
             summary="Give the conversation back to the bot")
async def hand_back(conversation_id: PathId, who: Writer, request: Request) -> ThreadOut:
    async with get_database(request).unit_of_work() as session:
        thread = await handoff.inbox.hand_back(session, agent=await _agent(session, who),
                                               conversation_id=conversation_id)
        out = ThreadOut(conversation_id=conversation_id, status=thread.status, assignee_id=thread.assignee_id)
    _wake_delivery(request)  # the shopper's join / hand-back notice goes out at once
    await _changed(request, who.shop_id, conversation_id)
    return out


class ResolveBody(BaseModel):
    ask_csat: bool = True


@router.post("/api/v1/agent/conversations/{conversation_id}/resolve", response_model=ThreadOut,
             summary="Resolve (asks the shopper for a 1-5 rating); 409 when already resolved")
async def resolve(conversation_id: PathId, who: Writer, request: Request, body: ResolveBody | None = None) -> ThreadOut:
    async with get_database(request).unit_of_work() as session:
        thread = await handoff.inbox.resolve(session, agent=await _agent(session, who), conversation_id=conversation_id,
                                             ask_csat=body.ask_csat if body else True)
        out = ThreadOut(conversation_id=conversation_id, status=thread.status, assignee_id=thread.assignee_id)
    _wake_delivery(request)  # the shopper's join / hand-back notice goes out at once
    await _changed(request, who.shop_id, conversation_id)
    return out


class ReplyBody(BaseModel):
    text: str = Field(max_length=handoff.replies.MAX_REPLY_CHARS + 100)


class DraftBody(BaseModel):
    text: str | None = Field(default=None, max_length=handoff.replies.MAX_REPLY_CHARS + 100)


class SentOut(BaseModel):
    message_id: int


@router.post("/api/v1/agent/conversations/{conversation_id}/replies", response_model=SentOut, status_code=201,
             summary="Send a reply to the shopper on their own channel (through the outbox)")
async def reply(conversation_id: PathId, body: ReplyBody, who: Writer, request: Request) -> SentOut:
    async with get_database(request).unit_of_work() as session:
        message_id = await handoff.replies.reply(session, agent=await _agent(session, who),
                                                 conversation_id=conversation_id, text=body.text)
    _wake_delivery(request)
    await _changed(request, who.shop_id, conversation_id)
    return SentOut(message_id=message_id)


@router.post("/api/v1/agent/conversations/{conversation_id}/draft/send", response_model=SentOut, status_code=201,
             summary="Send the bot's draft as is (no text) or edited")
async def send_draft(conversation_id: PathId, body: DraftBody, who: Writer, request: Request) -> SentOut:
    async with get_database(request).unit_of_work() as session:
        message_id = await handoff.drafts.send_draft(session, agent=await _agent(session, who),
                                                     conversation_id=conversation_id, text=body.text)
    _wake_delivery(request)
    await _changed(request, who.shop_id, conversation_id)
    return SentOut(message_id=message_id)


def _wake_delivery(request: Request) -> None:
    # The channels' delivery loop in this process sends at once instead of at its next poll.
    runtime = getattr(getattr(request.app.state, "channels", None), "runtime", None)
    wakeup = getattr(runtime, "outbox_wakeup", None)
    if wakeup is not None:
        wakeup.set()


@router.get("/api/v1/agent/catalog", response_model=list[ProductCard],
            summary="Search the catalog from the reply box: the cards the shopper of this conversation would get")
async def catalog_search(who: Reader, request: Request, q: Annotated[str, Query(max_length=200)],
                         conversation_id: QueryId) -> list[ProductCard]:
    async with get_database(request).unit_of_work() as session:
        return await handoff.catalog.search_cards(session, agent=await _agent(session, who),
                                                  conversation_id=conversation_id, query=q,
                                                  default_currency=get_settings_dep(request).locale.default_currency)


class CardsBody(BaseModel):
    skus: list[str] = Field(min_length=1, max_length=handoff.catalog.MAX_CARDS)
    text: str | None = Field(default=None, max_length=handoff.replies.MAX_REPLY_CHARS + 100)


@router.post("/api/v1/agent/conversations/{conversation_id}/cards", response_model=SentOut, status_code=201,
             summary="Send product cards to the shopper (with your words or a default line in their language)")
async def send_cards(conversation_id: PathId, body: CardsBody, who: Writer, request: Request) -> SentOut:
    async with get_database(request).unit_of_work() as session:
        message_id = await handoff.catalog.send_cards(session, agent=await _agent(session, who),
                                                      conversation_id=conversation_id, skus=body.skus, text=body.text,
                                                      default_currency=get_settings_dep(request).locale.default_currency)
    _wake_delivery(request)
    await _changed(request, who.shop_id, conversation_id)
    return SentOut(message_id=message_id)


class CartLinkBody(BaseModel):
    lines: list[handoff.cart_links.CartLinkLineIn] = Field(min_length=1, max_length=handoff.cart_links.MAX_LINES)


class CartLinkSentOut(BaseModel):
    message_id: int
    draft: handoff.cart_links.CartLinkDraft


@router.post("/api/v1/agent/conversations/{conversation_id}/cart-link/preview",
             response_model=handoff.cart_links.CartLinkDraft,
             summary="Price a draft cart for the shopper: lines and total in their currency, each problem named")
async def preview_cart_link(conversation_id: PathId, body: CartLinkBody, who: Writer,
                            request: Request) -> handoff.cart_links.CartLinkDraft:
    async with get_database(request).unit_of_work() as session:
        return await handoff.cart_links.preview(session, agent=await _agent(session, who),
                                                conversation_id=conversation_id, lines=body.lines,
                                                default_currency=get_settings_dep(request).locale.default_currency)


@router.post("/api/v1/agent/conversations/{conversation_id}/cart-link", response_model=CartLinkSentOut,
             status_code=201, summary="Send the shopper a signed cart link (their cart filled once they open it)")
async def send_cart_link(conversation_id: PathId, body: CartLinkBody, who: Writer,
                         request: Request) -> CartLinkSentOut:
    async with get_database(request).unit_of_work() as session:
        message_id, draft = await handoff.cart_links.send_link(
            session, agent=await _agent(session, who), conversation_id=conversation_id, lines=body.lines,
            default_currency=get_settings_dep(request).locale.default_currency, secret=_secret(request))
    _wake_delivery(request)
    await _changed(request, who.shop_id, conversation_id)
    return CartLinkSentOut(message_id=message_id, draft=draft)


class NoteBody(BaseModel):
    body: str = Field(max_length=handoff.notes.MAX_NOTE_CHARS + 100)


@router.post("/api/v1/agent/conversations/{conversation_id}/notes", response_model=handoff.notes.NoteView,
             status_code=201, summary="A private note (never sent to the shopper)")
async def add_note(conversation_id: PathId, body: NoteBody, who: Writer, request: Request) -> handoff.notes.NoteView:
    async with get_database(request).unit_of_work() as session:
        agent = await _agent(session, who)
        note = await handoff.notes.add_note(session, agent=agent, conversation_id=conversation_id, body=body.body)
        out = handoff.notes.NoteView(id=note.id, agent_name=agent.name, body=note.body, created_at=note.created_at)
    await _changed(request, who.shop_id, conversation_id)
    return out


# ----------------------------------------------------------------------------------- canned responses

class CannedIn(BaseModel):
    shortcut: str = Field(max_length=40)
    body: str = Field(max_length=handoff.replies.MAX_REPLY_CHARS + 100)


class CannedOut(BaseModel):
    id: int
    shortcut: str
    body: str


@router.get("/api/v1/agent/canned", response_model=list[CannedOut], summary="Canned responses of my shop")
async def canned(who: Reader, request: Request) -> list[CannedOut]:
    async with get_database(request).unit_of_work() as session:
        return [CannedOut(id=c.id, shortcut=c.shortcut, body=c.body)
                for c in await handoff.canned.canned_responses(session, shop_id=who.shop_id)]


@router.post("/api/v1/agent/canned", response_model=CannedOut, status_code=201,
             summary="Add a canned response (supervisor); variables {name}, {order_number}, {agent_name}")
async def add_canned(body: CannedIn, who: Writer, request: Request) -> CannedOut:
    async with get_database(request).unit_of_work() as session:
        item = await handoff.canned.create_canned(session, agent=await _agent(session, who), shortcut=body.shortcut,
                                                  body=body.body)
        out = CannedOut(id=item.id, shortcut=item.shortcut, body=item.body)
    await events_of(request.app).publish(who.shop_id, {"type": "settings"})
    return out


@router.put("/api/v1/agent/canned/{canned_id}", response_model=CannedOut,
            summary="Change a canned response's shortcut or text (supervisor)")
async def edit_canned(canned_id: PathId, body: CannedIn, who: Writer, request: Request) -> CannedOut:
    async with get_database(request).unit_of_work() as session:
        item = await handoff.canned.update_canned(session, agent=await _agent(session, who), canned_id=canned_id,
                                                  shortcut=body.shortcut, body=body.body)
        out = CannedOut(id=item.id, shortcut=item.shortcut, body=item.body)
    await events_of(request.app).publish(who.shop_id, {"type": "settings"})
    return out


@router.delete("/api/v1/agent/canned/{canned_id}", status_code=204, summary="Delete a canned response (supervisor)")
async def remove_canned(canned_id: PathId, who: Writer, request: Request) -> Response:
    async with get_database(request).unit_of_work() as session:
        await handoff.canned.delete_canned(session, agent=await _agent(session, who), canned_id=canned_id)
    await events_of(request.app).publish(who.shop_id, {"type": "settings"})
    return Response(status_code=204)


# ------------------------------------------------------------------------------------------ learning

class CorrectionBody(BaseModel):
    intent: str = Field(max_length=80)


class CorrectionOut(BaseModel):
    message_id: int
    text: str
    predicted_intent: str | None
    intent: str


@router.post("/api/v1/agent/messages/{message_id}/intent", response_model=CorrectionOut,
             summary="Correct the intent of a shopper message (training example for the next `nlu train`)")
async def correct_intent(message_id: PathId, body: CorrectionBody, who: Writer, request: Request) -> CorrectionOut:
    database = get_database(request)
    async with database.unit_of_work() as session:
        item = await handoff.learning.correct_intent(session, agent=await _agent(session, who), message_id=message_id,
                                                     intent=body.intent)
        out = CorrectionOut(message_id=item.message_id, text=item.text, predicted_intent=item.predicted_intent,
                            intent=item.intent)
    async with database.unit_of_work() as session:  # after commit: the file only holds stored corrections
        await handoff.learning.write_corrections(session, path=corrections_path(get_settings_dep(request)))
    return out


def corrections_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / "nlu" / "corrections.yml"


class FaqDraftBody(BaseModel):
    question: str = Field(max_length=600)
    answer: str = Field(max_length=handoff.replies.MAX_REPLY_CHARS + 100)
    language: str = Field(default="en", max_length=16)


class FaqDraftOut(BaseModel):
    faq_entry_id: int
    question: str


@router.post("/api/v1/agent/faq-drafts", response_model=FaqDraftOut, status_code=201,
             summary="Save an answer as a draft FAQ entry for the merchant to publish")
async def faq_draft(body: FaqDraftBody, who: Writer, request: Request) -> FaqDraftOut:
    async with get_database(request).unit_of_work() as session:
        draft = await handoff.learning.save_faq_draft(session, agent=await _agent(session, who), question=body.question,
                                                      answer=body.answer, language=body.language)
        return FaqDraftOut(faq_entry_id=draft.faq_entry_id, question=draft.question)


# ------------------------------------------------------------------------------------- supervisor views

@router.get("/api/v1/agent/csat", response_model=list[handoff.csat.CsatStat], summary="CSAT results per agent")
async def csat(who: Reader, request: Request) -> list[handoff.csat.CsatStat]:
    async with get_database(request).unit_of_work() as session:
        return await handoff.csat.csat_per_agent(session, shop_id=who.shop_id)


@router.get("/api/v1/agent/rules", response_model=handoff.rules.EscalationRules, summary="Escalation rules of my shop")
async def rules(who: Reader, request: Request) -> handoff.rules.EscalationRules:
    async with get_database(request).unit_of_work() as session:
        return await handoff.rules.rules_of(session, shop_id=who.shop_id)


@router.put("/api/v1/agent/rules", response_model=handoff.rules.EscalationRules,
            summary="Change the escalation triggers, mixed replies, auto-assignment and opening hours (supervisor)")
async def save_rules(body: handoff.rules.EscalationRules, who: Writer,
                     request: Request) -> handoff.rules.EscalationRules:
    if not handoff.agents.supervises(who.role):
        raise NotSupervisor("Only a supervisor can change the escalation rules.")
    async with get_database(request).unit_of_work() as session:
        agent = await _agent(session, who)
        saved, _ = await accounts.save_rules_audited(session, shop_id=who.shop_id, new=body,
                                                  actor=f"{agent.name} <{agent.email}>")
    await events_of(request.app).publish(who.shop_id, {"type": "settings"})
    return saved


@router.get("/api/v1/agent/intents", response_model=list[str],
            summary="Intent names the shop's NLU knows (suggestions for per-intent rules and corrections)")
async def intents(who: Reader) -> list[str]:
    return list(await asyncio.to_thread(_known_intents))  # read once per process, off the event loop


@cache
def _known_intents() -> tuple[str, ...]:
    from nlu.service import DEFAULT_DATA_DIR
    from nlu.training_data import load_training_data

    return tuple(load_training_data([DEFAULT_DATA_DIR]).intents)
