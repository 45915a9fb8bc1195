"""The agent console API over HTTP: sessions, CSRF, shop isolation, problem+json for bad input."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from api import accounts
from api.app import create_app
from api.auth import create_token
from api.http.agent.console import SESSION_COOKIE
from api.http.agent.realtime import AgentEvents, InboxWatcher
from bot import handoff
from bot.handoff.models import HandoffThread
from kit.clock import clock, utcnow
from kit.db import Database
from kit.settings import Settings
from nlu.training_data import parse_training_data
from tests.bot.handoff.conftest import PASSWORD, REDIS_URL, make_agent, needs_redis, shopper_says, sign_in


async def test_console_page_and_sign_in(client: httpx.AsyncClient, db: Database) -> None:
    page = await client.get("/agent")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    await make_agent(db, "ana@shop.test")
    wrong = await client.post("/api/v1/agent/session", json={"email": "ana@shop.test", "password": "nope"})
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "wrong_credentials"
    assert "nope" not in wrong.text
    anonymous = await client.get("/api/v1/agent/inbox")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "agent_not_signed_in"
    headers = await sign_in(client, "ana@shop.test")
    me = await client.get("/api/v1/agent/session")
    assert me.json()["agent"]["name"] == "Ana"
    assert me.json()["csrf_token"] == headers["X-CSRF-Token"]
    assert (await client.get("/api/v1/agent/inbox?view=mine")).json() == []
    bad_view = await client.get("/api/v1/agent/inbox?view=everything")
    assert bad_view.status_code == 422


async def test_state_changes_need_the_csrf_token(client: httpx.AsyncClient, db: Database) -> None:
    await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "a person please", human=True)
    headers = await sign_in(client, "ana@shop.test")
    take = f"/api/v1/agent/conversations/{conversation_id}/take"
    missing = await client.post(take)
    assert missing.status_code == 403
    assert missing.json()["code"] == "csrf_rejected"
    forged = await client.post(take, headers={"X-CSRF-Token": "0" * 64})
    assert forged.status_code == 403
    assert forged.json()["code"] == "csrf_rejected"
    async with db.unit_of_work() as session:
        assert (await session.scalar(select(HandoffThread.assignee_id))) is None
    taken = await client.post(take, headers=headers)
    assert taken.status_code == 200
    assert taken.json()["status"] == "open"
    sent = await client.post(f"/api/v1/agent/conversations/{conversation_id}/replies", headers=headers,
                             json={"text": "Hello, Ana here."})
    assert sent.status_code == 201
    view = (await client.get(f"/api/v1/agent/conversations/{conversation_id}")).json()
    assert view["messages"][-1]["text"] == "Hello, Ana here."
    assert view["messages"][-1]["agent_name"] == "Ana"
    resolved = await client.post(f"/api/v1/agent/conversations/{conversation_id}/resolve", headers=headers)
    assert resolved.status_code == 200
    again = await client.post(f"/api/v1/agent/conversations/{conversation_id}/resolve", headers=headers)
    assert again.status_code == 409
    assert again.json()["code"] == "conversation_resolved"
    assert again.headers["content-type"].startswith("application/problem+json")


async def test_expired_session_and_sign_out(client: httpx.AsyncClient, db: Database,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    await make_agent(db, "ana@shop.test")
    headers = await sign_in(client, "ana@shop.test")
    out = await client.delete("/api/v1/agent/session", headers=headers)
    assert out.status_code == 204
    client.cookies.clear()
    assert (await client.get("/api/v1/agent/inbox")).json()["code"] == "agent_not_signed_in"
    await sign_in(client, "ana@shop.test")
    later = utcnow() + timedelta(hours=9)
    monkeypatch.setattr(clock, "now", lambda: later)
    expired = await client.get("/api/v1/agent/inbox")
    assert expired.status_code == 401
    assert expired.json()["code"] == "agent_session_expired"


async def test_agent_of_another_shop_gets_not_found(client: httpx.AsyncClient, db: Database) -> None:
    await make_agent(db, "eve@other.test", shop_id=2)
    conversation_id = await shopper_says(db, "a person please", human=True)
    headers = await sign_in(client, "eve@other.test")
    for response in (await client.get(f"/api/v1/agent/conversations/{conversation_id}"),
                     await client.post(f"/api/v1/agent/conversations/{conversation_id}/take", headers=headers)):
        assert response.status_code == 404
        assert response.json()["code"] == "conversation_not_found"
        assert "a person please" not in response.text


async def test_race_over_http_one_agent_wins(client: httpx.AsyncClient, db: Database, settings: Settings) -> None:
    await make_agent(db, "ana@shop.test")
    await make_agent(db, "bo@shop.test")
    conversation_id = await shopper_says(db, "a person please", human=True)
    app = create_app(settings, database=db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as other:
        ana, bo = await sign_in(client, "ana@shop.test"), await sign_in(other, "bo@shop.test")
        url = f"/api/v1/agent/conversations/{conversation_id}/take"
        results = await asyncio.gather(client.post(url, headers=ana), other.post(url, headers=bo))
    assert sorted(r.status_code for r in results) == [200, 409]
    assert [r.json()["code"] for r in results if r.status_code == 409] == ["conversation_taken"]


async def test_correction_is_written_as_rasa_yaml_and_counted(client: httpx.AsyncClient, db: Database,
                                                              settings: Settings) -> None:
    await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "my [parcel] never came", human=True)
    headers = await sign_in(client, "ana@shop.test")
    view = (await client.get(f"/api/v1/agent/conversations/{conversation_id}")).json()
    message_id = view["messages"][0]["id"]
    bad = await client.post(f"/api/v1/agent/messages/{message_id}/intent", headers=headers, json={"intent": "Bad!"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_intent"
    fixed = await client.post(f"/api/v1/agent/messages/{message_id}/intent", headers=headers,
                              json={"intent": "order_status"})
    assert fixed.json()["predicted_intent"] == "human_handoff"
    path = settings.data_dir / "nlu" / "corrections.yml"
    data = parse_training_data(path.read_text(encoding="utf-8"), source=str(path))
    assert [(e.intent, e.text) for e in data.examples] == [("order_status", "my (parcel) never came")]
    draft = await client.post("/api/v1/agent/faq-drafts", headers=headers,
                              json={"question": "Do you ship to Norway?", "answer": "Yes, in 5-7 days."})
    assert draft.status_code == 201, draft.text
    async with db.unit_of_work() as session:
        token = await create_token(session, name="merchant", role="merchant")
    counts = (await client.get("/api/v1/merchant/learning", headers={"Authorization": f"Bearer {token}"})).json()
    assert (counts["corrections"], counts["faq_drafts"], counts["faq_drafts_published"]) == (1, 1, 0)
    assert counts["corrections_by_intent"] == {"order_status": 1}


@needs_redis
async def test_watcher_opens_threads_and_events_cross_processes_through_redis(db: Database) -> None:
    assert REDIS_URL is not None
    redis_url = REDIS_URL
    process_a, process_b = AgentEvents(redis_url), AgentEvents(redis_url)
    ready = asyncio.Event()
    relay = asyncio.create_task(process_b.run_subscriber(ready))
    try:
        await asyncio.wait_for(ready.wait(), timeout=5)
        console_on_b = process_b.subscribe(1)
        await process_a.publish(1, {"type": "inbox"})
        assert await asyncio.wait_for(console_on_b.get(), timeout=1.0) == {"type": "inbox"}
        console_on_a = process_a.subscribe(1)
        watcher = InboxWatcher(db, process_a)
        await watcher.run_once()
        conversation_id = await shopper_says(db, "a person please", human=True)
        await watcher.run_once()
        events = [console_on_a.get_nowait() for _ in range(console_on_a.qsize())]
        assert {"type": "conversation", "conversation_id": conversation_id} in events
        async with db.unit_of_work() as session:
            thread = await session.get(HandoffThread, conversation_id)
            assert thread is not None
            assert thread.status == "open"
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
        await process_a.close()
        await process_b.close()


async def test_session_cookie_is_not_readable_by_scripts(client: httpx.AsyncClient, db: Database) -> None:
    await make_agent(db, "ana@shop.test")
    response = await client.post("/api/v1/agent/session", json={"email": "ana@shop.test", "password": PASSWORD})
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert response.json()["csrf_token"] not in cookie


async def test_repeated_wrong_passwords_are_throttled(client: httpx.AsyncClient, db: Database,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Five free failures, then a short back-off for the account (more in tests/api/test_throttle.py)."""
    now = utcnow()
    monkeypatch.setattr(clock, "now", lambda: now)  # the back-off's 1 s must not pass during the test
    await make_agent(db, "ana@shop.test")
    for _ in range(6):
        wrong = await client.post("/api/v1/agent/session", json={"email": "ana@shop.test", "password": "guess"})
        assert wrong.status_code == 401
    blocked = await client.post("/api/v1/agent/session", json={"email": "ANA@shop.test", "password": PASSWORD})
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "sign_in_backoff"
    assert 1 <= int(blocked.headers["retry-after"]) <= 60


