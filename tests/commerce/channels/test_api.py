from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from api.app import create_app
from api.auth import create_token
from api.workers.jobs import PeriodicJob
from kit.db import Database
from kit.settings import Settings
from tests.commerce.channels.conftest import drain, make_stocked_shop, worker_for
from tests.commerce.channels.doubles import ShopifyDouble, WebhookDouble
from tests.http import app_client

ORDER = {"external_id": "W-100", "currency": "EUR", "email": "ann@example.com", "country": "DE",
         "lines": [{"sku": "KET-1", "quantity": 2, "unit_price": "49.90"}]}


@pytest.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"})
    async with app_client(create_app(settings, database=db)) as http:
        yield http


async def reconciled(job: PeriodicJob) -> object:
    """How many channels the pull-and-reconcile round reconciled."""
    outcome = await job.run()
    assert isinstance(outcome, dict)
    return outcome["reconciled"]


async def _merchant(db: Database) -> dict[str, str]:
    async with db.unit_of_work() as session:
        return {"Authorization": f"Bearer {await create_token(session, name='m', role='merchant')}"}


def _signed(webhook: WebhookDouble, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-ShopTalk-Signature": webhook.sign(body)}


async def test_inbound_order_webhook_is_verified_and_taken_once(
        db: Database, client: httpx.AsyncClient, shopify: ShopifyDouble, webhook: WebhookDouble) -> None:
    await make_stocked_shop(db, shopify, webhook)
    body = json.dumps(ORDER).encode()
    unsigned = await client.post("/api/v1/channels/site/orders", content=body,
                                 headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    assert unsigned.json()["code"] == "invalid_signature"
    forged = await client.post("/api/v1/channels/site/orders", content=body,
                               headers={"Content-Type": "application/json",
                                        "X-ShopTalk-Signature": "sha256=" + "0" * 64})
    assert forged.status_code == 401
    first = await client.post("/api/v1/channels/site/orders", content=body, headers=_signed(webhook, body))
    assert first.status_code == 201, first.text
    again = await client.post("/api/v1/channels/site/orders", content=body, headers=_signed(webhook, body))
    assert again.status_code == 200
    assert again.json()["order_number"] == first.json()["order_number"]
    assert again.json()["created"] is False
    too_many = json.dumps({**ORDER, "external_id": "W-101",
                           "lines": [{"sku": "KET-1", "quantity": 99, "unit_price": "49.90"}]}).encode()
    refused = await client.post("/api/v1/channels/site/orders", content=too_many, headers=_signed(webhook, too_many))
    assert refused.status_code == 409
    assert refused.json()["code"] == "insufficient_stock"
    bad = b'{"external_id": "W-102", "currency": "EUR", "lines": []}'
    invalid = await client.post("/api/v1/channels/site/orders", content=bad, headers=_signed(webhook, bad))
    assert invalid.status_code == 422
    assert invalid.json()["code"] == "invalid_channel_order"
    bad_email = json.dumps({**ORDER, "external_id": "W-103", "email": "not an address"}).encode()
    refused_email = await client.post("/api/v1/channels/site/orders", content=bad_email,
                                      headers=_signed(webhook, bad_email))
    assert refused_email.status_code == 422
    assert refused_email.json()["code"] == "invalid_channel_order"
    unknown = await client.post("/api/v1/channels/nope/orders", content=body, headers=_signed(webhook, body))
    assert unknown.status_code == 404
    status = (await client.get("/api/v1/channels/site", headers=await _merchant(db))).json()
    assert (status["orders_imported"], status["orders_rejected"]) == (1, 1)


async def test_merchant_sees_lag_pending_dead_letters_and_drift(
        db: Database, client: httpx.AsyncClient, shopify: ShopifyDouble, webhook: WebhookDouble) -> None:
    await make_stocked_shop(db, shopify, webhook)
    merchant = await _merchant(db)
    assert (await client.get("/api/v1/channels")).status_code == 401
    listed = (await client.get("/api/v1/channels", headers=merchant)).json()
    site = next(c for c in listed if c["code"] == "site")
    assert site["pending"] == 3
    assert site["config"]["secret"] == "********"
    assert site["last_sync_at"] is None
    webhook.fail_next(100, status=410)
    app_sync = client._transport.app.state.stock_sync  # type: ignore[attr-defined]
    await drain(worker_for(db, app_sync), lambda: shopify.quantity("KET-1") == 8)
    await drain(worker_for(db, app_sync), lambda: True)
    dead = (await client.get("/api/v1/channels/site/dead-letters", headers=merchant)).json()
    assert sorted(d["sku"] for d in dead) == ["KET-1", "KET-2", "MUG-1"]
    webhook.fail_next(0)
    retried = await client.post("/api/v1/channels/site/dead-letters/retry", headers=merchant,
                                json={"event_ids": [dead[0]["event_id"]]})
    assert retried.json() == {"retried": 1}
    await drain(worker_for(db, app_sync), lambda: webhook.quantity(dead[0]["sku"]) is not None)
    shopify.available[shopify.items["MUG-1"]] = 7
    report = (await client.post("/api/v1/channels/mkt/reconcile", headers=merchant)).json()
    assert report["drift"] == [{"sku": "MUG-1", "ours": 1, "theirs": 7}]
    mkt = (await client.get("/api/v1/channels/mkt", headers=merchant)).json()
    assert mkt["last_reconciliation"]["drifted"] == mkt["last_reconciliation"]["repaired"] == 1
    assert shopify.quantity("MUG-1") == 1  # repaired by the reconciliation itself
    assert mkt["pending"] == 0
    assert mkt["lag_seconds"] >= 0
    no_connector = await client.post("/api/v1/channels/chatbot/reconcile", headers=merchant)
    assert no_connector.status_code == 422
    assert no_connector.json()["code"] == "channel_has_no_connector"
    page = await client.get("/merchant/channels")  # the old token page: the back office's channels screen now
    assert page.status_code == 308
    assert page.headers["location"] == "/backoffice/channels"


async def test_merchant_creates_a_channel_and_changes_its_allocation(
        db: Database, client: httpx.AsyncClient, shopify: ShopifyDouble, webhook: WebhookDouble) -> None:
    await make_stocked_shop(db, shopify, webhook)
    merchant = await _merchant(db)
    created = await client.post("/api/v1/channels", headers=merchant, json={
        "code": "outlet", "name": "Outlet", "kind": "web", "sync_mode": "push", "connector": "webhook",
        "allocation": "share", "allocation_value": 30, "config": {"base_url": webhook.base_url, "secret": "x" * 20}})
    assert created.status_code == 201, created.text
    assert created.json()["config"]["secret"] == "********"
    missing = await client.post("/api/v1/channels", headers=merchant, json={
        "code": "broken", "name": "B", "kind": "web", "connector": "shopify", "config": {}})
    assert missing.status_code == 422
    assert missing.json()["code"] == "invalid_channel_config"
    duplicate = await client.post("/api/v1/channels", headers=merchant, json={"code": "outlet", "name": "O",
                                                                             "kind": "web"})
    assert duplicate.status_code == 409
    changed = await client.put("/api/v1/channels/outlet/allocation", headers=merchant,
                               json={"allocation": "buffer", "allocation_value": 3, "safety_stock": 1})
    assert (changed.json()["allocation"], changed.json()["allocation_value"], changed.json()["safety_stock"]) == \
        ("buffer", 3, 1)


async def test_a_dead_lettered_push_channel_is_made_good_by_the_scheduled_reconciliation(
        db: Database, client: httpx.AsyncClient, shopify: ShopifyDouble, webhook: WebhookDouble,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from api.workers.stock_sync import periodic_jobs
    from commerce.inventory import service as inventory
    from kit import clock as clock_module

    await make_stocked_shop(db, shopify, webhook)
    merchant = await _merchant(db)
    app_sync = client._transport.app.state.stock_sync  # type: ignore[attr-defined]
    await drain(worker_for(db, app_sync), lambda: webhook.quantity("KET-1") == 10)
    job = next(j for j in periodic_jobs(Settings(), db) if j.name == "channel_pull_and_reconcile")
    assert await job.run() == {"pulled": 1, "reconciled": 2}  # all in step: no alert anywhere
    assert all(c["alert"] is None for c in (await client.get("/api/v1/channels", headers=merchant)).json())
    shift = timedelta(0)
    real_now = clock_module.clock.now
    monkeypatch.setattr(clock_module.clock, "now", lambda: real_now() + shift)
    webhook.fail_next(10_000, status=503)  # the web shop is down for longer than the 8 tries take
    async with db.unit_of_work() as session:
        await inventory.reserve_stock(session, sku="KET-1", quantity=3)
    worker = worker_for(db, app_sync)
    for _ in range(20):
        await worker.run_once()
        shift += timedelta(seconds=400)  # past every backoff delay
    site = (await client.get("/api/v1/channels/site", headers=merchant)).json()
    assert (site["dead"], site["pending"]) == (1, 0)
    assert webhook.quantity("KET-1") == 10  # wrong: the shop sells 3 units it no longer has
    assert site["alert"]["dead_pushes"] == 1
    assert "503" in site["alert"]["dead_last_error"]
    assert site["alert"]["dead_since"] is not None
    # The channel is still down at the next reconciliation: the alert stays and names the failure.
    assert await reconciled(job) == 2
    site = (await client.get("/api/v1/channels/site", headers=merchant)).json()
    assert site["alert"]["dead_pushes"] == 1
    assert "503" in site["alert"]["reconciliation_error"]
    webhook.fail_next(0)  # the web shop answers again
    shift += timedelta(seconds=900)  # one reconcile interval later
    assert await reconciled(job) == 2
    assert webhook.quantity("KET-1") == 7
    site = (await client.get("/api/v1/channels/site", headers=merchant)).json()
    assert site["alert"] is None
    assert site["last_reconciliation"]["drift"] == [{"sku": "KET-1", "ours": 7, "theirs": 10}]
    assert site["last_reconciliation"]["repaired"] == 1
    assert (await client.get("/api/v1/channels/site/dead-letters", headers=merchant)).json() == []
