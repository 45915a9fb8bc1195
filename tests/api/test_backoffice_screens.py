"""The back office screens for running the shop abroad and its sales channels, over HTTP as a browser uses them
(forms, cookies, CSRF): shipping zones, taxes and duties with their sources, exchange rates, sales channels, agents
and rules, insights, the multi-SKU stock take, variants on an existing product and the search ranking preview.
Each form is refused with the field named where the API refuses; a role without the permission gets a 403 page and
nothing changes; every change is in the audit log."""
from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import delete, func, select

from api.app import create_app
from api.http.merchant.backoffice_team import rules_form
from api.models import AuditEvent
from bot import handoff
from bot.conversations.models import Conversation, ConversationMessage
from bot.handoff.models import HandoffThread
from bot.handoff.rules import EscalationRules
from commerce.catalog import service as catalog
from commerce.channels import service as channels
from commerce.cross_border import admin, load_cross_border_defaults
from commerce.cross_border.models import ImportTaxRate, ShippingZone
from commerce.inventory import service as inventory
from commerce.orders import service as orders
from commerce.orders.schemas import OrderIn, OrderLineIn
from commerce.search import service as search
from kit.clock import utcnow
from kit.db import Database
from kit.outbox import OutboxEvent
from kit.settings import Settings
from tests.api.test_backoffice import make_account, signed_in
from tests.commerce.channels.conftest import make_stocked_shop
from tests.commerce.channels.conftest import shopify as shopify  # noqa: F401 (fixture)
from tests.commerce.channels.conftest import webhook as webhook  # noqa: F401 (fixture)
from tests.commerce.channels.doubles import ShopifyDouble, WebhookDouble
from tests.factories import make_product, make_shop
from tests.http import app_client


@pytest.fixture
async def client(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings, database=db)) as http:
        yield http


async def audit_count(db: Database, area: str) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)
                                        .where(AuditEvent.area == area)) or 0)