async def test_supervisor_edits_the_rules_agents_only_read_them(client: httpx.AsyncClient, db: Database) -> None:
    await make_agent(db, "ana@shop.test")
    await make_agent(db, "sue@shop.test", role="supervisor")
    ana = await sign_in(client, "ana@shop.test")
    rules = (await client.get("/api/v1/agent/rules")).json()
    assert (rules["on_request"], rules["order_value_currency"], rules["low_confidence_below"]) == (True, "EUR", None)
    refused = await client.put("/api/v1/agent/rules", json={**rules, "on_request": False}, headers=ana)
    assert refused.status_code == 403
    assert refused.json()["code"] == "supervisor_only"

    sue = await sign_in(client, "sue@shop.test")
    no_csrf = await client.put("/api/v1/agent/rules", json={**rules, "on_request": False})
    assert no_csrf.json()["code"] == "csrf_rejected"
    changed = {**rules, "on_request": False, "low_confidence_in_a_row": 3, "low_confidence_below": 0.5,
               "order_value_above": "300", "order_value_currency": "usd",
               "mixed_reply_by_intent": {"return_refund": "draft_for_agent"},
               "opening_hours": {**rules["opening_hours"], "always_open": False, "days": [5, 0, 0],
                                 "opens": "08:30", "closes": "17:00"}}
    saved = await client.put("/api/v1/agent/rules", json=changed, headers=sue)
    assert saved.status_code == 200, saved.text
    assert saved.json()["order_value_currency"] == "USD"
    assert saved.json()["opening_hours"]["days"] == [0, 5]
    async with db.unit_of_work() as session:
        stored = await handoff.rules.rules_of(session)
    assert (stored.on_request, stored.low_confidence_in_a_row, stored.order_value_above) == (False, 3, Decimal(300))
    assert stored.mixed_reply_by_intent == {"return_refund": "draft_for_agent"}
    async with db.sessions() as session:  # the console's change is in the audit log, like the back office's
        _, events = await accounts.audit_events(session, area="rules")
    [event] = events
    assert event.actor.endswith("<sue@shop.test>")
    assert event.action == "hand-off rules changed"
    assert event.details["on_request"] == {"before": True, "after": False}
    assert set(event.details) >= {"low_confidence_in_a_row", "order_value_above", "opening_hours"}
    await sign_in(client, "ana@shop.test")
    assert (await client.get("/api/v1/agent/rules")).json()["on_request"] is False  # agents see the change


