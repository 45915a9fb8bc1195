"""The chat runtime of an API process (`app.state.channels`), built by the app's lifespan: the engine's
dependencies, the web chat hub, the Telegram bot (polling for the demo, or its webhook registered), and the delivery
loop that sends channel replies from the outbox, woken right after an inbound commit."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from starlette.requests import HTTPConnection

from api.workers.channels import (
    channel_handlers,
    telegram_api_server,
    telegram_mode,
    wechat_channel,
    whatsapp_channel,
)
from bot.channels.runtime import ChannelRuntime
from bot.channels.telegram import TelegramChannel
from bot.channels.webchat import WebchatHub, WebchatSessions
from bot.channels.wechat import WeChatChannel
from bot.channels.whatsapp import WhatsAppChannel
from kit.db import Database
from kit.outbox import Handler, OutboxWorker
from kit.settings import Settings
from kit.tasks import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass
class DeliveryLoop:
    """The API process's own outbox delivery for channel topics, woken right after an inbound commit."""

    worker: OutboxWorker
    wakeup: asyncio.Event
    idle_seconds: float = 0.5
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while not self.stop.is_set():
            self.wakeup.clear()
            try:
                done = await self.worker.run_once()
            except Exception:  # a database hiccup must not end delivery
                log.exception("channel delivery loop: claim failed")
                done = 0
            if done == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), timeout=self.idle_seconds)


def start_delivery_loop(database: Database, handlers: dict[str, Handler],
                        wakeup: asyncio.Event) -> tuple[DeliveryLoop, asyncio.Task[None]]:
    worker = OutboxWorker(database.sessions, handlers, worker_id=f"api:{socket.gethostname()}:{os.getpid()}")
    loop = DeliveryLoop(worker, wakeup)
    return loop, asyncio.create_task(loop.run(), name="channel-delivery")


@dataclass
class ChatChannels:
    runtime: ChannelRuntime
    hub: WebchatHub
    telegram: TelegramChannel | None
    delivery: DeliveryLoop
    sessions: WebchatSessions
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    whatsapp: WhatsAppChannel | None = None
    wechat: WeChatChannel | None = None
    # Answers still being made after a channel answered its request (WeChat's passive reply window): stopped with
    # the app, not left running past its lifespan.
    late: set[asyncio.Task[Any]] = field(default_factory=set)
    late_grace_seconds: float = 0.0  # how long they may still finish when the app stops
    # Set once frames published by other processes reach this one's sockets (at once without Redis).
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)


def channels_of(connection: HTTPConnection) -> ChatChannels:
    """The chat runtime of the app serving this request or socket."""
    channels: ChatChannels = connection.app.state.channels
    return channels


async def start_chat_channels(app: FastAPI) -> ChatChannels:
    settings: Settings = app.state.settings
    database = app.state.database
    runtime = ChannelRuntime(settings=settings, database=database)
    hub = WebchatHub(settings.redis.url)
    token = settings.security.telegram_bot_token
    telegram = None
    if token is not None:
        api = getattr(app.state, "telegram_api_server", None) or telegram_api_server(settings)
        provider_token = settings.payments.telegram_provider_token
        telegram = TelegramChannel(token=token.get_secret_value(), database=database, handle=runtime.handle, api=api,
                                   payment_provider_token=provider_token.get_secret_value() if provider_token else None)
    whatsapp, wechat = whatsapp_channel(settings, database), wechat_channel(settings, database)
    handlers = channel_handlers(telegram=telegram, hub=hub, whatsapp=whatsapp, wechat=wechat)
    delivery, delivery_task = start_delivery_loop(database, handlers, runtime.outbox_wakeup)
    channels = ChatChannels(runtime=runtime, hub=hub, telegram=telegram, delivery=delivery,
                            sessions=WebchatSessions(settings.security.secret_key.get_secret_value()),
                            tasks=[delivery_task], whatsapp=whatsapp, wechat=wechat,
                            late_grace_seconds=settings.wechat.late_answer_grace_seconds)
    if settings.redis.url:
        channels.tasks.append(asyncio.create_task(hub.run_subscriber(channels.subscribed), name="webchat-redis"))
    else:
        channels.subscribed.set()
    mode = telegram_mode(settings) if telegram is not None else "off"
    if telegram is not None and mode == "polling":
        channels.tasks.append(asyncio.create_task(telegram.start_polling(), name="telegram-polling"))
    if telegram is not None and mode == "webhook" and settings.telegram.webhook_url:
        await _register_webhook(telegram, settings)
    if wechat is not None and settings.wechat.publish_menu and settings.environment != "test":
        channels.tasks.append(asyncio.create_task(_publish_wechat_menu(wechat), name="wechat-menu"))
    if settings.environment != "test":  # tests build the engine on first use; a served app is warm at once
        await runtime.deps()
    return channels


async def _publish_wechat_menu(wechat: WeChatChannel) -> None:
    try:
        await wechat.publish_menu()
        log.info("wechat menu published")
    except Exception as error:  # noqa: BLE001 - the shop keeps serving; shoppers can still type
        log.error("wechat menu not published: %s", error)


async def _register_webhook(telegram: TelegramChannel, settings: Settings) -> None:
    """Tell Telegram where to deliver updates, with the secret it must send back. A failure is logged and
    the app still starts: updates wait at Telegram (24 h) until the webhook is registered."""
    url = str(settings.telegram.webhook_url)
    secret = settings.security.telegram_webhook_secret
    if secret is None:
        log.error("telegram webhook not registered: SHOPTALK_SECURITY__TELEGRAM_WEBHOOK_SECRET is not set")
        return
    try:
        await telegram.register_webhook(url=url, secret=secret.get_secret_value())
        log.info("telegram webhook registered at %s", url)
    except Exception as error:  # noqa: BLE001 - the peer's reason is logged, the shop keeps serving
        log.error("telegram webhook registration at %s failed: %s", url, error)


async def stop_chat_channels(channels: ChatChannels) -> None:
    channels.delivery.stop.set()
    if channels.telegram is not None:
        with contextlib.suppress(Exception):
            await channels.telegram.stop_polling()
    if channels.late and channels.late_grace_seconds > 0:  # finished in time: stored, replies queued in the outbox
        await asyncio.wait(set(channels.late), timeout=channels.late_grace_seconds)
    if channels.late:
        log.warning("cancelling %d answer task(s) still running %.0f s after the app began to stop",
                    len(channels.late), channels.late_grace_seconds)
    for task in list(channels.late):
        await cancel_and_wait(task)
    for task in reversed(channels.tasks):
        await cancel_and_wait(task)
    if channels.telegram is not None:
        await channels.telegram.close()
    for sender in (channels.whatsapp, channels.wechat):
        if sender is not None:
            await sender.close()
    await channels.hub.close()