@pytest.fixture
async def shop(db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await load_cross_border_defaults(session, demo_rates=True)


# ------------------------------------------------------------------------------------------ shipping zones

async def test_edit_a_shipping_zone_and_its_services(client: httpx.AsyncClient, db: Database, shop: None) -> None:
    await make_account(db, "olga@shop.test", "owner")
    csrf = await signed_in(client, "olga@shop.test")
    async with db.sessions() as session:
        zone = next(z for z in await admin.list_zones(session) if "DE" in z.countries)
    listing = await client.get("/backoffice/shipping?country=DE")
    assert listing.status_code == 200
    assert f'href="/backoffice/shipping/{zone.id}"' in listing.text
    page = await client.get(f"/backoffice/shipping/{zone.id}")
    form = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    form.update({"csrf_token": csrf, "zone_id": str(zone.id), "name": "Europe (edited)", "served": "on"})
    form["svc-0-base_price"] = "7.5"
    form["svc-0-insurance_percent"] = "1.5"
    form["warehouse"] = "RTM"
    saved = await client.post("/backoffice/shipping/save", data=form)
    assert saved.status_code == 303, saved.text[:2000]
    async with db.sessions() as session:
        edited = await admin.get_zone(session, zone_id=zone.id)
    assert edited.name == "Europe (edited)"
    assert edited.warehouse == "RTM"
    assert str(edited.services[0].base_price.normalize()) == "7.5"
    assert await audit_count(db, "shipping") == 1
    # The API's rules, naming the field: a negative price, max below min days, a country of another zone.
    bad = dict(form, **{"svc-0-base_price": "-1"})
    refused = await client.post("/backoffice/shipping/save", data=bad)
    assert refused.status_code == 422
    assert 'id="err-svc-0-base_price"' in refused.text
    assert 'value="-1"' in refused.text  # what was typed is kept
    days = dict(form, **{"svc-0-min_days": "9", "svc-0-max_days": "2"})
    assert (await client.post("/backoffice/shipping/save", data=days)).status_code == 422
    async with db.sessions() as session:
        other = next(z for z in await admin.list_zones(session) if z.id != zone.id and z.countries)
    clash = dict(form, countries=form["countries"] + ", " + other.countries[0])
    conflict = await client.post("/backoffice/shipping/save", data=clash)
    assert conflict.status_code == 409
    assert 'id="err-countries"' in conflict.text
    assert await audit_count(db, "shipping") == 1  # refused saves wrote nothing


async def test_a_new_zone_and_staff_may_not_edit_taxes(client: httpx.AsyncClient, db: Database, shop: None) -> None:
    await make_account(db, "sid@shop.test", "staff")
    csrf = await signed_in(client, "sid@shop.test")
    created = await client.post("/backoffice/shipping/save", data={
        "csrf_token": csrf, "code": "moon", "name": "Moon base", "countries": "", "served": "on", "svc-count": "1",
        "svc-0-service": "standard", "svc-0-name": "Rocket", "svc-0-currency": "EUR", "svc-0-base_price": "99",
        "svc-0-min_days": "30", "svc-0-max_days": "60"})
    assert created.status_code == 303
    async with db.sessions() as session:
        before = int(await session.scalar(select(func.count()).select_from(ImportTaxRate)) or 0)
        assert await session.scalar(select(ShippingZone.name).where(ShippingZone.code == "moon")) == "Moon base"
    assert (await client.get("/backoffice/taxes")).status_code == 403
    refused = await client.post("/backoffice/taxes/tax-rates/save", data={
        "csrf_token": csrf, "country": "DE", "region": "EU", "tax_name": "VAT", "rate": "1",
        "effective_from": "2026-01-01", "source_title": "me", "source_url": ""})
    assert refused.status_code == 403
    assert "may not do this" in refused.text
    async with db.sessions() as session:
        assert int(await session.scalar(select(func.count()).select_from(ImportTaxRate)) or 0) == before
    assert await audit_count(db, "taxes") == 0


# ------------------------------------------------------------------------------------------ taxes and duties

async def test_taxes_show_their_sources_and_edit_through_the_apis_rules(client: httpx.AsyncClient, db: Database,
                                                                        shop: None) -> None:
    await make_account(db, "olga@shop.test", "owner")
    csrf = await signed_in(client, "olga@shop.test")
    listing = await client.get("/backoffice/taxes?kind=tax-rates&where=DE")
    assert listing.status_code == 200
    async with db.sessions() as session:
        row = next(r for r in await admin.list_rows(session, model=ImportTaxRate) if r.country == "DE")
    assert row.source_title in listing.text
    assert f'href="{row.source_url}"' in listing.text
    page = await client.get(f"/backoffice/taxes/tax-rates/{row.id}")
    assert row.source_title in page.text
    form = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    form.update({"csrf_token": csrf, "row_id": str(row.id), "rate": "19.5"})
    saved = await client.post("/backoffice/taxes/tax-rates/save", data=form)
    assert saved.status_code == 303, saved.text[:3000]
    async with db.sessions() as session:
        assert str((await admin.get_row(session, model=ImportTaxRate, row_id=row.id)).rate.normalize()) == "19.5"
    [event] = await _events(db, "taxes")
    assert event.details["rate"] == {"before": "19", "after": "19.5"}
    for field, value in (("rate", "101"), ("country", "ZZZ"), ("effective_to", "2000-01-01"), ("source_title", "")):
        bad = await client.post("/backoffice/taxes/tax-rates/save", data=dict(form, **{field: value}))
        assert bad.status_code == 422, (field, bad.status_code)
        assert f'id="err-{field}"' in bad.text, field
    assert len(await _events(db, "taxes")) == 1
    duty = await client.get("/backoffice/taxes?kind=duty-rates")
    assert duty.status_code == 200
    rules = await client.get("/backoffice/taxes?kind=import-rules")
    assert "Source" in rules.text


async def _events(db: Database, area: str) -> list[AuditEvent]:
    async with db.sessions() as session:
        return list((await session.scalars(select(AuditEvent).where(AuditEvent.area == area)
                                           .order_by(AuditEvent.id))).all())


# --------------------------------------------------------------------------------------------- exchange rates

async def test_rates_show_age_and_source_warn_when_stale_and_refresh(client: httpx.AsyncClient, db: Database,
                                                                     shop: None) -> None:
    await make_account(db, "sid@shop.test", "staff")
    csrf = await signed_in(client, "sid@shop.test")
    old = (utcnow() - timedelta(days=9)).date().isoformat()
    async with db.unit_of_work() as session:
        from commerce.cross_border import import_rates
        await import_rates(session, content=f"date,base,currency,rate\n{old},EUR,KWD,0.33\n", source="csv-test")
    page = await client.get("/backoffice/rates")
    assert page.status_code == 200
    assert 'id="stale-warning"' in page.text
    assert "9 days" in page.text
    assert "csv-test" in page.text
    assert "demo-ecb" in page.text
    assert "E+" not in page.text  # rates as people write them (19290, not 1.929E+4)
    today = utcnow().date().isoformat()
    refreshed = await client.post("/backoffice/rates/import", data={"csrf_token": csrf},
                                  files={"file": ("rates.csv", f"date,base,currency,rate\n{today},EUR,KWD,0.34\n",
                                                  "text/csv")})
    assert refreshed.status_code == 303
    page = await client.get("/backoffice/rates")
    assert 'id="stale-warning"' not in page.text
    assert "backoffice" in page.text
    broken = await client.post("/backoffice/rates/import", data={"csrf_token": csrf},
                               files={"file": ("rates.csv", b"date,base,currency,rate\nyesterday,EUR,KWD,x\n",
                                               "text/csv")})
    assert broken.status_code == 422
    assert 'id="err-file"' in broken.text
    one = await client.post("/backoffice/rates/set", data={"csrf_token": csrf, "base": "EUR", "currency": "XYZ",
                                                            "rate": "2", "as_of": today})
    assert one.status_code == 422
    assert 'id="err-currency"' in one.text
    zero = await client.post("/backoffice/rates/set", data={"csrf_token": csrf, "base": "EUR", "currency": "USD",
                                                             "rate": "0", "as_of": today})
    assert zero.status_code == 422
    assert 'id="err-rate"' in zero.text
    assert len(await _events(db, "rates")) == 1


# --------------------------------------------------------------------------------------------- sales channels

async def test_channels_show_sync_status_reconcile_disconnect_and_connect(
        client: httpx.AsyncClient, db: Database, shopify: ShopifyDouble, webhook: WebhookDouble) -> None:
    await make_stocked_shop(db, shopify, webhook)
    await make_account(db, "sid@shop.test", "staff")
    csrf = await signed_in(client, "sid@shop.test")
    old = await client.get("/merchant/channels")
    assert (old.status_code, old.headers["location"]) == (308, "/backoffice/channels")
    page = await client.get("/backoffice/channels")
    assert page.status_code == 200
    assert "Enter a merchant token" not in page.text
    assert 'id="channel-site"' in page.text
    assert 'id="channel-mkt"' in page.text
    assert "push and pull" in page.text  # mkt's mode
    assert "connector: webhook" in page.text
    webhook.list_sku("KET-1", 99)  # the channel drifted from our 10
    done = await client.post("/backoffice/channels/site/reconcile", data={"csrf_token": csrf})
    assert done.status_code == 303
    assert "drifted" in done.headers["location"]
    assert webhook.quantity("KET-1") == 10, done.headers["location"]
    page = await client.get("/backoffice/channels")
    assert "Last reconciled" in page.text
    # Connecting refuses an incomplete config, naming the field, and never echoes a secret.
    missing = await client.post("/backoffice/channels/site/connect", data={
        "csrf_token": csrf, "connector": "shopify", "sync_mode": "push", "base_url": webhook.base_url,
        "secret": "top-secret-value"})
    assert missing.status_code == 422
    assert 'id="err-access_token"' in missing.text
    assert "top-secret-value" not in missing.text
    off = await client.post("/backoffice/channels/site/disconnect", data={"csrf_token": csrf})
    assert off.status_code == 303
    async with db.sessions() as session:
        site = await channels.get_channel(session, code="site")
        assert (site.connector, site.sync_mode, "secret" in site.config) == ("none", "direct", False)
    no_secret = await client.post("/backoffice/channels/site/connect", data={
        "csrf_token": csrf, "connector": "webhook", "sync_mode": "push", "base_url": webhook.base_url})
    assert no_secret.status_code == 422
    assert 'id="err-secret"' in no_secret.text
    again = await client.post("/backoffice/channels/site/connect", data={
        "csrf_token": csrf, "connector": "webhook", "sync_mode": "push", "base_url": webhook.base_url,
        "secret": webhook.secret})
    assert again.status_code == 303
    bad_share = await client.post("/backoffice/channels/mkt/allocation", data={
        "csrf_token": csrf, "allocation": "share", "allocation_value": "150", "safety_stock": "0"})
    assert bad_share.status_code == 422
    assert 'id="err-allocation_value"' in bad_share.text
    new = await client.post("/backoffice/channels/new", data={
        "csrf_token": csrf, "code": "Bad Code", "name": "x", "kind": "web", "connector": "webhook",
        "sync_mode": "push", "base_url": webhook.base_url, "secret": "s" * 20})
    assert new.status_code == 422
    assert 'id="err-code"' in new.text
    actions = [e.action for e in await _events(db, "channels")]
    assert actions == ["reconciled", "channel disconnected", "channel connected"]


# ------------------------------------------------------------------------------------------ agents and rules

async def test_rules_are_saved_through_the_consoles_model_and_audited(client: httpx.AsyncClient,
                                                                       db: Database) -> None:
    await make_account(db, "sam@shop.test", "supervisor")
    await make_account(db, "ada@shop.test", "agent")
    csrf = await signed_in(client, "sam@shop.test")
    page = await client.get("/backoffice/rules")
    assert page.status_code == 200
    assert "ada@shop.test" in page.text
    form = rules_form(EscalationRules())
    form.update({"csrf_token": csrf, "sla_warn_minutes": "3", "sla_breach_minutes": "10", "auto_assign": "",
                 "mixed_reply_by_intent": "order_status = draft_for_agent"})
    saved = await client.post("/backoffice/rules", data=form)
    assert saved.status_code == 303
    async with db.sessions() as session:
        rules = await handoff.rules.rules_of(session)
    assert (rules.sla_warn_minutes, rules.sla_breach_minutes, rules.auto_assign) == (3, 10, False)
    assert rules.mixed_reply_by_intent == {"order_status": "draft_for_agent"}
    [event] = await _events(db, "rules")
    assert event.details["sla_breach_minutes"] == {"before": 5, "after": 10}
    assert event.actor.startswith("Sam")
    assert "5 → 10" in (await client.get("/backoffice/rules")).text
    # The console's own rules refuse: breach before warn, an unknown time zone, a currency that is not one.
    for changes, field in (({"sla_warn_minutes": "9", "sla_breach_minutes": "4"}, "sla_breach_minutes"),
                           ({"hours_timezone": "Mars/Olympus"}, "hours_timezone"),
                           ({"order_value_currency": "XXQ"}, "order_value_currency"),
                           ({"sla_warn_minutes": "0"}, "sla_warn_minutes")):
        bad = await client.post("/backoffice/rules", data=dict(form, **changes))
        assert bad.status_code == 422, changes
        assert f'id="err-{field}"' in bad.text, (changes, field)
    assert len(await _events(db, "rules")) == 1
    # The console reads the same rules.
    assert (await client.get("/api/v1/agent/rules")).json()["sla_breach_minutes"] == 10


async def test_staff_and_agents_may_not_change_the_rules(client: httpx.AsyncClient, db: Database) -> None:
    await make_account(db, "ada@shop.test", "agent")
    csrf = await signed_in(client, "ada@shop.test")
    assert (await client.get("/backoffice/rules")).status_code == 403
    form = dict(rules_form(EscalationRules()), csrf_token=csrf, sla_breach_minutes="60")
    refused = await client.post("/backoffice/rules", data=form)
    assert refused.status_code == 403
    async with db.sessions() as session:
        assert (await handoff.rules.rules_of(session)).sla_breach_minutes == 5
    assert await _events(db, "rules") == []


# ------------------------------------------------------------------------------------ insights and dashboard

async def _conversation(db: Database, sender: str, turns: list[tuple[str, str, dict[str, object] | None]],
                        *, handed_off: bool = False) -> None:
    """A conversation with (shopper text, intent, the bot reply's content) turns, stored as the engine stores them."""
    now = utcnow()
    async with db.unit_of_work() as session:
        conversation = Conversation(channel="webchat", sender_id=sender, created_at=now, updated_at=now)
        session.add(conversation)
        await session.flush()
        for text, intent, content in turns:
            asked = ConversationMessage(conversation_id=conversation.id, direction="in", channel="webchat",
                                        author="shopper", text=text, created_at=now,
                                        nlu={"text": text, "intent": {"name": intent, "confidence": 0.9}})
            session.add(asked)
            await session.flush()
            session.add(ConversationMessage(conversation_id=conversation.id, direction="out", channel="webchat",
                                            author="bot", text="…", content=content, in_reply_to=asked.id,
                                            created_at=now))
        if handed_off:
            session.add(HandoffThread(conversation_id=conversation.id, status="open", opened_at=now, updated_at=now))


async def test_insights_and_the_dashboard_show_todays_figures_and_the_gaps(client: httpx.AsyncClient,
                                                                         db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 5}})
        order, _ = await orders.create_order(session, data=OrderIn(channel="web", external_id="w-1", currency="EUR",
                                                                lines=[OrderLineIn(sku="KET-1", quantity=2)]))
        await orders.transition_order(session, order_id=order.id, to_status="paid")
        await search.record_search(session, query="hoverboard", language="en", channel="webchat", result_count=0)
    answered: dict[str, object] = {"custom": {"faq_entry_id": 4}, "buttons": []}
    await _conversation(db, "s1", [("Do you ship to Mars?", "faq", {"buttons": []}),
                                   ("How long is the warranty?", "faq", answered)])
    await _conversation(db, "s2", [("do you ship to   mars?", "faq", None), ("blorp zzz", "nlu_fallback", None)],
                        handed_off=True)
    await _conversation(db, "s3", [("Which one is cheaper?", "faq",
                                     {"buttons": [{"title": "Prices", "payload": "faq:entry:7"}]})])
    await make_account(db, "olga@shop.test", "owner")
    await signed_in(client, "olga@shop.test")
    page = await client.get("/backoffice/insights?days=1")
    assert page.status_code == 200
    figures = page.text[page.text.index('id="conversation-figures"'):page.text.index('id="faq-gaps"')]
    assert re.search(r"Conversations</small><b>3</b>", figures)
    assert re.search(r"Handed to a person</small><b>1</b>", figures)
    assert re.search(r"Handled by the bot alone</small><b>2</b>", figures)
    gaps = page.text[page.text.index('id="faq-gaps"'):page.text.index('id="unanswered"')]
    assert "2× “Do you ship to Mars?”" in gaps or "2× “do you ship to   mars?”" in gaps
    assert "warranty" not in gaps  # answered from the FAQ
    assert "cheaper" not in gaps  # the FAQ suggested entries
    assert "blorp zzz" in page.text[page.text.index('id="unanswered"'):]
    assert "hoverboard" in page.text
    assert "€99.80" in page.text
    dashboard = (await client.get("/backoffice")).text
    today = dashboard[dashboard.index('id="today"'):]
    assert re.search(r"Conversations</small><b>3</b>", today)
    assert re.search(r"Orders</small><b>1</b>", today)
    assert "€99.80" in today
    assert "Questions the FAQ missed</small><b>1</b>" in today
    await make_account(db, "ada@shop.test", "agent")
    client.cookies.clear()
    await signed_in(client, "ada@shop.test")
    agent_view = (await client.get("/backoffice")).text
    assert "Conversations</small><b>3</b>" in agent_view
    assert "€99.80" not in agent_view  # an agent has no orders permission
    assert (await client.get("/backoffice/insights")).status_code == 403


