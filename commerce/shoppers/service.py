"""Shoppers and their identities on each channel, so an order is only ever shown to its owner."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.shoppers.models import Shopper, ShopperIdentity
from kit.clock import utcnow
from kit.errors import InvalidInput, NotFound

IDENTITY_KINDS = ("telegram", "webchat", "rest", "email", "marketplace")


class ShopperNotFound(NotFound):
    code = "shopper_not_found"
    title = "Shopper not found"


async def shopper_for_identity(session: AsyncSession, *, kind: str, external_id: str,
                               name: str | None = None, locale: str | None = None) -> Shopper:
    """The shopper behind a channel identity, created on first contact."""
    if kind not in IDENTITY_KINDS:
        raise InvalidInput(f"Unknown identity kind {kind!r}.", code="unknown_identity_kind")
    identity = await session.scalar(select(ShopperIdentity).where(ShopperIdentity.kind == kind,
                                                                 ShopperIdentity.external_id == external_id))
    if identity is not None:
        shopper = await session.get(Shopper, identity.shopper_id)
        assert shopper is not None
        return shopper
    now = utcnow()
    try:
        async with session.begin_nested():
            shopper = Shopper(name=name, locale=locale, created_at=now)
            session.add(shopper)
            await session.flush()
            session.add(ShopperIdentity(shopper_id=shopper.id, kind=kind, external_id=external_id, created_at=now))
            await session.flush()
    except IntegrityError:
        # Two first messages raced; the other one created the shopper.
        identity = await session.scalar(select(ShopperIdentity).where(
            ShopperIdentity.kind == kind, ShopperIdentity.external_id == external_id))
        assert identity is not None
        found = await session.get(Shopper, identity.shopper_id)
        assert found is not None
        return found
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


async def identities(session: AsyncSession, *, shopper_id: int) -> list[ShopperIdentity]:
    return list((await session.scalars(select(ShopperIdentity).where(ShopperIdentity.shopper_id == shopper_id)
                                       .order_by(ShopperIdentity.id))).all())
