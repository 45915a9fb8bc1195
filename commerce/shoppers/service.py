"""Shoppers and their identities on each channel, so an order is only ever shown to its owner."""
from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Select, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.shoppers.models import Shopper, ShopperIdentity
from kit.clock import utcnow
from kit.db import insert_if_new
from kit.errors import InvalidInput, NotFound

IDENTITY_KINDS = ("telegram", "webchat", "rest", "email", "marketplace", "whatsapp", "wechat")
_IDENTITIES = cast(Table, ShopperIdentity.__table__)


class ShopperNotFound(NotFound):
    code = "shopper_not_found"
    title = "Shopper not found"


def _by_identity(kind: str, external_id: str) -> Select[Shopper]:
    return select(Shopper).join(ShopperIdentity, ShopperIdentity.shopper_id == Shopper.id).where(
        ShopperIdentity.kind == kind, ShopperIdentity.external_id == external_id)


async def shopper_for_identity(session: AsyncSession, *, kind: str, external_id: str,
                               name: str | None = None, locale: str | None = None) -> Shopper:
    """The shopper behind a channel identity, created on first contact (one statement for a known identity,
    three for a new one, no savepoint: this runs on every new conversation)."""
    if kind not in IDENTITY_KINDS:
        raise InvalidInput(f"Unknown identity kind {kind!r}.", code="unknown_identity_kind")
    known = await session.scalar(_by_identity(kind, external_id))
    if known is not None:
        return known
    now = utcnow()
    shopper = Shopper(name=name, locale=locale, created_at=now)
    session.add(shopper)
    await session.flush()
    linked = await session.scalar(
        insert_if_new(session.get_bind().dialect.name, _IDENTITIES, ("kind", "external_id")),
        {"shopper_id": shopper.id, "kind": kind, "external_id": external_id, "created_at": now})
    if linked is None:
        # Two first messages raced and the other one linked the identity first: its shopper is the one.
        await session.delete(shopper)
        await session.flush()
        winner = await session.scalar(_by_identity(kind, external_id))
        assert winner is not None
        return winner
    return shopper


async def link_identity(session: AsyncSession, *, shopper_id: int, kind: str, external_id: str) -> None:
    """Attach another identity (e.g. a verified e-mail) to a shopper; idempotent."""
    existing = await session.scalar(select(ShopperIdentity).where(ShopperIdentity.kind == kind,
                                                                 ShopperIdentity.external_id == external_id))
    if existing is not None:
        if existing.shopper_id != shopper_id:
            raise InvalidInput("This identity belongs to another shopper.", code="identity_taken")
        return
    session.add(ShopperIdentity(shopper_id=shopper_id, kind=kind, external_id=external_id, created_at=utcnow()))
    await session.flush()


async def get_shopper(session: AsyncSession, *, shopper_id: int) -> Shopper:
    shopper = await session.get(Shopper, shopper_id)
    if shopper is None:
        raise ShopperNotFound(f"No shopper {shopper_id}.")
    return shopper


async def shoppers_by_id(session: AsyncSession, *, shopper_ids: Sequence[int]) -> dict[int, Shopper]:
    """Several shoppers in one query (those that exist), by id."""
    if not shopper_ids:
        return {}
    rows = (await session.scalars(select(Shopper).where(Shopper.id.in_(set(shopper_ids))))).all()
    return {row.id: row for row in rows}


async def identities(session: AsyncSession, *, shopper_id: int) -> list[ShopperIdentity]:
    return list((await session.scalars(select(ShopperIdentity).where(ShopperIdentity.shopper_id == shopper_id)
                                       .order_by(ShopperIdentity.id))).all())
