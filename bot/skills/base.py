"""The turn a skill works on (the conversation, the parsed message, helpers to reply in the shopper's locale) and
`Skill`, with which a skill module declares what it answers (`bot.skills.registry` collects them)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from babel.numbers import get_territory_currencies
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import i18n
from bot.conversations.models import Conversation
from bot.deps import BotDeps
from bot.messages import Button, InboundMessage, OutboundMessage, ProductCard
from bot.understanding import ParsedMessage
from commerce import cross_border
from commerce.catalog.models import Product, Variant
from commerce.catalog.service import localized, variant_price
from commerce.money import format_money
from kit.errors import ShopTalkError


def shopper_currency(conversation: Conversation, *, default: str) -> str:
    """The currency prices are shown in: the conversation's, else its country's, else the shop's default."""
    if conversation.currency:
        return conversation.currency
    if conversation.country:
        currencies = get_territory_currencies(conversation.country)
        if currencies:
            return str(currencies[0])
    return default


async def cached_rate(session: AsyncSession, rates: dict[tuple[str, str], Decimal | None], source: str,
                        target: str) -> Decimal | None:
    """The rate (with the shop's markup) from `source` to `target`, None when no fresh rate is known; `rates` keeps
    what was looked up (one lookup per currency pair for a page of cards)."""
    if source == target:
        return Decimal(1)
    if (source, target) not in rates:
        try:
            # A savepoint: a failed lookup must not poison the caller's transaction on PostgreSQL.
            async with session.begin_nested():
                conversion = await cross_border.convert(session, amount=Decimal(1), from_currency=source,
                                                        to_currency=target)
            rates[source, target] = conversion.amount
        except (ShopTalkError, DBAPIError):
            rates[source, target] = None
    return rates[source, target]


@dataclass
class Turn:
    session: AsyncSession
    deps: BotDeps
    conversation: Conversation
    inbound: InboundMessage
    parsed: ParsedMessage | None
    locale: str
    shopper_id: int | None
    replies: list[OutboundMessage] = field(default_factory=list)
    handed_off: bool = False
    handoff_reason: str | None = None  # why, for the agent inbox (set with handed_off by `person.hand_off`)
    preparsed: ParsedMessage | None = None  # the NLU's parse, run before the transaction opened
    # Exchange rates (markup included) looked up in this turn, None when no fresh rate is known. Kept for
    # the turn only: rates change, so the next message looks them up again.
    rates: dict[tuple[str, str], Decimal | None] = field(default_factory=dict)

    # ---------- replying ----------
    def t(self, key: str, **values: Any) -> str:
        """The catalog text `key` in the shopper's language (`n=` picks a plural form)."""
        return i18n.t(self.locale, key, **values)

    def button(self, key: str, payload: str, **values: Any) -> Button:
        return Button(title=self.t(key, **values), payload=payload)

    def button_text(self, title: str, payload: str) -> Button:
        return Button(title=title, payload=payload)

    def say_text(self, text: str, *, buttons: list[Button] | None = None, cards: list[ProductCard] | None = None,
                 custom: dict[str, Any] | None = None) -> OutboundMessage:
        reply = OutboundMessage(channel=self.inbound.channel, recipient_id=self.inbound.sender_id, text=text,
                                buttons=buttons or [], cards=cards or [], custom=custom,
                                conversation_id=self.conversation.id)
        self.replies.append(reply)
        return reply

    def say(self, key: str, *, buttons: list[Button] | None = None, cards: list[ProductCard] | None = None,
            custom: dict[str, Any] | None = None, **values: Any) -> OutboundMessage:
        return self.say_text(self.t(key, **values), buttons=buttons, cards=cards, custom=custom)

    def menu(self, *, person: bool = True) -> list[Button]:
        """What the bot can do, with "Talk to a person" unless `person` is False."""
        buttons = [self.button("button.search", "menu:search"), self.button("button.order_status", "menu:order"),
                   self.button("button.cart", "cart:view")]
        return [*buttons, self.button("button.human", "handoff:request")] if person else buttons

    def ask(self, *, intent: str, slot: str, key: str, data: dict[str, Any] | None = None,
            buttons: list[Button] | None = None, **values: Any) -> None:
        """Ask a question and remember it, so the next message is read as its answer."""
        self.conversation.pending = {"intent": intent, "slot": slot, "data": data or {}}
        self.say(key, buttons=buttons, **values)

    # ---------- what the message says ----------
    def entity(self, name: str) -> Any | None:
        if self.parsed is None:
            return None
        values = self.parsed.entity_values(name)
        return values[0] if values else None

    @property
    def text(self) -> str:
        return (self.parsed.text if self.parsed is not None else self.inbound.text) or ""

    # ---------- shopper context ----------
    @property
    def country(self) -> str:
        """Destination for prices and stock: what the shopper told us, else the shop's default."""
        return self.conversation.country or self.deps.settings.locale.default_country

    @property
    def currency(self) -> str:
        return shopper_currency(self.conversation, default=self.deps.settings.locale.default_currency)

    def country_name(self, code: str) -> str:
        return i18n.country_name(self.locale, code)

    def money(self, amount: Decimal, currency: str) -> str:
        return format_money(amount, currency, self.locale)

    async def rate(self, source: str, target: str) -> Decimal | None:
        """The rate (with the shop's markup) from `source` to `target`, None when no fresh rate is known;
        looked up once per currency pair in this turn, so a page of cards costs one lookup, not one per card."""
        return await cached_rate(self.session, self.rates, source, target)

    async def convert(self, amount: Decimal, source: str, target: str) -> Decimal | None:
        """`amount` exchanged at this turn's rate, None when no fresh rate is known."""
        if source == target:
            return amount
        rate = await self.rate(source, target)
        return None if rate is None else amount * rate

    async def in_shopper_currency(self, amount: Decimal, currency: str) -> tuple[Decimal, str]:
        """The amount in the shopper's currency when a rate is known, else unchanged."""
        target = self.currency
        if target == currency:
            return amount, currency
        converted = await self.convert(amount, currency, target)
        return (converted, target) if converted is not None else (amount, currency)

    async def price_text(self, amount: Decimal, currency: str) -> str:
        value, shown = await self.in_shopper_currency(amount, currency)
        return self.money(value, shown)

    # ---------- products ----------
    def title(self, product: Product) -> str:
        return localized(product.title, self.locale)

    async def card(self, product: Product, variant: Variant, *, subtitle: str | None = None,
                   impression_id: int | None = None) -> ProductCard:
        """A product card; a recommendation's buttons carry its impression so clicks and sales are counted."""
        options = ", ".join(f"{v}" for v in variant.attributes.values())
        tracked = f":rec:{impression_id}" if impression_id is not None else ""
        return ProductCard(
            sku=variant.sku, product_id=product.id, title=self.title(product),
            subtitle=subtitle or " / ".join(p for p in (product.brand, options) if p) or None,
            price_text=await self.price_text(variant_price(variant, product), product.currency),
            image_url=product.image_url,
            buttons=[self.button("button.details", f"product:details:{product.id}{tracked}"),
                     self.button("button.add_to_cart", f"cart:add:{variant.sku}:1{tracked}"
                                 if tracked else f"cart:add:{variant.sku}"),
                     self.button("button.more_like_this", f"more_like:{product.id}")])


