"""Outbox delivery for the chat channels (topics send.telegram, send.webchat, send.rest).

The worker process gathers `outbox_handlers` (api.workers.process.collect). The API process also runs a small
delivery loop of its own over `channel_handlers` (api.chat_runtime), so `shoptalk serve` alone answers shoppers
and pushes replies to the web chat sockets it holds.
"""
from __future__ import annotations

import logging

from aiogram.client.telegram import TelegramAPIServer

from bot.channels.telegram import TelegramChannel
from bot.channels.webchat import WebchatHub, reply_frame
from bot.channels.wechat import WeChatChannel
from bot.channels.whatsapp import WhatsAppChannel
from bot.messages import InboundMessage, OutboundMessage
from kit.db import Database
from kit.outbox import Handler, OutboxEvent
from kit.settings import Settings

log = logging.getLogger(__name__)

TELEGRAM_TOPIC = "send.telegram"
WEBCHAT_TOPIC = "send.webchat"
REST_TOPIC = "send.rest"
WHATSAPP_TOPIC = "send.whatsapp"
WECHAT_TOPIC = "send.wechat"
WHATSAPP_MEDIA_TOPIC = "media.whatsapp"  # bot.channels.media.topic(channel): a shopper's file to fetch
WECHAT_MEDIA_TOPIC = "media.wechat"


def telegram_api_server(settings: Settings) -> TelegramAPIServer | None:
    base = settings.telegram.api_base
    return TelegramAPIServer.from_base(base) if base else None


def telegram_mode(settings: Settings) -> str:
    """polling (the demo) unless a webhook secret is configured or the mode is set explicitly."""
    if settings.telegram.mode != "auto":
        return settings.telegram.mode
    return "webhook" if settings.security.telegram_webhook_secret else "polling"


async def _not_receiving(inbound: InboundMessage) -> None:
    raise RuntimeError("this Telegram channel only sends")


def telegram_handler(telegram: TelegramChannel) -> Handler:
    progress: dict[str, int] = {}

    async def send_telegram(event: OutboxEvent) -> None:
        await telegram.send(event, progress=progress)

    return send_telegram


def webchat_handler(hub: WebchatHub) -> Handler:
    async def send_webchat(event: OutboxEvent) -> None:
        message = OutboundMessage.model_validate(event.payload)
        await hub.publish(message.recipient_id, reply_frame(message))

    return send_webchat


async def send_rest(event: OutboxEvent) -> None:
    """REST replies travel in the HTTP response; an event left here (an agent's later reply) has no push path."""
    log.debug("rest reply %s kept in history only (Rasa REST has no push)", event.idempotency_key)


def progress_handler(channel: WhatsAppChannel | WeChatChannel) -> Handler:
    progress: dict[str, int] = {}

    async def send(event: OutboxEvent) -> None:
        await channel.send(event, progress=progress)

    return send


def whatsapp_channel(settings: Settings, database: Database) -> WhatsAppChannel | None:
    configured = settings.whatsapp.phone_number_id and settings.whatsapp.access_token
    return (WhatsAppChannel(settings=settings.whatsapp, database=database, redis_url=settings.redis.url)
            if configured else None)


def wechat_channel(settings: Settings, database: Database) -> WeChatChannel | None:
    configured = settings.wechat.app_id and settings.wechat.app_secret and settings.wechat.token
    return (WeChatChannel(settings=settings.wechat, database=database, redis_url=settings.redis.url)
            if configured else None)


def channel_handlers(*, telegram: TelegramChannel | None, hub: WebchatHub | None,
                     whatsapp: WhatsAppChannel | None = None, wechat: WeChatChannel | None = None,
                     ) -> dict[str, Handler]:
    handlers: dict[str, Handler] = {REST_TOPIC: send_rest}
    if whatsapp is not None:
        handlers[WHATSAPP_TOPIC] = progress_handler(whatsapp)
        handlers[WHATSAPP_MEDIA_TOPIC] = whatsapp.fetch_media
    if wechat is not None:
        handlers[WECHAT_TOPIC] = progress_handler(wechat)
        handlers[WECHAT_MEDIA_TOPIC] = wechat.fetch_media
    if telegram is not None:
        handlers[TELEGRAM_TOPIC] = telegram_handler(telegram)
    if hub is not None:
        handlers[WEBCHAT_TOPIC] = webchat_handler(hub)
    return handlers


def _provider_token(settings: Settings) -> str | None:
    token = settings.payments.telegram_provider_token
    return token.get_secret_value() if token else None


def outbox_handlers(settings: Settings, database: Database) -> dict[str, Handler]:
    """For the worker process. Web chat only with Redis: without it, only the API process can reach sockets."""
    token = settings.security.telegram_bot_token
    telegram = (TelegramChannel(token=token.get_secret_value(), database=database, handle=_not_receiving,
                                api=telegram_api_server(settings),
                                payment_provider_token=_provider_token(settings)) if token else None)
    hub = WebchatHub(settings.redis.url) if settings.redis.url else None
    return channel_handlers(telegram=telegram, hub=hub, whatsapp=whatsapp_channel(settings, database),
                            wechat=wechat_channel(settings, database))
