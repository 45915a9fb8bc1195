"""The shop's escalation rules: what sends a shopper to a person, the mixed-reply choice per intent, and the
per-process cache that lets the engine read them on every message."""
from __future__ import annotations

import logging
import re
import weakref
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from time import monotonic
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handoff.hours import OpeningHours
from bot.handoff.models import DEFAULT_SHOP_ID, ShopHandoffRules
from kit.clock import as_utc, utcnow

log = logging.getLogger(__name__)

INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,79}$")
MAX_INTENT_CHOICES = 200
MixedReply = Literal["answer_and_offer", "draft_for_agent"]


class EscalationRules(BaseModel):
    """What sends a shopper to a person, per shop; every trigger can be turned off.

    The policy reads them (`bot.policy.shop_triggers` / `triggers_of`) and makes the one decision per message
    (`bot.policy.decide`); the engine gathers the signals that need the database only when a rule uses them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    on_request: bool = Field(default=True, description="the shopper asks for a person (words, /human, menu)")
    low_confidence_in_a_row: int = Field(default=2, ge=0, le=10, description="0 turns it off")
    low_confidence_below: float | None = Field(default=None, ge=0, le=1,
                                               description="None: the bot's own line (0.35 by default)")
    on_complaint: bool = True
    on_negative_wording: bool = True
    order_value_above: Decimal | None = Field(default=None, ge=0, le=Decimal("1e12"))
    order_value_currency: str = Field(default="EUR", description="ISO 4217; order totals are converted to it")
    unhelpful_in_a_row: int = Field(default=2, ge=0, le=10, description="'did this help? no' answers; 0 = off")
    mixed_reply_default: MixedReply = "answer_and_offer"
    mixed_reply_by_intent: dict[str, MixedReply] = Field(default_factory=dict)
    auto_assign: bool = True
    opening_hours: OpeningHours = Field(default_factory=OpeningHours)
    # The console's waiting-time colours: amber from `sla_warn_minutes` of a shopper waiting, red from
    # `sla_breach_minutes` (the team's promise).
    sla_warn_minutes: int = Field(default=2, ge=1, le=1440)
    sla_breach_minutes: int = Field(default=5, ge=1, le=1440)

    @model_validator(mode="after")
    def _sla_order(self) -> EscalationRules:
        if self.sla_breach_minutes < self.sla_warn_minutes:
            raise ValueError("sla_breach_minutes must be at least sla_warn_minutes")
        return self

    @field_validator("order_value_currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        from commerce.money import known_currencies

        code = value.strip().upper()
        if code not in known_currencies():
            raise ValueError(f"{value!r} is not an ISO 4217 currency")
        return code

    @field_validator("mixed_reply_by_intent")
    @classmethod
    def _intent_names(cls, value: dict[str, MixedReply]) -> dict[str, MixedReply]:
        if len(value) > MAX_INTENT_CHOICES:
            raise ValueError(f"at most {MAX_INTENT_CHOICES} intents")
        bad = sorted(name for name in value if not INTENT_NAME.match(name))
        if bad:
            raise ValueError(f"not intent names (lowercase letters, digits, '_'): {', '.join(bad[:5])}")
        return value

    @property
    def offers_a_person(self) -> bool:
        """True when some middle-confidence answer carries a "Talk to a person" button."""
        choices = {self.mixed_reply_default, *self.mixed_reply_by_intent.values()}
        return "answer_and_offer" in choices


# Reads of chat turns, built once (SQLAlchemy reuses their cache key and compiled form).
_RULES_STAMP = select(ShopHandoffRules.updated_at).where(ShopHandoffRules.shop_id == bindparam("shop_id"))


class RulesRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def rules(self, shop_id: int, *, fresh: bool = False) -> ShopHandoffRules | None:
        return await self.session.get(ShopHandoffRules, shop_id, populate_existing=fresh)

    async def rules_stamp(self, shop_id: int) -> datetime | None:
        """When the shop's rules last changed (one primary-key read; None when it saved none)."""
        stamp: datetime | None = await self.session.scalar(_RULES_STAMP, {"shop_id": shop_id})
        return stamp


NEGATIVE_WORDS = ("terrible", "awful", "worst", "scam", "useless", "ridiculous", "disgusting", "furious",
                  "rip off", "rip-off", "fraud", "never again", "unacceptable", "angry", "hate",
                  "垃圾", "骗子", "太差", "差劲", "气死", "恶心", "骗人", "退钱", "愤怒")


