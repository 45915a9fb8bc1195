"""Cart links from the agent's reply box: the agent picks variants and quantities into a draft cart (priced in the
shopper's currency as the bot's cart shows it), then sends it. The shopper gets one message in their language on
their own channel (outbox) with the lines, the total and an "Open my cart" button whose payload is the link:
`cartlink:<id>.<signature>`, an HMAC of (id, conversation, expiry) under the shop's secret key, short enough for
Telegram's 64 bytes of callback data. Pressing it (`bot.skills.cart_link`) claims the link once (one conditional
UPDATE: a replay adds nothing), puts those lines in the conversation's cart through the cart skill's own checks
(unknown SKU, not sold there, no stock each named) and starts the chat's checkout. A person keeps the conversation
meanwhile: the engine lets the link and the checkout it starts through (`engine_hooks.bot_serves`)."""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import i18n
from bot.conversations import service as conversations
from bot.conversations.models import Conversation
from bot.handoff.delivery import send
from bot.handoff.errors import BadAgentInput, NotInHumanMode
from bot.handoff.inbox import require_owner, thread_of_shop
from bot.handoff.models import Agent, CartLink
from bot.messages import Button
from bot.skills.base import cached_rate, shopper_currency
from commerce.catalog import service as catalog
from commerce.catalog.models import Variant
from commerce.checkout.service import option_label
from commerce.inventory.availability import available_for_country
from commerce.money import format_money, quantize
from kit.clock import utcnow

PAYLOAD = "cartlink:"
SIGNATURE_CHARS = 20  # 80 bits; "cartlink:<id>.<sig>" stays far within Telegram's 64 bytes
LINK_LIFETIME = timedelta(days=3)
MAX_LINES = 20
MAX_QUANTITY = 99  # the cart's own limit (bot.skills.cart.MAX_QUANTITY)
SOURCE = "cart_link"


class CartLinkLineIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class CartLinkLine(BaseModel):
    sku: str
    title: str
    options: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal
    line_total_text: str
    available: int
    problem: str | None = Field(default=None, description="unknown_sku | not_sold | not_sellable_there | no_stock")


class CartLinkDraft(BaseModel):
    """The draft cart as the shopper will see it: lines and total in their currency and language."""

    currency: str
    locale: str
    lines: list[CartLinkLine]
    total: Decimal
    total_text: str
    sendable: bool


class CartLinkRefused(Exception):
    """Why a pressed link adds nothing: `reason` is invalid, expired or used (a catalog key's last part)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ClaimedLink:
    id: int
    lines: list[tuple[str, int]]


def sign(secret: str, *, link_id: int, conversation_id: int, expires_at: datetime) -> str:
    # "cart_link:" keeps these signatures apart from anything else signed with the shop's secret key.
    message = f"cart_link:{link_id}:{conversation_id}:{int(expires_at.timestamp())}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:SIGNATURE_CHARS]


def payload_of(link: CartLink, secret: str) -> str:
    signature = sign(secret, link_id=link.id, conversation_id=link.conversation_id, expires_at=link.expires_at)
    return f"{PAYLOAD}{link.id}.{signature}"


def _merged(lines: list[CartLinkLineIn]) -> list[tuple[str, int]]:
    wanted: dict[str, int] = {}
    for line in lines:
        sku = line.sku.strip()
        wanted[sku] = min(MAX_QUANTITY, wanted.get(sku, 0) + line.quantity)
    if not wanted or len(wanted) > MAX_LINES:
        raise BadAgentInput(f"A cart link holds 1 to {MAX_LINES} products.", code="invalid_cart_link")
    return list(wanted.items())


def _locale(conversation: Conversation) -> str:
    return i18n.supported_locale(conversation.locale) or i18n.DEFAULT_LOCALE


def problem_of(variant: Variant | None, *, country: str | None, available: int, quantity: int) -> str | None:
    """Why a line of a cart link cannot be bought now (unknown_sku | not_sold | not_sellable_there | no_stock), or
    None: the agent's draft and the shopper's press check the same way."""
    if variant is None:
        return "unknown_sku"
    if not (variant.product.active and variant.active):
        return "not_sold"
    if not catalog.is_sellable_to(variant.product, country):
        return "not_sellable_there"
    if available < quantity:
        return "no_stock"
    return None


async def _price(session: AsyncSession, conversation: Conversation, lines: list[tuple[str, int]], *,
                 default_currency: str) -> CartLinkDraft:
    locale = _locale(conversation)
    currency = shopper_currency(conversation, default=default_currency)
    variants = await catalog.find_variants(session, skus=[sku for sku, _ in lines])
    # Stock where it ships to the shopper from, as the bot's cart and the order count it.
    stock = await available_for_country(session, skus=list(variants), country=conversation.country)
    rates: dict[tuple[str, str], Decimal | None] = {}
    priced: list[CartLinkLine] = []
    shown_currency = currency
    for sku, quantity in lines:
        variant = variants.get(sku)
        problem = problem_of(variant, country=conversation.country, available=stock.get(sku, 0), quantity=quantity)
        if variant is None:
            priced.append(CartLinkLine(sku=sku, title=sku, options="", quantity=quantity, unit_price=Decimal(0),
                                       line_total=Decimal(0), line_total_text="", available=0,
                                       problem="unknown_sku"))
            continue
        product = variant.product
        amount, shown = catalog.variant_price(variant, product), product.currency
        rate = await cached_rate(session, rates, product.currency, currency)
        if rate is not None:
            amount, shown = quantize(amount * rate, currency), currency
        else:
            shown_currency = shown  # no fresh rate: the product's own currency, as the bot's cart does
        priced.append(CartLinkLine(sku=sku, title=catalog.localized(product.title, locale),
                                   options=option_label(variant.attributes), quantity=quantity, unit_price=amount,
                                   line_total=amount * quantity,
                                   line_total_text=format_money(amount * quantity, shown, locale),
                                   available=stock.get(sku, 0), problem=problem))
    total = sum((line.line_total for line in priced if line.problem is None), Decimal(0))
    return CartLinkDraft(currency=shown_currency, locale=locale, lines=priced, total=total,
                         total_text=format_money(total, shown_currency, locale),
                         sendable=all(line.problem is None for line in priced))


async def preview(session: AsyncSession, *, agent: Agent, conversation_id: int, lines: list[CartLinkLineIn],
                  default_currency: str) -> CartLinkDraft:
    """The draft priced for this conversation's shopper; each line that could not be bought says why."""
    await thread_of_shop(session, agent, conversation_id)
    conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
    return await _price(session, conversation, _merged(lines), default_currency=default_currency)


