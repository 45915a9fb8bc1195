"""Telegram through aiogram 3: updates -> InboundMessage, OutboundMessage -> Bot API calls.

Rendering is HTML (parse_mode HTML) with every piece of dynamic text escaped; long texts are split at
Telegram's 4096-character limit; a product card with an image URL goes as a photo (sendPhoto, caption cut to
1024 characters, its buttons attached), and as text when there is no image or Telegram refuses the photo;
button payloads longer than callback_data's 64 bytes travel as a short token stored server-side. The bot
token only ever appears inside aiogram's own request URLs, and the aiogram loggers carry a redacting filter
so those never reach a log line.
"""
from __future__ import annotations

import base64
import hashlib
import html
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    LinkPreviewOptions,
    Message,
    PreCheckoutQuery,
    TelegramObject,
    Update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot import i18n
from bot.channels import COMMAND_PAYLOADS, repository
from bot.channels.capabilities import Capabilities
from bot.commands import parse_command
from bot.i18n import DEFAULT_LOCALE, supported_locale
from bot.messages import Button, InboundMessage, OutboundMessage, ProductCard
from commerce.payments import service as payments
from kit.clock import utcnow
from kit.db import Database
from kit.logging import RedactingFilter, redact
from kit.outbox import DeliveryError, OutboxEvent

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
# What Telegram shows (the channel contract, bot.channels.capabilities); its renderer below is its own (HTML).
CAPABILITIES = Capabilities(max_text=TEXT_LIMIT, unit="utf16", max_buttons=100, button_title=64, images=True,
                            max_caption=CAPTION_LIMIT, buttons_on_images=True, text_links="url")
PHOTO_URL = re.compile(r"^https?://[^\s]{1,2040}$")
REFUSED_PHOTOS_KEPT = 1_000  # image URLs Telegram refused lately: sent as text without asking again
CALLBACK_DATA_LIMIT = 64
TOKEN_PREFIX = "~"  # callback_data starting with this is a server-side token, never a raw payload
COMMANDS = ("start", "help", "cart", "orders")
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "pre_checkout_query"]
AIOGRAM_LOGGERS = ("aiogram", "aiogram.dispatcher", "aiogram.event", "aiogram.middlewares", "aiogram.webhook",
                   "aiogram.scene", "aiohttp.client", "aiohttp.access", "aiohttp.internal")

InboundHandler = Callable[[InboundMessage], Awaitable[object]]


# kit.logging's pattern needs a word boundary before the digits, which "/bot123:..." in a Bot API URL lacks.
_TOKEN_IN_URL = re.compile(r"(?<![0-9])[0-9]{6,12}:[A-Za-z0-9_-]{30,}")


def redact_tokens(text: str) -> str:
    return redact(_TOKEN_IN_URL.sub("[redacted]", text))


class _TracebackRedactingFilter(RedactingFilter):
    """Scrubs Bot API URLs (they hold the token) from messages and tracebacks alike."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_tokens(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_tokens(record.exc_text)
        return True


def install_log_redaction() -> None:
    """Put the redacting filter on every logger that may see a Bot API URL (idempotent)."""
    for name in AIOGRAM_LOGGERS + (__name__,):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _TracebackRedactingFilter) for f in logger.filters):
            logger.addFilter(_TracebackRedactingFilter())


# ---- rendering -------------------------------------------------------------------------------------

def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split into pieces of at most `limit` UTF-16 units (Telegram's measure), preferring line/word breaks."""
    if _utf16_len(text) <= limit:
        return [text]
    pieces: list[str] = []
    rest = text
    while rest:
        if _utf16_len(rest) <= limit:
            pieces.append(rest)
            break
        # Largest prefix that fits, counted in UTF-16 units (emoji take two).
        size, used = 0, 0
        for char in rest:
            width = 2 if ord(char) > 0xFFFF else 1
            if used + width > limit:
                break
            used += width
            size += 1
        window = rest[:size]
        cut = max(window.rfind("\n"), window.rfind(" "))
        if cut < size // 2:  # no natural break in the second half: cut hard rather than make tiny pieces
            cut = size
        else:
            cut += 1
        pieces.append(rest[:cut])
        rest = rest[cut:]
    return pieces


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def callback_token(payload: str) -> str:
    digest = hashlib.sha256(payload.encode("utf-8")).digest()[:12]
    return base64.urlsafe_b64encode(digest).decode("ascii")


def needs_token(payload: str) -> bool:
    return len(payload.encode("utf-8")) > CALLBACK_DATA_LIMIT or payload.startswith(TOKEN_PREFIX)


def callback_data_for(payload: str) -> str:
    """The callback_data Telegram carries for a payload: itself, or a 17-byte token when too long."""
    return TOKEN_PREFIX + callback_token(payload) if needs_token(payload) else payload