@pytest.mark.parametrize(("change", "field"), [
    ({"order_value_currency": "EURO"}, "order_value_currency"),
    ({"low_confidence_in_a_row": -1}, "low_confidence_in_a_row"),
    ({"low_confidence_below": 2}, "low_confidence_below"),
    ({"order_value_above": "-5"}, "order_value_above"),
    ({"mixed_reply_by_intent": {"Bad Intent": "draft_for_agent"}}, "mixed_reply_by_intent"),
    ({"mixed_reply_by_intent": {"faq": "maybe"}}, "mixed_reply_by_intent"),
    ({"opening_hours": {"always_open": False, "timezone": "Mars/Olympus", "days": [0], "opens": "09:00",
                        "closes": "17:00"}}, "opening_hours"),
    ({"opening_hours": {"always_open": False, "timezone": "Europe/Berlin", "days": [0], "opens": "18:00",
                        "closes": "09:00"}}, "opening_hours"),
    ({"on_requets": False}, "on_requets"),
])
async def test_bad_rules_are_refused_with_the_field(client: httpx.AsyncClient, db: Database,
                                                    change: dict[str, object], field: str) -> None:
    await make_agent(db, "sue@shop.test", role="supervisor")
    sue = await sign_in(client, "sue@shop.test")
    response = await client.put("/api/v1/agent/rules", json=change, headers=sue)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert any(field in error["loc"] for error in problem["errors"])
    async with db.unit_of_work() as session:
        assert await handoff.rules.rules_of(session) == handoff.rules.EscalationRules()  # nothing half-saved