# --------------------------------------------------------------------------------------- multi-SKU stock take

def hidden(page: httpx.Response, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page.text)
    assert found, name
    return html.unescape(found.group(1))


async def test_a_multi_sku_stock_take_previews_then_applies_in_one_transaction(
        client: httpx.AsyncClient, db: Database, shopify: ShopifyDouble, webhook: WebhookDouble) -> None:
    await make_stocked_shop(db, shopify, webhook)  # KET-1 10, KET-2 5, MUG-1 3 at RTM; site and mkt take pushes
    await make_account(db, "sid@shop.test", "staff")
    csrf = await signed_in(client, "sid@shop.test")
    async with db.unit_of_work() as session:
        await session.execute(delete(OutboxEvent))  # the pushes of the set-up itself
    csv_file = "sku,counted\nKET-1,12\nKET-2,5\nMUG-1,0\n"
    preview = await client.post("/backoffice/stock/take/preview", data={"csrf_token": csrf, "location": "RTM"},
                                files={"file": ("count.csv", csv_file.encode(), "text/csv")})
    assert preview.status_code == 200
    table = preview.text[preview.text.index('id="preview"'):]
    assert "+2" in table
    assert "-3" in table
    assert "Apply 2 changes" in table
    async with db.sessions() as session:  # nothing saved by the preview
        assert {lvl.sku: lvl.on_hand for lvl in await inventory.stock_levels(session, skus=["KET-1", "MUG-1"])} \
            == {"KET-1": 10, "MUG-1": 3}
    apply = {"csrf_token": csrf, "location": "RTM", "lines": hidden(preview, "lines"),
             "expected": hidden(preview, "expected"), "reason": "year end"}
    # A sale between the preview and the apply: the whole count is refused, nothing applied.
    async with db.unit_of_work() as session:
        await inventory.adjust_stock(session, sku="MUG-1", location="RTM", delta=-1)
    moved = await client.post("/backoffice/stock/take/apply", data=apply)
    assert moved.status_code == 409
    assert "MUG-1" in moved.text
    assert 'id="preview"' in moved.text  # a fresh preview to apply instead
    async with db.sessions() as session:
        assert {lvl.sku: lvl.on_hand for lvl in await inventory.stock_levels(session, skus=["KET-1"])} == {"KET-1": 10}
    apply["expected"] = hidden(moved, "expected")
    done = await client.post("/backoffice/stock/take/apply", data=apply)
    assert done.status_code == 200
    assert 'id="applied"' in done.text
    async with db.sessions() as session:
        levels = {lvl.sku: lvl.on_hand for lvl in await inventory.stock_levels(session, skus=["KET-1", "KET-2",
                                                                                               "MUG-1"])}
        queued = {(e.payload["channel"], e.payload["sku"]) for e in (await session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == "channel.stock_push"))).all()}
    assert levels == {"KET-1": 12, "KET-2": 5, "MUG-1": 0}
    assert {("site", "KET-1"), ("mkt", "KET-1"), ("site", "MUG-1"), ("mkt", "MUG-1")} <= queued
    assert ("site", "KET-2") not in queued  # counted the same: not touched
    assert "site · KET-1 · pending" in done.text
    events = [(e.subject, e.details["before"], e.details["after"], e.details["reason"]) for e in
              await _events(db, "stock") if e.action == "stock take"]
    assert sorted(events) == [("KET-1", 10, 12, "year end"), ("MUG-1", 2, 0, "year end")]
    # Bad lines are named: an unknown SKU, a negative count, a SKU twice, words.
    for lines, words in (("KET-1, 3\nNOPE-9, 1", "NOPE-9"), ("KET-1, -1", "Line 1"), ("KET-1, 1\nKET-1, 2", "twice"),
                         ("KET-1, lots", "Line 1"), ("KET-1", "Line 1")):
        bad = await client.post("/backoffice/stock/take/preview", data={"csrf_token": csrf, "location": "RTM",
                                                                         "lines": lines})
        assert bad.status_code == 422, lines
        assert 'id="err-lines"' in bad.text
        assert words in bad.text