@dataclass(frozen=True)
class RenderedPart:
    html_text: str  # a photo's caption when photo_url is set, and the text sent if the photo is refused
    buttons: list[list[InlineKeyboardButton]]
    photo_url: str | None = None

    @property
    def keyboard(self) -> InlineKeyboardMarkup | None:
        return InlineKeyboardMarkup(inline_keyboard=self.buttons) if self.buttons else None


def _button_rows(buttons: list[Button], per_row: int = 2) -> list[list[InlineKeyboardButton]]:
    keys: list[InlineKeyboardButton] = []
    for button in buttons:
        title = button.title[:64] or "·"
        if button.url:
            keys.append(InlineKeyboardButton(text=title, url=button.url))
        else:
            keys.append(InlineKeyboardButton(text=title, callback_data=callback_data_for(button.payload or title)))
    return [keys[i:i + per_row] for i in range(0, len(keys), per_row)]


def _clip(text: str, units: int) -> str:
    """`text` cut to at most `units` UTF-16 units, an ellipsis marking the cut."""
    if _utf16_len(text) <= units:
        return text
    kept, used = [], 0
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if used + width > units - 1:
            break
        kept.append(char)
        used += width
    return "".join(kept) + "…"


def _card_text(card: ProductCard, limit: int = TEXT_LIMIT) -> str:
    """Title (bold), subtitle, price; the plain text fits in `limit` (the price is kept whole, the title and
    subtitle are cut), so a caption never exceeds Telegram's limit however long the product's texts are."""
    price = _clip(card.price_text or "", limit // 4)
    room = limit - _utf16_len(price) - 2
    title = _clip(card.title, max(1, room // 2 if card.subtitle else room))
    subtitle = _clip(card.subtitle or "", max(0, room - _utf16_len(title)))
    lines = [f"<b>{escape(title)}</b>"] + [escape(x) for x in (subtitle, price) if x]
    return "\n".join(lines)


def _photo_url(card: ProductCard) -> str | None:
    url = (card.image_url or "").strip()
    return url if PHOTO_URL.match(url) else None  # Telegram fetches only http(s) URLs


def render(message: OutboundMessage) -> list[RenderedPart]:
    """The Telegram messages one reply becomes: its text (split), then one message (or photo) per product card."""
    parts = [RenderedPart(escape(piece), []) for piece in split_text(message.text or "…")]
    parts[-1] = RenderedPart(parts[-1].html_text, _button_rows(message.buttons))
    for card in message.cards:
        photo = _photo_url(card)
        parts.append(RenderedPart(_card_text(card, CAPTION_LIMIT if photo else TEXT_LIMIT),
                                  _button_rows(card.buttons, per_row=1), photo))
    return parts


def long_payloads(message: OutboundMessage) -> list[str]:
    buttons = list(message.buttons) + [b for card in message.cards for b in card.buttons]
    return [p for b in buttons if not b.url and (p := b.payload or b.title) and needs_token(p)]


# ---- inbound -----------------------------------------------------------------------------------------

def _base(update: Update, message: Message) -> dict[str, Any]:
    user = message.from_user
    return {"channel": "telegram", "sender_id": str(message.chat.id), "message_id": f"u{update.update_id}",
            "locale_hint": user.language_code if user else None,
            "sender_name": user.full_name if user else None, "received_at": utcnow()}


def inbound_from_message(update: Update, message: Message, *, edited: bool = False) -> InboundMessage:
    fields = _base(update, message)
    metadata: dict[str, Any] = {"chat_type": message.chat.type, "telegram_message_id": message.message_id}
    if edited:
        return InboundMessage(**fields, kind="edited", text=message.text or message.caption, metadata=metadata)
    if message.text is None:
        metadata["content_type"] = str(message.content_type)
        if message.caption:
            metadata["caption"] = message.caption
        return InboundMessage(**fields, kind="unsupported", metadata=metadata)
    command = parse_command(message.text)
    if command is not None:
        metadata.update(command=command.name, args=command.args)
        payload = COMMAND_PAYLOADS.get(command.name)
        if payload is not None:
            return InboundMessage(**fields, kind="callback", text=message.text, payload=payload, metadata=metadata)
        return InboundMessage(**fields, kind="command", text=message.text, metadata=metadata)
    return InboundMessage(**fields, kind="text", text=message.text, metadata=metadata)


async def resolve_callback_data(session: AsyncSession, data: str | None) -> str | None:
    """The payload behind a button press; None when the data is unknown (stale or forged token)."""
    if not data:
        return None
    if data.startswith(TOKEN_PREFIX):
        return await repository.callback_payload(session, token=data[len(TOKEN_PREFIX):])
    return data


def inbound_from_callback(update: Update, query: CallbackQuery, payload: str | None) -> InboundMessage:
    user = query.from_user
    chat_id = query.message.chat.id if query.message is not None else user.id
    metadata: dict[str, Any] = {"callback_data": query.data}
    if payload is None:
        metadata["unknown_callback"] = True
    return InboundMessage(channel="telegram", sender_id=str(chat_id), message_id=f"u{update.update_id}",
                          kind="callback", payload=payload if payload is not None else (query.data or ""),
                          locale_hint=user.language_code, sender_name=user.full_name, metadata=metadata,
                          received_at=utcnow())


class SeenUpdates:
    """Recently handled update_ids: a cheap first line; the engine's message_id check is the durable one."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[int, None] = OrderedDict()

    def __contains__(self, update_id: int) -> bool:
        return update_id in self._seen

    def remember(self, update_id: int) -> None:
        self._seen[update_id] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)


class TelegramChannel:
    """One bot: an aiogram Dispatcher feeding the engine, and the sender used by the outbox handler."""

    def __init__(self, *, token: str, database: Database, handle: InboundHandler,
                 api: TelegramAPIServer | None = None, payment_provider_token: str | None = None) -> None:
        install_log_redaction()
        self.database = database
        self.handle = handle
        self.bot = Bot(token=token, session=AiohttpSession(api=api or PRODUCTION),
                       default=DefaultBotProperties(parse_mode=ParseMode.HTML))
        self.seen = SeenUpdates()
        self.payment_provider_token = payment_provider_token  # Telegram Payments (None: Telegram Stars only)
        self.refused_photos: OrderedDict[str, None] = OrderedDict()
        self.dispatcher = Dispatcher()
        self.dispatcher.update.outer_middleware(self._dedupe)
        self.dispatcher.include_router(self._router())

    async def _dedupe(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                      event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        if event.update_id in self.seen:
            log.info("telegram update %s seen before; ignored", event.update_id)
            return None
        result = await handler(event, data)
        # Only once handled: an update whose handling failed must stay welcome when Telegram sends it again.
        self.seen.remember(event.update_id)
        return result

    def _router(self) -> Router:
        router = Router(name="shoptalk")

        @router.pre_checkout_query()
        async def on_pre_checkout(query: PreCheckoutQuery) -> None:
            # Telegram waits for this answer (10 s) before charging: stock and price are checked again first.
            async with self.database.unit_of_work() as session:
                refused = await payments.check_before_charge(
                    session, provider="telegram", reference=query.invoice_payload, amount_minor=query.total_amount,
                    currency=query.currency)
            if refused is None:
                await query.answer(ok=True)
            else:
                log.info("pre-checkout refused for %s: %s", query.invoice_payload, refused)
                language = supported_locale(query.from_user.language_code) or DEFAULT_LOCALE
                await query.answer(ok=False, error_message=i18n.t(language, "pay.refused"))

        @router.message(F.successful_payment)
        async def on_paid(message: Message) -> None:
            paid = message.successful_payment
            assert paid is not None
            async with self.database.unit_of_work() as session:
                outcome = await payments.record_payment(
                    session, provider="telegram", event_id=paid.telegram_payment_charge_id,
                    reference=paid.invoice_payload, amount_minor=paid.total_amount, currency=paid.currency,
                    succeeded=True, charge_id=paid.provider_payment_charge_id or paid.telegram_payment_charge_id,
                    kind="successful_payment")
            log.info("telegram payment %s: %s", paid.invoice_payload, outcome)

        @router.message()
        async def on_message(message: Message, event_update: Update) -> None:
            await self.handle(inbound_from_message(event_update, message))

        @router.edited_message()
        async def on_edited(message: Message, event_update: Update) -> None:
            await self.handle(inbound_from_message(event_update, message, edited=True))

        @router.callback_query()
        async def on_callback(query: CallbackQuery, event_update: Update) -> None:
            # Answer first: Telegram shows a spinner on the button until the query is answered.
            try:
                await query.answer()
            except (TelegramBadRequest, TelegramNotFound):  # a query older than Telegram's window
                log.info("callback query %s too old to answer", query.id)
            async with self.database.unit_of_work() as session:
                payload = await resolve_callback_data(session, query.data)
            await self.handle(inbound_from_callback(event_update, query, payload))

        return router

    async def feed(self, update: Update) -> None:
        await self.dispatcher.feed_update(self.bot, update)

    async def register_webhook(self, *, url: str, secret: str) -> None:
        """setWebhook: Telegram posts updates to `url` with `secret` in X-Telegram-Bot-Api-Secret-Token."""
        await self.bot.set_webhook(url=url, secret_token=secret, drop_pending_updates=False,
                                   allowed_updates=ALLOWED_UPDATES)

    async def start_polling(self) -> None:
        await self.bot.delete_webhook(drop_pending_updates=False)
        # One update at a time, in order: a shopper's second message must not overtake the first.
        await self.dispatcher.start_polling(self.bot, handle_signals=False, close_bot_session=False,
                                            handle_as_tasks=False, polling_timeout=10,
                                            allowed_updates=ALLOWED_UPDATES)

    async def stop_polling(self) -> None:
        if self.dispatcher._running_lock.locked():  # stop_polling raises when not polling
            await self.dispatcher.stop_polling()

    async def close(self) -> None:
        await self.bot.session.close()

    # ---- sending (the send.telegram outbox handler) ----

    async def send(self, event: OutboxEvent, *, progress: dict[str, int]) -> None:
        """Send one stored reply. Parts already sent by an earlier attempt of this process are skipped."""
        message = OutboundMessage.model_validate(event.payload)
        try:
            chat_id = int(message.recipient_id)
        except ValueError as exc:
            raise DeliveryError(f"not a Telegram chat id: {message.recipient_id!r}", permanent=True) from exc
        tokens = long_payloads(message)
        if tokens:
            async with self.database.unit_of_work() as session:
                for payload in tokens:
                    await repository.save_callback_token(session, token=callback_token(payload), payload=payload)
        parts = render(message)
        done = progress.get(event.idempotency_key, 0)
        for index, part in enumerate(parts[done:], start=done):
            await self._send_part(chat_id, part)
            progress[event.idempotency_key] = index + 1
        invoice = (message.custom or {}).get("invoice")
        if invoice and progress.get(event.idempotency_key, 0) == len(parts):
            await self._send_invoice(chat_id, dict(invoice))
        progress.pop(event.idempotency_key, None)

    async def _send_invoice(self, chat_id: int, invoice: dict[str, Any]) -> None:
        """sendInvoice in the order's currency, amount in its smallest unit (Telegram's `exp`, ISO 4217's)."""
        await self._delivering(self.bot.send_invoice(
            chat_id=chat_id, title=str(invoice["title"])[:32], description=str(invoice["description"])[:255],
            payload=str(invoice["payload"]), currency=str(invoice["currency"]),
            provider_token=self.payment_provider_token or "",
            prices=[LabeledPrice(label=str(invoice["title"])[:32], amount=int(invoice["amount_minor"]))]))

    async def _send_part(self, chat_id: int, part: RenderedPart) -> None:
        if part.photo_url and part.photo_url not in self.refused_photos:
            try:
                await self._delivering(self.bot.send_photo(chat_id=chat_id, photo=part.photo_url,
                                                           caption=part.html_text, reply_markup=part.keyboard))
                return
            except TelegramBadRequest as exc:
                # "wrong file identifier/HTTP URL specified", "failed to get HTTP URL content", ...: the card
                # still reaches the shopper, as text; the URL is not tried again for a while.
                log.info("telegram refused the photo (%s); sending the card as text", exc.message)
                self.refused_photos[part.photo_url] = None
                if len(self.refused_photos) > REFUSED_PHOTOS_KEPT:
                    self.refused_photos.popitem(last=False)
        try:
            await self._delivering(self.bot.send_message(chat_id=chat_id, text=part.html_text,
                                                         reply_markup=part.keyboard,
                                                         link_preview_options=LinkPreviewOptions(is_disabled=True)))
        except TelegramBadRequest as exc:
            # Rendering should never be refused; if it is, fall back to plain text rather than lose it.
            log.warning("telegram refused HTML (%s); sending as plain text", exc.message)
            await self._delivering(self.bot.send_message(chat_id=chat_id,
                                                         text=html.unescape(part.html_text)[:TEXT_LIMIT],
                                                         parse_mode=None, reply_markup=part.keyboard))

    @staticmethod
    async def _delivering(call: Awaitable[Any]) -> Any:
        """A Bot API call with Telegram's refusals mapped to the outbox's retry rules; other 400s propagate."""
        try:
            return await call
        except TelegramRetryAfter as exc:
            raise DeliveryError(f"telegram rate limit: retry after {exc.retry_after}s",
                                retry_after=float(exc.retry_after)) from exc
        except TelegramForbiddenError as exc:  # "bot was blocked by the user": retrying cannot help
            raise DeliveryError(f"telegram refused: {exc.message}", permanent=True) from exc
        except TelegramUnauthorizedError as exc:
            raise DeliveryError("telegram rejected the bot token", permanent=True) from exc
        except TelegramBadRequest as exc:
            if "chat not found" in exc.message.lower():
                raise DeliveryError(f"telegram refused: {exc.message}", permanent=True) from exc
            raise
