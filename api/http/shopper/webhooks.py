"""Channel webhooks: Telegram (secret-checked) and the Rasa-compatible REST channel (channel token or signature).

Both hand messages to the chat runtime the app's lifespan built (api.chat_runtime).
"""
from __future__ import annotations

import hmac
import json
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from aiogram.types import Update
from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from api.auth import verify_channel_token
from api.chat_runtime import channels_of
from api.throttle import mark_client, throttle_rest_client
from bot.channels.rest import (
    SIGNATURE_HEADER,
    RestMessageIn,
    RestReply,
    SignatureError,
    check_signature,
    to_inbound,
    to_rasa,
)
from kit.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from kit.settings import Settings

router = APIRouter(tags=["channels"])

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


# ---- Telegram ----------------------------------------------------------------------------------------

def _check_secret(request: Request, settings: Settings) -> None:
    expected = settings.security.telegram_webhook_secret
    if expected is None:
        raise NotFound("The Telegram webhook is not enabled on this shop.", code="telegram_webhook_disabled")
    given = request.headers.get(SECRET_HEADER)
    if given is None:
        raise Unauthorized(f"The {SECRET_HEADER} header is missing.", code="telegram_secret_missing")
    if not hmac.compare_digest(given.encode("utf-8"), expected.get_secret_value().encode("utf-8")):
        raise Forbidden(f"The {SECRET_HEADER} header does not match.", code="telegram_secret_invalid")


@router.post("/webhooks/telegram", summary="Telegram Bot API webhook (secret-token checked)",
             responses={400: {"description": "Not a Telegram update"}, 401: {"description": "No secret token"},
                        403: {"description": "Wrong secret token"}, 413: {"description": "Too large"}})
async def telegram_webhook(request: Request) -> dict[str, bool]:
    settings: Settings = request.app.state.settings
    _check_secret(request, settings)
    telegram = channels_of(request).telegram
    if telegram is None:
        raise NotFound("No Telegram bot token is configured.", code="telegram_webhook_disabled")
    try:
        data: Any = json.loads(await request.body())
    except ValueError as exc:
        raise InvalidInput("The request body is not valid JSON.", code="malformed_json", status=400) from exc
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        raise InvalidInput("The body is not a Telegram update.", code="invalid_update", status=400)
    try:
        update = Update.model_validate(data, context={"bot": telegram.bot})
    except ValidationError as exc:
        raise InvalidInput("The body is not a Telegram update.", code="invalid_update", status=400) from exc
    await telegram.feed(update)
    return {"ok": True}


# ---- Rasa-compatible REST ------------------------------------------------------------------------------

@router.get("/webhooks/rest/", summary="Rasa REST channel health")
async def rest_status() -> dict[str, str]:
    return {"status": "ok"}


@dataclass(frozen=True)
class RestClient:
    """Who posted to the REST channel: a channel API token (by name), a signed request, or anyone (open mode)."""

    via: Literal["token", "signature", "open"]
    name: str | None = None


async def require_rest_client(request: Request) -> RestClient:
    """The REST channel's credential check, before anything of the message reaches the engine: a bearer API
    token with role `channel` (or admin), or an X-ShopTalk-Signature over the raw body; open mode only in
    development (the settings refuse it elsewhere)."""
    settings: Settings = request.app.state.settings
    if settings.rest_channel.auth == "open":
        return RestClient(via="open")
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Send the channel token as 'Authorization: Bearer <token>'.", code="rest_token_invalid")
        principal = await verify_channel_token(request.app.state.database, token)
        mark_client(request, f"token:{principal.token_id}")  # throttled per credential, not per address
        return RestClient(via="token", name=principal.name)
    signature = request.headers.get(SIGNATURE_HEADER)
    if signature is None:
        raise Unauthorized(f"The REST channel needs 'Authorization: Bearer <channel token>' or a {SIGNATURE_HEADER} "
                           "header (see docs/channels.md).", code="rest_auth_missing")
    secret = settings.security.rest_channel_secret
    if secret is None:
        raise Unauthorized("Signed requests are not enabled on this shop (no REST channel secret is set).",
                           code="rest_signature_disabled")
    try:
        check_signature(secret.get_secret_value(), signature, await request.body(), now=time.time(),
                        tolerance_seconds=settings.rest_channel.signature_tolerance_seconds)
    except SignatureError as exc:
        raise Unauthorized(exc.detail, code=exc.code) from exc
    mark_client(request, "signature")  # one shop secret: every signed request is the shop's own server
    return RestClient(via="signature")


RestClientDep = Annotated[RestClient, Depends(require_rest_client)]


@router.post("/webhooks/rest/webhook", response_model=list[RestReply], response_model_exclude_none=True,
             summary="Rasa-compatible REST channel: one message in, the bot's replies out",
             responses={401: {"description": "No channel credential, or an unknown token or a wrong signature"},
                        403: {"description": "The API token's role may not post to chat channels"},
                        429: {"description": "Too many messages from this client or for this sender"}})
async def rest_webhook(body: RestMessageIn, request: Request, client: RestClientDep,
                       _throttled: Annotated[None, Depends(throttle_rest_client)]) -> list[RestReply]:
    inbound = to_inbound(body)
    result = await channels_of(request).runtime.handle(inbound, delivered_inline=True)
    return [to_rasa(reply) for reply in result.replies]
