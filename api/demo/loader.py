"""Loads the demo shop from api/demo/catalog.json through the domain services."""
from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.demo.agents import DEMO_PASSWORD, load_demo_agents
from commerce.catalog import service as catalog
from commerce.catalog.schemas import CategoryIn, ProductIn, VariantIn
from commerce.channels import service as channels
from commerce.cross_border import load_cross_border_defaults
from commerce.inventory import service as inventory
from commerce.orders import service as orders
from commerce.orders.schemas import OrderIn, OrderLineIn
from commerce.search import service as search
from commerce.shoppers import service as shoppers
from kit.clock import utcnow
from knowledge_base import load_demo_faq

CATALOG_FILE = Path(__file__).with_name("catalog.json")


def demo_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    return data


async def load_catalog(session: AsyncSession, data: dict[str, Any]) -> None:
    for location in data["locations"]:
        await inventory.create_location(session, code=location["code"], name=location["name"],
                                        country=location["country"])
    for channel in data["channels"]:
        await channels.create_channel(session, code=channel["code"], name=channel["name"], kind=channel["kind"],
                                      sync_mode=channel.get("sync_mode", "direct"))
    for category in data["categories"]:
        await catalog.create_category(session, data=CategoryIn(**category))
    for product in data["products"]:
        variants = [VariantIn(sku=v["sku"], attributes=v.get("attributes") or {},
                              price=Decimal(v["price"]) if v.get("price") else None) for v in product["variants"]]
        await catalog.create_product(session, data=ProductIn(
            slug=product["slug"], category=product["category"], title=product["title"],
            description=product.get("description") or {}, brand=product.get("brand"), tags=product.get("tags") or [],
            image_url=product.get("image_url"), base_price=Decimal(product["base_price"]),
            currency=product["currency"], weight_grams=product.get("weight_grams") or 500,
            sellable_countries=product.get("sellable_countries") or [], variants=variants))
        for v in product["variants"]:
            for location_code, quantity in (v.get("stock") or {}).items():
                await inventory.set_stock(session, sku=v["sku"], location=location_code, on_hand=int(quantity))
    # The everyday names shoppers use that the titles lack (充电宝 for 移动电源): merchant synonym groups, edited in
    # the back office's search page like any shop's.
    for terms in data.get("synonyms") or []:
        await search.add_synonyms(session, terms=list(terms))


async def load_people_and_orders(session: AsyncSession, data: dict[str, Any]) -> None:
    shopper_ids: dict[str, int] = {}
    for person in data["shoppers"]:
        first, *others = person["identities"]
        shopper = await shoppers.shopper_for_identity(session, kind=first["kind"], external_id=first["external_id"],
                                                      name=person["name"], locale=person.get("locale"))
        shopper.email = person.get("email")
        shopper.country = person.get("country")
        shopper.currency = person.get("currency")
        for identity in others:
            await shoppers.link_identity(session, shopper_id=shopper.id, kind=identity["kind"],
                                         external_id=identity["external_id"])
        shopper_ids[person["key"]] = shopper.id
    now = utcnow()
    for spec in sorted(data["orders"], key=lambda o: o["number"]):
        order, _ = await orders.create_order(session, number=spec["number"], data=OrderIn(
            channel=spec["channel"], external_id=spec["external_id"], currency=spec["currency"],
            shopper_id=shopper_ids.get(spec.get("shopper", "")), email=spec.get("email"),
            postcode=spec.get("postcode"), country=spec.get("country"),
            lines=[OrderLineIn(sku=line["sku"], quantity=line["quantity"],
                               unit_price=Decimal(line["unit_price"]) if line.get("unit_price") else None)
                   for line in spec["lines"]]))
        for status in spec["status_path"][1:]:
            shipping = status == "shipped"
            order = await orders.transition_order(
                session, order_id=order.id, to_status=status,
                carrier=spec.get("carrier") if shipping else None,
                tracking_number=spec.get("tracking_number") if shipping else None)
        # Back-date the demo history so it reads like a real shop's past weeks.
        placed = now - timedelta(days=int(spec.get("days_ago", 0)))
        order.created_at = placed
        for step, change in enumerate(order.history):
            change.changed_at = placed + timedelta(hours=20 * step)
    await session.flush()


async def load_demo(session: AsyncSession) -> str:
    """Load the whole demo shop once; a second call only refreshes the demo exchange rates."""
    # Every load: cross-border rules fill only empty tables, and demo rates are re-stamped to today so
    # quotes keep working (they are refused once stale).
    await load_cross_border_defaults(session)
    if await catalog.categories(session):
        return "demo shop already loaded (demo exchange rates refreshed)"
    data = demo_data()
    await load_catalog(session, data)
    await load_people_and_orders(session, data)
    faq = await load_demo_faq(session)
    agents = await load_demo_agents(session)
    return (f"demo shop loaded: {len(data['products'])} products, {len(data['orders'])} orders, "
            f"{faq.created} FAQ entries, agents {', '.join(agents)} (password: {DEMO_PASSWORD}). "
            "Create a merchant API token with: shoptalk token create --name me --role merchant")
