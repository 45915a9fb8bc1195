"""Issue 28's roles in the agent console: staff have no console (403 page and 403 API, nothing written), an owner
supervises (rules, canned responses, assigning others' conversations), an agent only works their own."""
from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from bot import handoff
from bot.handoff.models import CannedResponse, HandoffThread
from kit.db import Database
from tests.bot.handoff.conftest import make_agent, shopper_says, sign_in


async def test_staff_get_a_403_page_and_no_console_api(client: httpx.AsyncClient, db: Database) -> None:
    await make_agent(db, "stan@shop.test", role="staff")
    conversation_id = await shopper_says(db, "a person please", human=True)
    headers = await sign_in(client, "stan@shop.test")
    page = await client.get("/agent", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert page.status_code == 403
    assert "客服工作台" in page.text  # the page in the browser's language
    assert "script-src 'self'" in page.headers["content-security-policy"]
    english = await client.get("/agent", headers={"Accept-Language": "en-GB"})
    assert english.status_code == 403
    assert "agent console" in english.text
    for path in ("/api/v1/agent/inbox", "/api/v1/agent/inbox/counts", f"/api/v1/agent/conversations/{conversation_id}",
                 "/api/v1/agent/events", "/api/v1/agent/rules"):
        refused = await client.get(path)
        assert refused.status_code == 403, path
        assert refused.json()["code"] == "not_allowed"
    taken = await client.post(f"/api/v1/agent/conversations/{conversation_id}/take", headers=headers)
    assert taken.status_code == 403
    async with db.unit_of_work() as session:
        assert await session.scalar(select(HandoffThread.assignee_id)) is None  # nothing written
    me = await client.get("/api/v1/agent/session")  # the session itself is theirs (and the back office)
    assert me.status_code == 200
    assert "console" not in me.json()["agent"]["permissions"]
    assert (await client.delete("/api/v1/agent/session", headers=headers)).status_code == 204
    assert (await client.get("/agent")).status_code == 200  # signed out: the sign-in form


@pytest.mark.parametrize("role", ["owner", "supervisor"])
async def test_owner_and_supervisor_supervise(client: httpx.AsyncClient, db: Database, role: str) -> None:
    ana = await make_agent(db, "ana@shop.test")
    bo = await make_agent(db, "bo@shop.test")
    await make_agent(db, "boss@shop.test", role=role)
    conversation_id = await shopper_says(db, "a person please", human=True)
    ana_headers = await sign_in(client, "ana@shop.test")
    assert (await client.post(f"/api/v1/agent/conversations/{conversation_id}/take", headers=ana_headers)
            ).status_code == 200

    boss = await sign_in(client, "boss@shop.test")
    assert (await client.get("/agent")).status_code == 200
    rules = (await client.get("/api/v1/agent/rules")).json()
    saved = await client.put("/api/v1/agent/rules", json={**rules, "sla_warn_minutes": 2}, headers=boss)
    assert saved.status_code == 200, saved.text
    added = await client.post("/api/v1/agent/canned", json={"shortcut": "hi", "body": "Hi {name}!"}, headers=boss)
    assert added.status_code == 201, added.text
    moved = await client.post(f"/api/v1/agent/conversations/{conversation_id}/assign", json={"agent_id": bo},
                              headers=boss)  # Ana's conversation, moved by someone who supervises
    assert moved.status_code == 200, moved.text
    async with db.unit_of_work() as session:
        assert await session.scalar(select(HandoffThread.assignee_id)) == bo
        assert (await handoff.rules.rules_of(session)).sla_warn_minutes == 2
    assert ana != bo


async def test_an_agent_works_only_their_own(client: httpx.AsyncClient, db: Database) -> None:
    await make_agent(db, "ana@shop.test")
    bo = await make_agent(db, "bo@shop.test")
    conversation_id = await shopper_says(db, "a person please", human=True)
    bo_headers = await sign_in(client, "bo@shop.test")
    assert (await client.post(f"/api/v1/agent/conversations/{conversation_id}/take", headers=bo_headers)
            ).status_code == 200
    ana = await sign_in(client, "ana@shop.test")
    assert (await client.get("/agent")).status_code == 200
    assert (await client.get("/api/v1/agent/inbox?view=open")).status_code == 200
    rules = (await client.get("/api/v1/agent/rules")).json()
    refused = [
        await client.put("/api/v1/agent/rules", json={**rules, "sla_warn_minutes": 2}, headers=ana),
        await client.post("/api/v1/agent/canned", json={"shortcut": "hi", "body": "Hi"}, headers=ana),
        await client.post(f"/api/v1/agent/conversations/{conversation_id}/assign", json={"agent_id": bo},
                          headers=ana),
        await client.post(f"/api/v1/agent/conversations/{conversation_id}/replies", json={"text": "mine now"},
                          headers=ana),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 409]  # a reply: "taken by someone else"
    async with db.unit_of_work() as session:
        assert await session.scalar(select(func.count()).select_from(CannedResponse)) == 0
        assert await session.scalar(select(HandoffThread.assignee_id)) == bo


async def test_console_labels_follow_the_browser_language(client: httpx.AsyncClient) -> None:
    chinese = await client.get("/agent", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert chinese.status_code == 200
    assert '<html lang="zh">' in chinese.text
    assert "分配给我" in chinese.text  # "Assign to me"
    assert "Assign to me" not in chinese.text
    assert '"no_orders": "暂无订单"' in chinese.text  # the script's own words, as JSON data
    english = await client.get("/agent", headers={"Accept-Language": "fr-FR,en;q=0.5"})
    assert "Assign to me" in english.text
    assert '<html lang="en">' in english.text
    assert chinese.headers["vary"] == "Accept-Language"