@dataclass(frozen=True)
class Press:
    """A button pressed: what its payload carries after the prefix the handler registered."""

    arg: str
    impression_id: int | None = None  # a recommendation's ":rec:<impression id>" suffix


@dataclass(frozen=True)
class Question:
    """The bot's question in flight (`Turn.ask`) that the message may answer."""

    intent: str
    slot: str
    data: dict[str, Any]
    confident_other: bool  # the classifier is sure the message means another (not a weak) intent


Answer = Callable[[], Awaitable[Any]]  # what answering the question does, once the policy let the bot answer
IntentHandler = Callable[[Turn, str], Awaitable[Any]]
ButtonHandler = Callable[[Turn, Press], Awaitable[Any]]
CommandHandler = Callable[[Turn], Awaitable[Any]]
AnswerReader = Callable[[Turn, Question], Answer | None]  # None: the message is not an answer to the question
_F = TypeVar("_F")


class Skill:
    """What one skill answers, declared next to its handlers (aiogram's one Router per feature is the model):
    the intents the policy routes to it, the button payloads (a payload ending in ":" is a prefix: the handler
    gets the rest), the slash commands, and the questions in flight it reads answers to (slot None: any slot)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.intents: dict[str, IntentHandler] = {}
        self.payloads: dict[str, ButtonHandler] = {}
        self.commands: dict[str, CommandHandler] = {}
        self.answers: dict[tuple[str, str | None], AnswerReader] = {}

    def intent(self, *names: str) -> Callable[[_F], _F]:
        return self._register(self.intents, names)

    def payload(self, *payloads: str) -> Callable[[_F], _F]:
        return self._register(self.payloads, payloads)

    def command(self, *names: str) -> Callable[[_F], _F]:
        return self._register(self.commands, names)

    def answer(self, *intents: str, slot: str | None = None) -> Callable[[_F], _F]:
        return self._register(self.answers, [(intent, slot) for intent in intents])

    @staticmethod
    def _register(table: dict[Any, Any], keys: Any) -> Callable[[_F], _F]:
        def register(handler: _F) -> _F:
            for key in keys:
                table[key] = handler
            return handler
        return register