async def send_link(session: AsyncSession, *, agent: Agent, conversation_id: int, lines: list[CartLinkLineIn],
                    default_currency: str, secret: str) -> tuple[int, CartLinkDraft]:
    """Send the cart as one message with its lines, total and the signed "Open my cart" button; (message id, the
    draft as sent). A line that cannot be bought now refuses the whole send (invalid_cart_link names it)."""
    require_owner(agent, await thread_of_shop(session, agent, conversation_id), supervisor_may=False)
    conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
    if conversation.mode != "human":
        raise NotInHumanMode("The bot is answering this conversation; take it over first.")
    merged = _merged(lines)
    draft = await _price(session, conversation, merged, default_currency=default_currency)
    bad = [f"{line.sku} ({line.problem})" for line in draft.lines if line.problem]
    if bad:
        raise BadAgentInput(f"These cannot be bought now: {', '.join(bad)}.", code="invalid_cart_link")
    now = utcnow()
    link = CartLink(conversation_id=conversation.id, agent_id=agent.id,
                    lines=[{"sku": sku, "quantity": quantity} for sku, quantity in merged], created_at=now,
                    expires_at=now + LINK_LIFETIME)
    session.add(link)
    await session.flush()
    locale = draft.locale
    text_lines = [i18n.t(locale, "cart_link.line", quantity=line.quantity,
                         title=f"{line.title} ({line.options})" if line.options else line.title,
                         amount=line.line_total_text) for line in draft.lines]
    text = i18n.t(locale, "cart_link.message", lines="\n".join(text_lines), total=draft.total_text)
    button = Button(title=i18n.t(locale, "cart_link.open"), payload=payload_of(link, secret))
    message_id = await send(session, conversation=conversation, agent_id=agent.id, source=SOURCE, text=text,
                            buttons=[button])
    return message_id, draft


async def claim(session: AsyncSession, *, conversation_id: int, arg: str, secret: str) -> ClaimedLink:
    """The link `arg` ("<id>.<signature>") names, claimed for good; CartLinkRefused(invalid | expired | used) when
    it is forged, another conversation's, past its time or pressed before."""
    link_part, _, signature = arg.partition(".")
    if not link_part.isdigit() or not signature:
        raise CartLinkRefused("invalid")
    link = await session.scalar(select(CartLink).where(CartLink.id == int(link_part)))
    if link is None or link.conversation_id != conversation_id:
        raise CartLinkRefused("invalid")
    expected = sign(secret, link_id=link.id, conversation_id=link.conversation_id, expires_at=link.expires_at)
    if not hmac.compare_digest(expected, signature):
        raise CartLinkRefused("invalid")
    now = utcnow()
    if link.expires_at <= now:
        raise CartLinkRefused("expired")
    claimed = await session.execute(update(CartLink).where(CartLink.id == link.id, CartLink.redeemed_at.is_(None))
                                    .values(redeemed_at=now).execution_options(synchronize_session=False))
    if getattr(claimed, "rowcount", 0) != 1:
        raise CartLinkRefused("used")
    return ClaimedLink(id=link.id, lines=[(str(x["sku"]), int(x["quantity"])) for x in link.lines])


async def recently_redeemed(session: AsyncSession, *, conversation_id: int) -> bool:
    """A link of this conversation was opened within a link's lifetime: its checkout is the bot's to answer."""
    found = await session.scalar(select(CartLink.id).where(
        CartLink.conversation_id == conversation_id, CartLink.redeemed_at.is_not(None),
        CartLink.redeemed_at > utcnow() - LINK_LIFETIME).limit(1))
    return found is not None