async def test_an_agent_may_not_take_stock(client: httpx.AsyncClient, db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 5}})
    await make_account(db, "ada@shop.test", "agent")
    csrf = await signed_in(client, "ada@shop.test")
    refused = await client.post("/backoffice/stock/take/apply", data={
        "csrf_token": csrf, "location": "RTM", "lines": "KET-1,50", "expected": "KET-1=5"})
    assert refused.status_code == 403
    async with db.sessions() as session:
        assert (await inventory.stock_levels(session, skus=["KET-1"]))[0].on_hand == 5


# ------------------------------------------------------------------------------------ variants and rank preview

async def test_variants_of_an_existing_product_are_added_edited_and_removed(client: httpx.AsyncClient,
                                                                           db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        product = await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 5}, "KET-2": {}})
        await make_product(session, slug="mug", skus={"MUG-1": {}})
        pid = product.id
        ket1 = next(v.id for v in product.variants if v.sku == "KET-1")
        ket2 = next(v.id for v in product.variants if v.sku == "KET-2")
    await make_account(db, "sid@shop.test", "staff")
    csrf = await signed_in(client, "sid@shop.test")
    page = await client.get(f"/backoffice/catalog/{pid}")
    assert 'id="variant-' in page.text
    added = await client.post(f"/backoffice/catalog/{pid}/variants", data={
        "csrf_token": csrf, "sku": "KET-3", "options": "colour=red, size=L", "price": "54.90"})
    assert added.status_code == 303
    edited = await client.post(f"/backoffice/catalog/{pid}/variants/{ket2}", data={
        "csrf_token": csrf, "options": "colour=blue", "price": "39.5"})
    assert edited.status_code == 303
    async with db.sessions() as session:
        current = {v.sku: v for v in (await catalog.get_product(session, product_id=pid)).variants}
    assert current["KET-3"].attributes == {"colour": "red", "size": "L"}
    assert current["KET-3"].price == Decimal("54.9")
    assert (current["KET-2"].attributes, current["KET-2"].price) == ({"colour": "blue"}, Decimal("39.5"))
    # Refused, naming the field: a SKU another product has, too many decimals for EUR, options twice, bad options.
    taken = await client.post(f"/backoffice/catalog/{pid}/variants", data={"csrf_token": csrf, "sku": "MUG-1"})
    assert taken.status_code == 409
    assert 'id="err-new-sku"' in taken.text
    assert "MUG-1" in taken.text
    cents = await client.post(f"/backoffice/catalog/{pid}/variants/{ket2}", data={
        "csrf_token": csrf, "options": "colour=blue", "price": "39.999"})
    assert cents.status_code == 422
    assert f'id="err-v{ket2}-price"' in cents.text
    assert "at most 2 decimal places" in cents.text
    assert 'value="39.999"' in cents.text
    same = await client.post(f"/backoffice/catalog/{pid}/variants/{ket2}", data={
        "csrf_token": csrf, "options": "colour=red, size=L", "price": ""})
    assert same.status_code == 409
    assert f'id="err-v{ket2}-options"' in same.text
    assert "KET-3" in same.text
    garbled = await client.post(f"/backoffice/catalog/{pid}/variants", data={
        "csrf_token": csrf, "sku": "KET-9", "options": "colour", "price": ""})
    assert garbled.status_code == 422
    assert 'id="err-new-options"' in garbled.text
    # A variant with stock cannot go; one without can.
    held = await client.post(f"/backoffice/catalog/{pid}/variants/{ket1}/remove", data={"csrf_token": csrf})
    assert held.status_code == 409
    assert "RTM: 5 on hand" in held.text
    gone = await client.post(f"/backoffice/catalog/{pid}/variants/{ket2}/remove", data={"csrf_token": csrf})
    assert gone.status_code == 303
    async with db.sessions() as session:
        assert sorted(v.sku for v in (await catalog.get_product(session, product_id=pid)).variants) == ["KET-1",
                                                                                                       "KET-3"]
    actions = sorted((e.area, e.action) for e in await _events(db, "catalog") + await _events(db, "price"))
    assert actions == [("catalog", "variant added"), ("catalog", "variant edited"), ("catalog", "variant removed"),
                       ("price", "variant price changed")]
    # JPY has no decimals.
    async with db.unit_of_work() as session:
        yen = await make_product(session, slug="yen-mug", skus={"YEN-1": {}}, price="1200", currency="JPY")
    refused = await client.post(f"/backoffice/catalog/{yen.id}/variants", data={
        "csrf_token": csrf, "sku": "YEN-2", "options": "size=S", "price": "1200.5"})
    assert refused.status_code == 422
    assert "JPY prices have at most 0 decimal places" in refused.text


