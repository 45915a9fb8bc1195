"""Agent accounts on the db fixture (SQLite and PostgreSQL): sign-in, sessions, CSRF, account input."""
from __future__ import annotations

from datetime import timedelta

import pytest

from bot import handoff
from bot.handoff.errors import CsrfRejected, NotSignedIn, SessionExpired, WrongCredentials
from kit.clock import clock, utcnow
from kit.db import Database
from kit.errors import ShopTalkError
from tests.bot.handoff.conftest import PASSWORD, make_agent


async def test_sign_in_checks_password_and_sessions_expire(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    await make_agent(db, "ana@shop.test")
    async with db.unit_of_work() as session:
        with pytest.raises(WrongCredentials):
            await handoff.agents.sign_in(session, email="ana@shop.test", password="wrong password!", ttl_seconds=60)
        with pytest.raises(WrongCredentials):
            await handoff.agents.sign_in(session, email="nobody@shop.test", password=PASSWORD, ttl_seconds=60)
        agent, token = await handoff.agents.sign_in(session, email="ANA@shop.test", password=PASSWORD, ttl_seconds=60)
        assert agent.password_hash.startswith("$argon2id$")
        assert PASSWORD not in agent.password_hash
    async with db.unit_of_work() as session:
        assert (await handoff.agents.agent_for_session(session, token=token)).email == "ana@shop.test"
        with pytest.raises(NotSignedIn):
            await handoff.agents.agent_for_session(session, token="forged-token")
    later = utcnow() + timedelta(seconds=61)
    monkeypatch.setattr(clock, "now", lambda: later)
    async with db.unit_of_work() as session:
        with pytest.raises(SessionExpired):
            await handoff.agents.agent_for_session(session, token=token)


async def test_signed_out_session_is_refused(db: Database) -> None:
    await make_agent(db, "ana@shop.test")
    async with db.unit_of_work() as session:
        _, token = await handoff.agents.sign_in(session, email="ana@shop.test", password=PASSWORD, ttl_seconds=600)
    async with db.unit_of_work() as session:
        await handoff.agents.sign_out(session, token=token)
    async with db.unit_of_work() as session:
        with pytest.raises(NotSignedIn):
            await handoff.agents.agent_for_session(session, token=token)


def test_csrf_token_is_bound_to_the_session() -> None:
    token = handoff.agents.csrf_token(session_token="session-a", secret="s" * 32)
    handoff.agents.check_csrf(session_token="session-a", given=token, secret="s" * 32)
    with pytest.raises(CsrfRejected):
        handoff.agents.check_csrf(session_token="session-b", given=token, secret="s" * 32)
    with pytest.raises(CsrfRejected):
        handoff.agents.check_csrf(session_token="session-a", given=None, secret="s" * 32)


async def test_bad_account_input_is_refused(db: Database) -> None:
    await make_agent(db, "ana@shop.test")
    async with db.unit_of_work() as session:
        for kwargs, code in (({"email": "not-an-email"}, "invalid_email"), ({"role": "boss"}, "unknown_role"),
                             ({"password": "short"}, "weak_password"), ({"email": "ana@shop.test"}, "agent_exists")):
            args = {"email": "bo@shop.test", "name": "Bo", "role": "agent", "password": PASSWORD} | kwargs
            with pytest.raises(ShopTalkError) as caught:
                await handoff.agents.create_agent(session, **args)  # type: ignore[arg-type]
            assert caught.value.code == code
