"""API token management over HTTP (admin only) and the `shoptalk token` CLI: list, create, revoke, expire,
last used; a revoked or expired token is refused at once."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from api.cli import app as cli
from api.models import ApiToken
from kit.clock import clock, utcnow
from kit.db import Database
from kit.settings import get_settings
from tests.api.conftest import token_for


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_admin_creates_lists_and_revokes_tokens(client: httpx.AsyncClient, db: Database) -> None:
    admin = await token_for(db, "admin")
    created = await client.post("/api/v1/tokens", json={"name": "shop front", "role": "merchant",
                                                        "expires_in": "30d"}, headers=admin)
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    token = body["token"]
    assert token.startswith("st_")
    assert (body["name"], body["role"], body["status"]) == ("shop front", "merchant", "active")
    assert body["expires_at"] is not None

    assert (await client.get("/api/v1/channels", headers=_bearer(token))).status_code == 200

    listed = await client.get("/api/v1/tokens", headers=admin)
    assert listed.status_code == 200
    rows = {row["id"]: row for row in listed.json()}
    assert rows[body["id"]]["name"] == "shop front"
    assert token not in listed.text
    async with db.sessions() as session:
        stored_hash = await session.scalar(select(ApiToken.token_hash).where(ApiToken.id == body["id"]))
    assert stored_hash is not None
    assert stored_hash not in listed.text
    assert set(rows[body["id"]]) == {"id", "name", "role", "status", "created_at", "expires_at", "last_used_at",
                                     "revoked_at"}

    revoked = await client.delete(f"/api/v1/tokens/{body['id']}", headers=admin)
    assert revoked.status_code == 204
    refused = await client.get("/api/v1/channels", headers=_bearer(token))
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"
    after = {row["id"]: row for row in (await client.get("/api/v1/tokens", headers=admin)).json()}
    assert after[body["id"]]["status"] == "revoked"
    assert after[body["id"]]["revoked_at"] is not None

    unknown = await client.delete("/api/v1/tokens/999999", headers=admin)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "token_not_found"


async def test_an_expired_token_is_refused_with_its_own_code(client: httpx.AsyncClient, db: Database,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    admin = await token_for(db, "admin")
    created = (await client.post("/api/v1/tokens", json={"name": "short", "role": "merchant", "expires_in": "1h"},
                                 headers=admin)).json()
    assert (await client.get("/api/v1/channels", headers=_bearer(created["token"]))).status_code == 200
    later = utcnow() + timedelta(hours=1, seconds=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    expired = await client.get("/api/v1/channels", headers=_bearer(created["token"]))
    assert expired.status_code == 401
    assert expired.json()["code"] == "token_expired"
    listed = {row["id"]: row for row in (await client.get("/api/v1/tokens", headers=admin)).json()}
    assert listed[created["id"]]["status"] == "expired"


async def test_bad_expiry_and_unknown_role_are_422(client: httpx.AsyncClient, db: Database) -> None:
    admin = await token_for(db, "admin")
    bad = await client.post("/api/v1/tokens", json={"name": "x", "role": "merchant", "expires_in": "soon"},
                            headers=admin)
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_duration"
    owner = await client.post("/api/v1/tokens", json={"name": "x", "role": "owner"}, headers=admin)
    assert owner.status_code == 422
    assert owner.json()["code"] == "unknown_role"


async def test_last_used_moves_at_most_once_a_minute(client: httpx.AsyncClient, db: Database,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    admin = await token_for(db, "admin")
    created = (await client.post("/api/v1/tokens", json={"name": "reader", "role": "merchant"},
                                 headers=admin)).json()
    assert created["last_used_at"] is None

    async def last_used() -> str | None:
        listed = {row["id"]: row for row in (await client.get("/api/v1/tokens", headers=admin)).json()}
        value: str | None = listed[created["id"]]["last_used_at"]
        return value

    start = utcnow()
    now = start
    monkeypatch.setattr(clock, "now", lambda: now)
    await client.get("/api/v1/channels", headers=_bearer(created["token"]))
    first = await last_used()
    assert first is not None
    now = start + timedelta(seconds=30)
    await client.get("/api/v1/channels", headers=_bearer(created["token"]))
    assert await last_used() == first  # not a write on every request
    now = start + timedelta(seconds=61)
    await client.get("/api/v1/channels", headers=_bearer(created["token"]))
    moved = await last_used()
    assert moved is not None
    assert moved > first


@pytest.mark.parametrize("role", ["merchant", "agent"])
async def test_only_admin_manages_tokens(client: httpx.AsyncClient, db: Database, role: str) -> None:
    headers = await token_for(db, role)
    for response in (await client.get("/api/v1/tokens", headers=headers),
                     await client.post("/api/v1/tokens", json={"name": "mine", "role": role}, headers=headers),
                     await client.delete("/api/v1/tokens/1", headers=headers)):
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "wrong_role"
    assert (await client.get("/api/v1/tokens")).status_code == 401


@pytest.mark.slow
def test_cli_lists_revokes_and_expires_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPTALK_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("SHOPTALK_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert runner.invoke(cli, ["migrate"]).exit_code == 0
        kept = runner.invoke(cli, ["token", "create", "--name", "ci", "--role", "merchant", "--expires-in", "30d"])
        assert kept.exit_code == 0, kept.output
        gone = runner.invoke(cli, ["token", "create", "--name", "old laptop", "--role", "admin"])
        assert gone.exit_code == 0, gone.output
        bad = runner.invoke(cli, ["token", "create", "--name", "x", "--expires-in", "forever"])
        assert bad.exit_code != 0

        listed = runner.invoke(cli, ["token", "list"])
        assert listed.exit_code == 0, listed.output
        assert kept.output.strip() not in listed.output
        assert gone.output.strip() not in listed.output
        lines = listed.output.splitlines()
        assert lines[0].split()[:4] == ["id", "name", "role", "status"]
        old_laptop = next(line for line in lines if "old laptop" in line)
        ci = next(line for line in lines if " ci " in line)
        assert "never" in old_laptop  # no expiry
        assert (utcnow() + timedelta(days=30)).strftime("%Y-%m-%d") in ci

        revoked = runner.invoke(cli, ["token", "revoke", old_laptop.split()[0]])
        assert revoked.exit_code == 0, revoked.output
        after = runner.invoke(cli, ["token", "list"]).output
        assert "revoked" in next(line for line in after.splitlines() if "old laptop" in line)
        assert "active" in next(line for line in after.splitlines() if " ci " in line)
        unknown = runner.invoke(cli, ["token", "revoke", "999"])
        assert unknown.exit_code == 1
    finally:
        get_settings.cache_clear()