async def test_the_rank_preview_is_the_shoppers_search_with_pins_and_reasons(client: httpx.AsyncClient,
                                                                            db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        glass = await make_product(session, slug="glass-kettle", title="Glass kettle", skus={"GK-1": {"RTM": 4}})
        steel = await make_product(session, slug="steel-kettle", title="Steel kettle", skus={"SK-1": {"RTM": 4}})
        await make_product(session, slug="empty-kettle", title="Empty kettle", skus={"EK-1": {}})
        await make_product(session, slug="teapot", title="Teapot", skus={"TP-1": {"RTM": 2}})
        glass_id, steel_id = glass.id, steel.id
    await make_account(db, "sid@shop.test", "staff")
    csrf = await signed_in(client, "sid@shop.test")
    page = await client.get(f"/backoffice/catalog/{steel_id}", params={"rank": "kettle"})
    assert page.status_code == 200
    preview = page.text[page.text.index('id="rank-preview"'):]
    assert "Glass kettle" in preview
    assert "Empty kettle" not in preview  # out of stock: the shopper would not see it
    assert "Teapot" not in preview
    assert "words match" in preview
    pinned = await client.post("/backoffice/search/rules", data={"csrf_token": csrf, "kind": "pin",
                                                                  "product": "teapot", "q": "kettle",
                                                                  "position": "1"})
    assert pinned.status_code == 303
    page = await client.get(f"/backoffice/catalog/{steel_id}", params={"rank": "kettle"})
    preview = page.text[page.text.index('id="rank-preview"'):]
    rows = re.findall(r"<tr[^>]*><td>(\d+)</td><td>([^<]+)<", preview)
    assert rows[0] == ("1", "Teapot ")
    assert "pinned at place 1 for “kettle”" in preview
    assert re.search(r"This product is <b>#\d</b>", preview)
    await client.post("/backoffice/search/rules", data={"csrf_token": csrf, "kind": "bury", "product": "glass-kettle",
                                                         "q": "kettle", "position": "1"})
    page = await client.get(f"/backoffice/catalog/{glass_id}", params={"rank": "kettle"})
    preview = page.text[page.text.index('id="rank-preview"'):]
    assert "buried for “kettle”" in preview
    rows = re.findall(r"<tr[^>]*><td>(\d+)</td><td>([^<]+)<", preview)
    assert [name for _, name in rows] == ["Teapot ", "Steel kettle ", "Glass kettle "]
    nowhere = await client.get(f"/backoffice/catalog/{glass_id}", params={"rank": "hoverboard"})
    assert "not in the first" in nowhere.text
