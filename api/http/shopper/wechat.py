"""The WeChat Official Account webhook: URL verification (GET) and messages (POST, plain or safe mode).

The bot's answer goes back as the passive reply when it is ready within `wechat.passive_reply_seconds`
(WeChat waits 5 s, then retries the same MsgId); otherwise the answer "success" (WeChat shows nothing) is sent
at once and the replies, when ready, go by the customer-service API through the outbox.
"""
from __future__ import annotations

import asyncio
import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from api.chat_runtime import ChatChannels, channels_of
from bot import HandleResult
from bot.channels import media, wechat
from bot.channels.runtime import ChannelRuntime
from bot.channels.wechat import MessageInvalid, SignatureInvalid, WeChatChannel
from bot.messages import InboundMessage, OutboundMessage
from kit.db import Database
from kit.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from kit.outbox import NewEvent, enqueue_many
from kit.settings import WeChatSettings

router = APIRouter(tags=["channels"])
log = logging.getLogger(__name__)
XML = "application/xml"


def _channel(request: Request) -> WeChatChannel:
    channel = channels_of(request).wechat
    if channel is None:
        raise NotFound("The WeChat channel is not enabled on this shop.", code="wechat_disabled")
    return channel


def _verify(channel: WeChatChannel, params: dict[str, str], *extra: str, key: str = "signature") -> None:
    assert channel.settings.token is not None
    if not params.get(key):
        raise Unauthorized(f"The {key} query parameter is missing.", code="wechat_signature_missing")
    try:
        wechat.check_signature(channel.settings.token.get_secret_value(), params, *extra, key=key)
    except SignatureInvalid as exc:
        raise Forbidden(f"The {key} does not match.", code="wechat_signature_invalid") from exc


@router.get("/webhooks/wechat", response_class=PlainTextResponse,
            summary="WeChat URL verification (signature over token, timestamp, nonce; echostr back)",
            responses={401: {"description": "No signature"}, 403: {"description": "Wrong signature"}})
async def wechat_verify(request: Request) -> PlainTextResponse:
    channel = _channel(request)
    params = dict(request.query_params)
    _verify(channel, params)
    return PlainTextResponse(params.get("echostr", ""))


async def _queue(database: Database, settings: WeChatSettings, replies: list[OutboundMessage],
                 sent_parts: int) -> None:
    """Queue the replies (less the parts the passive reply carried) on send.wechat."""
    events = []
    for index, reply in enumerate(replies):
        skip = sent_parts if index == 0 else 0
        if skip >= len(wechat.wire_of(reply, settings)):
            continue
        payload = reply.model_dump(mode="json")
        payload["custom"] = {**(reply.custom or {}), wechat.SENT_PARTS_KEY: skip}
        events.append(NewEvent(topic=f"send.{wechat.CHANNEL}", payload=payload,
                               idempotency_key=f"msg:{reply.message_id}"))
    if events:
        async with database.unit_of_work() as session:
            await enqueue_many(session, events)


async def _answer_late(runtime: ChannelRuntime, task: asyncio.Task[HandleResult]) -> None:
    try:
        result = await task
    except Exception:  # the engine's own failure is logged there; nothing to send
        log.exception("wechat: the late answer failed")
        return
    if not result.duplicate:
        await _queue(runtime.database, runtime.settings.wechat, result.replies, 0)
        runtime.outbox_wakeup.set()


def _answer_later(channels: ChatChannels, task: asyncio.Task[HandleResult]) -> None:
    """Send the answer when it is ready; the app's lifespan stops both tasks if it ends first (stop_chat_channels)."""
    late = asyncio.create_task(_answer_late(channels.runtime, task), name="wechat-late-answer")
    for each in (task, late):
        channels.late.add(each)
        each.add_done_callback(channels.late.discard)


@router.post("/webhooks/wechat", summary="WeChat messages (signature, or msg_signature in safe mode)",
             response_class=Response,
             responses={200: {"description": "The passive reply (XML), or 'success' when the answer comes later",
                              "content": {"application/xml": {}, "text/plain": {}}},
                        400: {"description": "Not WeChat XML"}, 401: {"description": "No signature"},
                        403: {"description": "Wrong signature or a message for another account"}})
