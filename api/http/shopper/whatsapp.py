"""The WhatsApp Cloud API webhook (GET verification, signed POSTs) and the 24-hour window for the agent console."""
from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from api.chat_runtime import channels_of
from api.deps import get_database
from api.http.agent.console import Reader, SignedIn, Writer
from api.params import PathId
from bot import handoff
from bot.channels import whatsapp
from bot.channels.whatsapp import SIGNATURE_HEADER, WhatsAppChannel
from bot.conversations import service as conversations
from bot.conversations.models import Conversation
from bot.handoff.models import Agent
from kit.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from kit.settings import Settings

router = APIRouter(tags=["channels"])


def _channel(request: Request) -> WhatsAppChannel:
    channel = channels_of(request).whatsapp
    if channel is None:
        raise NotFound("The WhatsApp channel is not enabled on this shop.", code="whatsapp_disabled")
    return channel


@router.get("/webhooks/whatsapp", response_class=PlainTextResponse,
            summary="WhatsApp webhook verification (hub.mode, hub.verify_token, hub.challenge)",
            responses={403: {"description": "Wrong verify token"}, 404: {"description": "Channel not enabled"}})
async def whatsapp_verify(request: Request) -> PlainTextResponse:
    settings: Settings = request.app.state.settings
    _channel(request)
    token = settings.whatsapp.verify_token
    if token is None:
        raise NotFound("No WhatsApp verify token is configured.", code="whatsapp_disabled")
    challenge = whatsapp.subscription_challenge(dict(request.query_params), token.get_secret_value())
    if challenge is None:
        raise Forbidden("hub.mode or hub.verify_token is wrong.", code="whatsapp_verify_token_invalid")
    return PlainTextResponse(challenge)


@router.post("/webhooks/whatsapp", summary="WhatsApp Cloud API webhook (X-Hub-Signature-256 checked)",
             responses={400: {"description": "Not a WhatsApp webhook"}, 401: {"description": "No signature"},
                        403: {"description": "Wrong signature"}, 404: {"description": "Channel not enabled"}})
async def whatsapp_webhook(request: Request) -> dict[str, bool]:
    settings: Settings = request.app.state.settings
    channel = _channel(request)
    secret = settings.whatsapp.app_secret
    if secret is None:
        raise NotFound("No WhatsApp app secret is configured: webhooks cannot be verified.", code="whatsapp_disabled")
    body = await request.body()
    header = request.headers.get(SIGNATURE_HEADER)
    if header is None:
        raise Unauthorized(f"The {SIGNATURE_HEADER} header is missing.", code="whatsapp_signature_missing")
    if not whatsapp.signature_valid(secret.get_secret_value(), header, body):
        raise Forbidden(f"The {SIGNATURE_HEADER} header does not match the body.", code="whatsapp_signature_invalid")
    try:
        batch = whatsapp.parse_webhook(json.loads(body))
    except ValueError as exc:
        raise InvalidInput("The body is not a WhatsApp Business Account webhook.", code="invalid_update",
                           status=400) from exc
    runtime = channels_of(request).runtime
    if batch.statuses or batch.messages:
        async with runtime.unit_of_work() as session:
            await whatsapp.record_statuses(session, batch.statuses)
            media_queued = await whatsapp.note_inbound(session, batch.messages)
        if media_queued:  # the shopper's files are fetched in the background (media.whatsapp)
            runtime.outbox_wakeup.set()
    for inbound in batch.messages:
        await runtime.handle(await whatsapp.resolve_payload(channel.database, inbound))
    return {"ok": True}


class WindowView(BaseModel):
    conversation_id: int
    open: bool = Field(description="Free-form messages may be sent: the shopper wrote within the window.")
    closes_at: datetime | None = Field(description="When the window closes (or closed); null: never opened.")
    templates: list[str] = Field(description="The registered templates the console can offer while it is closed.")


async def _whatsapp_conversation(session: AsyncSession, who: SignedIn, conversation_id: int) -> Conversation:
    agent = await session.get(Agent, who.agent_id)
    assert agent is not None
    await handoff.inbox.thread_of_shop(session, agent, conversation_id)  # another shop's: 404
    conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
    if conversation.channel != whatsapp.CHANNEL:
        raise NotFound(f"Conversation {conversation_id} is not a WhatsApp conversation.", code="not_whatsapp")
    return conversation


@router.get("/api/v1/agent/conversations/{conversation_id}/whatsapp-window", response_model=WindowView,
            tags=["agent"], summary="WhatsApp's 24-hour customer-service window of this conversation")
async def whatsapp_window(conversation_id: PathId, who: Reader, request: Request) -> WindowView:
    channel = _channel(request)
    async with get_database(request).unit_of_work() as session:
        conversation = await _whatsapp_conversation(session, who, conversation_id)
        sender_id = conversation.sender_id
    window = await channel.window(sender_id)
    return WindowView(conversation_id=conversation_id, open=window.open, closes_at=window.closes_at,
                      templates=window.templates)


class TemplateBody(BaseModel):
    name: str = Field(min_length=1, max_length=512)
    parameters: list[str] = Field(default_factory=list, max_length=20)


class TemplateSent(BaseModel):
    message_id: int


@router.post("/api/v1/agent/conversations/{conversation_id}/whatsapp-template", response_model=TemplateSent,
             status_code=201, tags=["agent"],
             summary="Send a registered WhatsApp template (the only thing allowed outside the 24-hour window)")
async def whatsapp_template(conversation_id: PathId, body: TemplateBody, who: Writer, request: Request
                            ) -> TemplateSent:
    channel = _channel(request)
    template = (await channel.templates()).get(body.name)
    if template is None:
        raise InvalidInput(f"No registered template {body.name!r}.", code="whatsapp_template_unknown")
    if not template.seeded and len(body.parameters) != template.parameter_count:
        raise InvalidInput(f"The template {body.name!r} takes {template.parameter_count} parameters.",
                           code="whatsapp_template_parameters", field="parameters")
    async with get_database(request).unit_of_work() as session:
        conversation = await _whatsapp_conversation(session, who, conversation_id)
        message_id = await whatsapp.queue_template(session, conversation=conversation, name=body.name,
                                                   parameters=body.parameters)
    channels_of(request).runtime.outbox_wakeup.set()
    return TemplateSent(message_id=message_id)