def strongly_negative(message: str) -> bool:
    """Strongly negative wording: a word from the list, or shouting (mostly capitals with '!!')."""
    lowered = message.lower()
    if any(word in lowered for word in NEGATIVE_WORDS):
        return True
    letters = [c for c in message if c.isalpha() and c.isascii()]
    return len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) > 0.8 and "!!" in message


async def order_value_in(session: AsyncSession, *, amount: Decimal, currency: str, target: str) -> Decimal | None:
    """An order's value in the threshold's currency, through commerce's cross-border `convert` at the
    mid-market rate (the shop's shopper-facing FX markup taken out); None when no fresh rate is known
    (logged; the caller escalates)."""
    from sqlalchemy.exc import DBAPIError

    from commerce.cross_border import convert
    from kit.errors import ShopTalkError

    if currency.upper() == target.upper():
        return amount
    try:
        # A savepoint: a failed rate lookup must not poison the shopper's transaction on PostgreSQL.
        async with session.begin_nested():
            conversion = await convert(session, amount=amount, from_currency=currency, to_currency=target)
    except (ShopTalkError, DBAPIError) as error:
        code = error.code if isinstance(error, ShopTalkError) else "database_error"
        log.warning("order value %s %s cannot be compared with the %s threshold (%s); escalating", amount,
                    currency, target, code)
        return None
    return conversion.amount / (1 + conversion.markup_percent / 100)


# Rules per shop, cached per database (keyed weakly by the engine's pool: a disposed engine takes its entries).
# A cached copy is trusted for RULES_RECHECK_SECONDS; after that one primary-key read of `updated_at` tells
# whether it moved (another process saved), and only then is the row parsed again. A save in this process makes every
# read check the stamp for a while (the save may not be committed yet, or may roll back).
RULES_RECHECK_SECONDS = 1.0
_UNSETTLED_SECONDS = 10.0


@dataclass
class _CachedRules:
    stamp: datetime | None
    rules: EscalationRules
    trusted_until: float


_rules_cache: weakref.WeakKeyDictionary[Any, dict[int, _CachedRules]] = weakref.WeakKeyDictionary()
_rules_unsettled: weakref.WeakKeyDictionary[Any, dict[int, float]] = weakref.WeakKeyDictionary()


def _cache_key(session: AsyncSession) -> Any:
    # The engine's connection pool: shared by the engine's option copies (every unit of work makes one),
    # and gone (with its cache entries) when the engine is disposed.
    return session.get_bind().engine.pool


async def rules_of(session: AsyncSession, *, shop_id: int = DEFAULT_SHOP_ID) -> EscalationRules:
    """The shop's escalation rules (defaults when it saved none); cheap to call on every message."""
    bind = _cache_key(session)
    per_shop = _rules_cache.setdefault(bind, {})
    cached = per_shop.get(shop_id)
    now = monotonic()
    if cached is not None and now < cached.trusted_until:
        return cached.rules
    repo = RulesRepository(session)
    stamp = await repo.rules_stamp(shop_id)
    if cached is None or cached.stamp is None or stamp is None or as_utc(cached.stamp) != as_utc(stamp):
        row = await repo.rules(shop_id, fresh=True)  # never the identity map's older copy
        rules = _stored_rules(row.rules, shop_id) if row is not None else EscalationRules()
        stamp = row.updated_at if row is not None else None
    else:
        rules = cached.rules
    unsettled = _rules_unsettled.get(bind, {}).get(shop_id, 0.0) > now
    per_shop[shop_id] = _CachedRules(stamp=stamp, rules=rules,
                                     trusted_until=now if unsettled else now + RULES_RECHECK_SECONDS)
    return rules


def _stored_rules(data: dict[str, Any], shop_id: int) -> EscalationRules:
    try:
        return EscalationRules.model_validate(data)
    except ValidationError as error:
        # Saved before a rule was tightened (or edited by hand): every trigger on, the safer side, and say so
        # rather than failing every shopper message.
        log.error("shop %s: stored escalation rules are invalid (%s problems); using the defaults until a "
                  "supervisor saves them again", shop_id, error.error_count())
        return EscalationRules()


async def save_rules(session: AsyncSession, *, shop_id: int, rules: EscalationRules) -> EscalationRules:
    repo = RulesRepository(session)
    row = await repo.rules(shop_id)
    data = rules.model_dump(mode="json")
    if row is None:
        session.add(ShopHandoffRules(shop_id=shop_id, rules=data, updated_at=utcnow()))
    else:
        row.rules = data
        row.updated_at = utcnow()
    await session.flush()
    bind = _cache_key(session)
    _rules_cache.get(bind, {}).pop(shop_id, None)
    _rules_unsettled.setdefault(bind, {})[shop_id] = monotonic() + _UNSETTLED_SECONDS
    return rules