async def wechat_webhook(request: Request) -> Response:
    started = time.monotonic()
    channel = _channel(request)
    params = dict(request.query_params)
    body = await request.body()
    try:
        envelope = wechat.parse_xml(body)
    except MessageInvalid as exc:
        raise InvalidInput("The body is not WeChat XML.", code="invalid_update", status=400) from exc
    encrypted = params.get("encrypt_type") == "aes" or "Encrypt" in envelope
    if encrypted:
        if channel.crypto is None:
            raise InvalidInput("Safe-mode messages need an EncodingAESKey on this shop.",
                               code="wechat_aes_key_missing", status=400)
        _verify(channel, params, envelope.get("Encrypt", ""), key="msg_signature")
        try:
            fields = wechat.parse_xml(channel.crypto.decrypt(envelope.get("Encrypt", "")))
        except MessageInvalid as exc:
            raise Forbidden("The encrypted message cannot be opened with this account's key.",
                            code="wechat_decrypt_failed") from exc
    else:
        _verify(channel, params)
        fields = envelope
    if not fields.get("FromUserName") or not fields.get("MsgType"):
        raise InvalidInput("The message has no FromUserName or MsgType.", code="invalid_update", status=400)
    inbound = wechat.inbound_from(fields, locale=channel.settings.default_locale)
    runtime = channels_of(request).runtime
    key = f"{fields.get('ToUserName', '')}:{inbound.sender_id}:{inbound.message_id}"
    budget = channel.settings.passive_reply_seconds - (time.monotonic() - started)
    if not await channel.passive.begin(key):  # WeChat's retry: the first delivery's answer, never a second one
        answer = await channel.passive.answer_of(key, timeout=max(0.0, budget))
        if answer is not None and answer not in (wechat.PENDING, wechat.LATER):
            return _wrap(channel, answer, params)
        if answer is not None:
            return PlainTextResponse("success")
    try:
        ref = wechat.media_ref(inbound)
        if ref is not None:  # the shopper's picture is fetched for the agent in the background (media.wechat)
            async with runtime.unit_of_work() as session:
                queued = await media.register(session, ref)
            if queued:
                runtime.outbox_wakeup.set()
        task = asyncio.ensure_future(runtime.handle(inbound, delivered_inline=True))
        try:
            done, _ = await asyncio.wait({task}, timeout=max(0.0, budget))
        except asyncio.CancelledError:  # WeChat hung up: the answer still goes, later
            _answer_later(channels_of(request), task)
            await channel.passive.finish(key, wechat.LATER)
            raise
        if not done:
            _answer_later(channels_of(request), task)
            await channel.passive.finish(key, wechat.LATER)
            return PlainTextResponse("success")
        result = task.result()
    except asyncio.CancelledError:
        raise
    except BaseException:
        await channel.passive.forget(key)
        raise
    reply = await _passive(channel, runtime, inbound, result)
    if reply is None:
        if not result.duplicate:
            await channel.passive.finish(key, wechat.LATER)
        return PlainTextResponse("success")
    await channel.passive.finish(key, reply)
    return _wrap(channel, reply, params)


async def _passive(channel: WeChatChannel, runtime: ChannelRuntime, inbound: InboundMessage,
                   result: HandleResult) -> str | None:
    """The passive reply's plain XML (the rest of the answer queued for the customer-service API), or None."""
    if result.duplicate or not result.replies:
        return None  # a message answered before (its answer is in the cache, or gone): no second answer
    wires = wechat.wire_of(result.replies[0], channel.settings)
    own = inbound.metadata.get("wechat", {}).get("ToUserName", "")
    first = wechat.passive_xml(wires[0], to=inbound.sender_id, sender=own) if wires else None
    await _queue(runtime.database, channel.settings, result.replies, 1 if first is not None else 0)
    if len(result.replies) > 1 or len(wires) > 1 or first is None:
        runtime.outbox_wakeup.set()
    if first is None and not wires:
        return wechat.text_reply_xml(to=inbound.sender_id, sender=own, content="…")
    return first


def _wrap(channel: WeChatChannel, reply: str, params: dict[str, str]) -> Response:
    if channel.crypto is not None and params.get("encrypt_type") == "aes":
        assert channel.settings.token is not None
        reply = wechat.encrypted_reply_xml(channel.crypto, channel.settings.token.get_secret_value(), reply,
                                           nonce=params.get("nonce"))
    return Response(reply, media_type=XML)
