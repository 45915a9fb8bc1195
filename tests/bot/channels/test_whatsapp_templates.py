"""WhatsApp templates registered by the merchant: the back office screen, the merchant API, the console's offer
and what Graph receives; owners only, audited (SQLite and PostgreSQL)."""
from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from api.app import create_app
from api.auth import create_token
from api.models import AuditEvent
from kit.db import Database
from kit.settings import Settings, WhatsAppSettings
from tests.api.test_backoffice import make_account, signed_in
from tests.bot.channels.graph_double import ACCESS_TOKEN, APP_SECRET, GraphDouble
from tests.bot.handoff.conftest import PASSWORD, make_agent, shopper_says
from tests.http import app_client

SHOPPER = "4915112340000"


@pytest.fixture
async def client(db: Database, graph: GraphDouble) -> AsyncIterator[httpx.AsyncClient]:
    whatsapp = WhatsAppSettings(phone_number_id=graph.phone_number_id, access_token=ACCESS_TOKEN,
                                app_secret=APP_SECRET, api_base=graph.base_url, templates={"welcome_back": "en"})
    settings = Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"},
                        whatsapp=whatsapp)
    async with app_client(create_app(settings, database=db)) as http:
        yield http


async def test_the_owner_registers_templates_and_the_console_offers_and_sends_them(
        client: httpx.AsyncClient, db: Database, graph: GraphDouble) -> None:
    await make_account(db, "owner@shop.test", "owner")
    csrf = await signed_in(client, "owner@shop.test")
    page = await client.get("/backoffice/whatsapp-templates")
    assert page.status_code == 200
    assert 'href="/backoffice/whatsapp-templates"' in page.text  # in the navigation
    assert "welcome_back" in page.text  # the setting's seed is listed
    refused = await client.post("/backoffice/whatsapp-templates", data={
        "csrf_token": csrf, "name": "Order Update!", "language": "en_US", "parameter_count": "1"})
    assert refused.status_code == 422
    assert "lowercase letters" in refused.text
    assert 'value="Order Update!"' in refused.text  # what was typed is kept
    saved = await client.post("/backoffice/whatsapp-templates", data={
        "csrf_token": csrf, "name": "order_update", "language": "en_US", "parameter_count": "1"})
    assert saved.status_code == 303
    assert graph.templates == {"order_update"}
    graph.templates.add("welcome_back")

    await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "where is my parcel?", channel="whatsapp", sender=SHOPPER, human=True)
    session = await client.post("/api/v1/agent/session", json={"email": "ana@shop.test", "password": PASSWORD})
    headers = {"X-CSRF-Token": session.json()["csrf_token"]}
    window = (await client.get(f"/api/v1/agent/conversations/{conversation_id}/whatsapp-window")).json()
    assert window["templates"] == ["order_update", "welcome_back"]
    path = f"/api/v1/agent/conversations/{conversation_id}/whatsapp-template"
    wrong = await client.post(path, json={"name": "order_update", "parameters": []}, headers=headers)
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "whatsapp_template_parameters"
    sent = await client.post(path, json={"name": "order_update", "parameters": ["A-1001"]}, headers=headers)
    assert sent.status_code == 201, sent.text
    [template] = await graph.wait_for_sent(SHOPPER, 1)
    assert template.body["template"] == {"name": "order_update", "language": {"code": "en_US"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "A-1001"}]}]}

    async with db.sessions() as db_session:
        audit = (await db_session.scalars(select(AuditEvent).where(AuditEvent.area == "channels"))).all()
    assert [(a.action, a.subject) for a in audit] == [("template saved", "order_update")]


async def test_staff_may_not_and_the_api_registers_with_a_merchant_token(client: httpx.AsyncClient,
                                                                        db: Database) -> None:
    await make_account(db, "staff@shop.test", "staff")
    csrf = await signed_in(client, "staff@shop.test")
    assert (await client.get("/backoffice/whatsapp-templates")).status_code == 403
    posted = await client.post("/backoffice/whatsapp-templates", data={
        "csrf_token": csrf, "name": "sneaky", "language": "en", "parameter_count": "0"})
    assert posted.status_code == 403
    async with db.unit_of_work() as session:
        token = await create_token(session, name="erp", role="merchant")
    bearer = {"Authorization": f"Bearer {token}"}
    api = "/api/v1/merchant/whatsapp-templates"
    assert (await client.put(f"{api}/order_update", json={"language": "zh_CN", "parameter_count": 2})).status_code \
        == 401
    saved = await client.put(f"{api}/order_update", json={"language": "zh_CN", "parameter_count": 2}, headers=bearer)
    assert saved.json() == {"name": "order_update", "language": "zh_CN", "parameter_count": 2, "registered": True}
    bad = await client.put(f"{api}/order_update", json={"language": "chinese", "parameter_count": 2}, headers=bearer)
    assert bad.status_code == 422
    listed = (await client.get(api, headers=bearer)).json()
    assert [(t["name"], t["registered"]) for t in listed] == [("order_update", True), ("welcome_back", False)]
    assert (await client.delete(f"{api}/order_update", headers=bearer)).status_code == 204
    assert (await client.delete(f"{api}/order_update", headers=bearer)).status_code == 404
    async with db.sessions() as session:
        audit = (await session.scalars(select(AuditEvent).where(AuditEvent.area == "channels")
                                       .order_by(AuditEvent.id))).all()
    assert [a.action for a in audit] == ["template saved", "template removed"]
    assert all("erp" in a.actor for a in audit)
