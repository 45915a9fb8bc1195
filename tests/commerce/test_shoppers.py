"""Shoppers behind channel identities: created once on first contact, even when two first messages race."""
from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from commerce.shoppers.models import Shopper, ShopperIdentity
from commerce.shoppers.service import shopper_for_identity
from kit.db import Database


async def _count(db: Database) -> tuple[int, int]:
    async with db.sessions() as session:
        shoppers = await session.scalar(select(func.count()).select_from(Shopper))
        identities = await session.scalar(select(func.count()).select_from(ShopperIdentity))
    return int(shoppers or 0), int(identities or 0)


async def test_first_contact_creates_the_shopper_and_later_contacts_find_it(db: Database) -> None:
    async with db.unit_of_work() as session:
        first = await shopper_for_identity(session, kind="telegram", external_id="42", name="Ann", locale="en")
    async with db.unit_of_work() as session:
        again = await shopper_for_identity(session, kind="telegram", external_id="42", name="Other")
        other_channel = await shopper_for_identity(session, kind="webchat", external_id="42")
    assert (again.id, again.name, again.locale) == (first.id, "Ann", "en")
    assert other_channel.id != first.id
    assert await _count(db) == (2, 2)


async def test_two_first_messages_at_once_make_one_shopper(db: Database) -> None:
    first_linked = asyncio.Event()

    async def contact(wait: bool) -> int:
        async with db.unit_of_work() as session:
            if wait:
                await first_linked.wait()  # the other transaction has linked the identity, not yet committed
            shopper = await shopper_for_identity(session, kind="rest", external_id="same-sender")
            if not wait:
                first_linked.set()
                await asyncio.sleep(0.3)  # the second one now waits on the identity's unique key (PostgreSQL)
            return shopper.id

    ids = await asyncio.gather(contact(False), contact(True))
    assert ids[0] == ids[1]
    assert await _count(db) == (1, 1)  # the loser's shopper row was removed again
