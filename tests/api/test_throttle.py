"""Agent sign-in throttles (per client, and a capped back-off per e-mail) and the web chat's per-frame check,
over real HTTP in process; counts in memory and on real Redis (shared by two app instances = two processes)."""
from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.throttle import close_limiter, webchat_frame_allowed
from kit.clock import clock
from kit.db import Database
from kit.ratelimit import RetryAfter
from kit.settings import Settings
from tests.bot.handoff.conftest import PASSWORD, make_agent
from tests.http import ClientFrom, clients_from_addresses

REDIS_URL = os.environ.get("SHOPTALK_TEST_REDIS_URL")
STORES = ["memory"] + (["redis"] if REDIS_URL else [])
SIGN_IN = "/api/v1/agent/session"


def _settings(tmp_path: Path, store: str, **rate_limits: Any) -> Settings:
    redis = {"url": REDIS_URL} if store == "redis" else {}
    return Settings(environment="test", data_dir=tmp_path, redis=redis,
                    security={"secret_key": "test-secret-key-0123456789"},
                    rate_limits={"key_prefix": f"test:{uuid.uuid4().hex[:12]}", **rate_limits})


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[ClientFrom]:
    """The app with its lifespan run and HTTP clients from any IP address."""
    async with clients_from_addresses(app) as client_from:
        try:
            yield client_from
        finally:
            await close_limiter(app)


class FrozenClock:
    """kit.clock stopped at one instant; `advance` moves it (the back-off's waits are measured with it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now: datetime = clock.now()
        monkeypatch.setattr(clock, "now", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def _sign_in(client: httpx.AsyncClient, password: str, email: str = "ana@shop.test") -> httpx.Response:
    return await client.post(SIGN_IN, json={"email": email, "password": password})


def _too_many(response: httpx.Response, code: str) -> int:
    """The Retry-After of a 429 problem; the per-e-mail back-off never asks for more than its cap (60 s)."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= (60 if code == "sign_in_backoff" else 900)
    return retry_after


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_an_attackers_wrong_passwords_delay_the_owner_at_most_the_cap(
        db: Database, tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    time = FrozenClock(monkeypatch)
    await make_agent(db, "ana@shop.test")
    async with served(create_app(_settings(tmp_path, store), database=db)) as client_from:
        attacker, owner = client_from("198.51.100.66"), client_from("203.0.113.5")
        wrong = 0
        while wrong < 10:  # the attacker waits as told and guesses again
            response = await _sign_in(attacker, "guess")
            if response.status_code == 429:
                time.advance(_too_many(response, "sign_in_backoff"))
                continue
            assert response.status_code == 401, response.text
            wrong += 1
        _too_many(await _sign_in(attacker, PASSWORD), "too_many_sign_ins")  # that client is out for a while

        first = await _sign_in(owner, PASSWORD)
        if first.status_code == 429:  # the owner waits at most the cap, then gets in
            time.advance(_too_many(first, "sign_in_backoff"))
            first = await _sign_in(owner, PASSWORD)
        assert first.status_code == 200, first.text
        assert first.json()["agent"]["email"] == "ana@shop.test"

        # The success reset the e-mail's back-off: a typo now is a plain 401 again.
        assert (await _sign_in(owner, "typo")).status_code == 401


async def test_the_back_off_stays_capped_however_long_the_attack(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    time = FrozenClock(monkeypatch)
    await make_agent(db, "ana@shop.test")
    settings = _settings(tmp_path, "memory", sign_in_backoff_cap_seconds=8)
    async with served(create_app(settings, database=db)) as client_from:
        waits = []
        for n in range(12):  # a new address for every guess: only the per-e-mail back-off applies
            response = await _sign_in(client_from(f"198.51.100.{n}"), "guess")
            while response.status_code == 429:
                waits.append(_too_many(response, "sign_in_backoff"))
                time.advance(waits[-1])
                response = await _sign_in(client_from(f"198.51.100.{n}"), "guess")
            assert response.status_code == 401, response.text
        assert waits == [1, 2, 4, 8, 8, 8]  # after failures 6 to 11: 1 s doubling, capped at 8 s here
        owner = client_from("203.0.113.5")
        time.advance(_too_many(await _sign_in(owner, PASSWORD), "sign_in_backoff") - 1)
        _too_many(await _sign_in(owner, PASSWORD), "sign_in_backoff")  # a second early is still too early
        time.advance(1)
        assert (await _sign_in(owner, PASSWORD)).status_code == 200


async def test_a_success_clears_the_clients_failures(db: Database, tmp_path: Path, store: str) -> None:
    await make_agent(db, "ana@shop.test")
    settings = _settings(tmp_path, store, sign_in_free_failures=100)  # only the per-client limit here
    async with served(create_app(settings, database=db)) as client_from:
        desk = client_from("203.0.113.5")
        for _ in range(9):
            assert (await _sign_in(desk, "typo")).status_code == 401
        assert (await _sign_in(desk, PASSWORD)).status_code == 200
        for _ in range(10):
            assert (await _sign_in(desk, "typo")).status_code == 401
        _too_many(await _sign_in(desk, PASSWORD), "too_many_sign_ins")
        assert (await _sign_in(desk, "whatever", email="bob@shop.test")).status_code == 401  # per e-mail


@pytest.mark.skipif(REDIS_URL is None, reason="set SHOPTALK_TEST_REDIS_URL")
async def test_two_app_instances_on_one_redis_share_the_counts(db: Database, tmp_path: Path) -> None:
    await make_agent(db, "ana@shop.test")
    settings = _settings(tmp_path, "redis", sign_in_free_failures=100)
    async with served(create_app(settings, database=db)) as first, \
            served(create_app(settings, database=db)) as second:
        for served_by in (first, second):
            for _ in range(5):
                assert (await _sign_in(served_by("198.51.100.66"), "guess")).status_code == 401
        # Ten failures in all, five on each instance: both refuse that client now.
        _too_many(await _sign_in(first("198.51.100.66"), PASSWORD), "too_many_sign_ins")
        _too_many(await _sign_in(second("198.51.100.66"), PASSWORD), "too_many_sign_ins")


async def test_web_chat_frames_are_limited_per_session_and_per_address(tmp_path: Path, store: str) -> None:
    app = create_app(_settings(tmp_path, store, webchat_session="3/minute", webchat_ip="5/minute"))
    try:
        for _ in range(3):
            assert await webchat_frame_allowed(app, session="s-1", ip="198.51.100.7") is None
        refused = await webchat_frame_allowed(app, session="s-1", ip="198.51.100.7")
        assert isinstance(refused, RetryAfter)
        assert 1 <= refused.seconds <= 60
        assert await webchat_frame_allowed(app, session="s-2", ip="198.51.100.7") is None  # 5th from the address
        assert isinstance(await webchat_frame_allowed(app, session="s-3", ip="198.51.100.7"), RetryAfter)
        assert await webchat_frame_allowed(app, session="s-3", ip="203.0.113.20") is None
    finally:
        await close_limiter(app)