async def test_canned_responses_are_the_supervisors_to_edit(client: httpx.AsyncClient, db: Database) -> None:
    await make_agent(db, "ana@shop.test")
    await make_agent(db, "sue@shop.test", role="supervisor")
    await make_agent(db, "otto@other.test", role="supervisor", shop_id=2)
    sue = await sign_in(client, "sue@shop.test")
    created = await client.post("/api/v1/agent/canned", json={"shortcut": "hi", "body": "Hi {name}!"}, headers=sue)
    assert created.status_code == 201, created.text
    canned_id = created.json()["id"]
    taken = await client.post("/api/v1/agent/canned", json={"shortcut": "hi", "body": "Hello"}, headers=sue)
    assert (taken.status_code, taken.json()["code"]) == (409, "shortcut_exists")
    bad = await client.put(f"/api/v1/agent/canned/{canned_id}", json={"shortcut": "hi", "body": "Hi {first}"},
                           headers=sue)
    assert (bad.status_code, bad.json()["code"]) == (422, "unknown_variable")
    edited = await client.put(f"/api/v1/agent/canned/{canned_id}",
                              json={"shortcut": "hello", "body": "Hello {name}, {agent_name} here."}, headers=sue)
    assert edited.json() == {"id": canned_id, "shortcut": "hello", "body": "Hello {name}, {agent_name} here."}

    ana = await sign_in(client, "ana@shop.test")
    assert [c["shortcut"] for c in (await client.get("/api/v1/agent/canned")).json()] == ["hello"]
    for method, path, body in (("POST", "/api/v1/agent/canned", {"shortcut": "x", "body": "y"}),
                               ("PUT", f"/api/v1/agent/canned/{canned_id}", {"shortcut": "x", "body": "y"}),
                               ("DELETE", f"/api/v1/agent/canned/{canned_id}", None)):
        refused = await client.request(method, path, json=body, headers=ana)
        assert (refused.status_code, refused.json()["code"]) == (403, "supervisor_only")

    otto = await sign_in(client, "otto@other.test")
    for method in ("PUT", "DELETE"):
        hidden = await client.request(method, f"/api/v1/agent/canned/{canned_id}",
                                      json={"shortcut": "x", "body": "y"} if method == "PUT" else None, headers=otto)
        assert (hidden.status_code, hidden.json()["code"]) == (404, "canned_response_not_found")
    assert (await client.get("/api/v1/agent/canned")).json() == []

    sue = await sign_in(client, "sue@shop.test")
    assert (await client.delete(f"/api/v1/agent/canned/{canned_id}", headers=sue)).status_code == 204
    again = await client.delete(f"/api/v1/agent/canned/{canned_id}", headers=sue)
    assert (again.status_code, again.json()["code"]) == (404, "canned_response_not_found")
    assert (await client.get("/api/v1/agent/canned")).json() == []


async def test_intent_names_for_the_rules_editor(client: httpx.AsyncClient, db: Database) -> None:
    assert (await client.get("/api/v1/agent/intents")).status_code == 401
    await make_agent(db, "ana@shop.test")
    await sign_in(client, "ana@shop.test")
    names = (await client.get("/api/v1/agent/intents")).json()
    assert {"human_handoff", "complaint", "order_status", "return_refund"} <= set(names)
    assert names == sorted(names)
