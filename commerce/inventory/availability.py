"""Stock a shopper can actually get: only the warehouse that ships to the shopper's country counts.

Search, recommendations, the cart and orders all ask "is this SKU in stock for this shopper?"; `stock_by_reach`
is the one statement that answers, and orders reserve at the same `shipping_warehouse`. Units in a warehouse whose
shipping zone does not cover the shopper's country cannot be sent to them, so they do not count.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from commerce.cross_border.errors import DestinationNotServed
from commerce.cross_border.shipping import zone_for
from commerce.inventory.models import Location, StockLevel
from kit.errors import InvalidInput

_WAREHOUSE_KEY = "inventory.shipping_warehouse"


@event.listens_for(Session, "after_transaction_end")
def _forget_warehouses(session: Session, _transaction: Any) -> None:
    session.info.pop(_WAREHOUSE_KEY, None)  # a copy lives at most one transaction


async def shipping_warehouse(session: AsyncSession, *, country: str | None) -> str | None:
    """The inventory location code that ships to `country`, or None when every location counts.

    None means: no country given, a country no shipping zone serves (or not a country at all: the
    shopper hears "we can't ship there" at checkout, not an empty shop), or a zone with no warehouse set.
    Read once per transaction per country (a search checks stock several times)."""
    if not country or not country.strip():
        return None
    code = country.strip().upper()
    cache: dict[str, str | None] = session.info.setdefault(_WAREHOUSE_KEY, {})
    if code not in cache:
        try:
            zone = await zone_for(session, country=code)
        except (DestinationNotServed, InvalidInput):
            cache[code] = None
        else:
            cache[code] = zone.warehouse or None
    return cache[code]


async def available_for_country(session: AsyncSession, *, skus: Sequence[str],
                                country: str | None) -> dict[str, int]:
    """Units that can still be sold per SKU (on hand minus reserved) to a shopper in `country`: only
    the warehouse that ships there counts (every location when `shipping_warehouse` is None).
    Unknown or unstocked SKUs get 0; the first figure of `stock_by_reach`, the one reader of this rule."""
    return {sku: near for sku, (near, _) in (await stock_by_reach(session, skus=skus, country=country)).items()}


async def stock_by_reach(session: AsyncSession, *, skus: Sequence[str],
                         country: str | None) -> dict[str, tuple[int, int]]:
    """Per SKU, (units that can be sold to a shopper in `country`, units that can be sold anywhere), read in one
    statement: search uses the second to say "in stock elsewhere" rather than "none" when the country was only
    assumed. Without a shipping warehouse for `country` both figures count every location."""
    wanted = list(dict.fromkeys(skus))
    if not wanted:
        return {}
    warehouse = await shipping_warehouse(session, country=country)
    units = StockLevel.on_hand - StockLevel.reserved
    here = func.sum(case((Location.code == warehouse, units), else_=0)) if warehouse is not None else func.sum(units)
    query = (select(StockLevel.sku, here, func.sum(units))
             .join(Location, Location.id == StockLevel.location_id)
             .where(StockLevel.sku.in_(wanted)).group_by(StockLevel.sku))
    found = {sku: (max(0, int(near or 0)), max(0, int(anywhere or 0)))
             for sku, near, anywhere in await session.execute(query)}
    return {sku: found.get(sku, (0, 0)) for sku in wanted}
