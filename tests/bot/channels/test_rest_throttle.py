"""The REST webhook's throttles over HTTP: per client (credential, else IP) and per sender; over -> 429
problem+json with Retry-After and nothing stored; other senders and clients go on."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.auth import create_token
from api.throttle import close_limiter
from bot import BotDeps, conversation_history
from kit.db import Database
from kit.settings import Settings
from tests.http import ClientFrom, clients_from_addresses


@asynccontextmanager
async def served(app: FastAPI, bot_deps: BotDeps) -> AsyncIterator[ClientFrom]:
    """The app with its lifespan run and HTTP clients from any IP address."""
    async with clients_from_addresses(app) as client_from:
        app.state.channels.runtime._deps = bot_deps  # the small trained NLU instead of the real one
        try:
            yield client_from
        finally:
            await close_limiter(app)


# Per-minute limits: a burst is over them however slowly the test machine runs.
LIMITS = {"rest_client": "100/second;5/minute", "rest_address": "100/second;5/minute", "rest_sender": "3/minute"}


@pytest.fixture
async def tokens(db: Database) -> list[str]:
    """Two REST clients of the shop (two servers posting to the channel), each with its channel token."""
    async with db.unit_of_work() as session:
        return [await create_token(session, name=f"storefront-{n}", role="channel") for n in range(2)]


@pytest.fixture
async def client_from(db: Database, bot_deps: BotDeps) -> AsyncIterator[ClientFrom]:
    settings = Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"},
                        data_dir=bot_deps.settings.data_dir, rate_limits=LIMITS)
    async with served(create_app(settings, database=db), bot_deps) as client_from:
        yield client_from


async def _say(client: httpx.AsyncClient, sender: str, text: str) -> httpx.Response:
    return await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})


async def _inbound_texts(db: Database, sender: str) -> list[Any]:
    async with db.unit_of_work() as session:
        history = await conversation_history(session, channel="rest", sender_id=sender)
    return [message.text for message in history if message.direction == "in"]


def _too_many(response: httpx.Response, code: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_a_burst_from_one_sender_gets_429_and_others_go_on(client_from: ClientFrom, db: Database,
                                                                  tokens: list[str]) -> None:
    shop_front = client_from("198.51.100.7", tokens[0])
    for n in range(3):
        answered = await _say(shop_front, "shopper-1", f"/cart {n}")
        assert answered.status_code == 200, answered.text
        assert answered.json()
    refused = await _say(shop_front, "shopper-1", "/cart flood")
    _too_many(refused, "too_many_messages")
    assert await _inbound_texts(db, "shopper-1") == ["/cart 0", "/cart 1", "/cart 2"]  # the refused one not stored

    other_shopper = await _say(shop_front, "shopper-2", "/cart")
    assert other_shopper.status_code == 200, other_shopper.text


async def test_a_client_over_its_limit_gets_429_and_other_clients_go_on(client_from: ClientFrom, db: Database,
                                                                        tokens: list[str]) -> None:
    # The same address: clients are told apart by their credential, not by where they connect from.
    greedy, other = client_from("198.51.100.7", tokens[0]), client_from("198.51.100.7", tokens[1])
    for n in range(5):
        assert (await _say(greedy, f"shopper-{n}", "/cart")).status_code == 200
    _too_many(await _say(greedy, "shopper-new", "/cart"), "too_many_requests")
    assert await _inbound_texts(db, "shopper-new") == []
    assert (await _say(other, "shopper-new", "/cart")).status_code == 200


async def test_an_unauthenticated_flood_is_refused_before_it_is_counted_or_stored(client_from: ClientFrom,
                                                                                  db: Database) -> None:
    anyone = client_from("198.51.100.9")
    for _ in range(8):
        assert (await _say(anyone, "victim", "/cart")).status_code == 401
    assert await _inbound_texts(db, "victim") == []


@pytest.mark.slow  # loads the real encoders (MiniLM + USE)
async def test_an_open_channel_in_development_counts_clients_by_address(db: Database, bot_deps: BotDeps) -> None:
    settings = Settings(environment="development", rest_channel={"auth": "open"},
                        data_dir=bot_deps.settings.data_dir, rate_limits=LIMITS)
    async with served(create_app(settings, database=db), bot_deps) as client_from:
        greedy, other = client_from("198.51.100.7"), client_from("203.0.113.20")
        for n in range(5):
            assert (await _say(greedy, f"shopper-{n}", "/cart")).status_code == 200
        _too_many(await _say(greedy, "shopper-new", "/cart"), "too_many_requests")
        assert (await _say(other, "shopper-new", "/cart")).status_code == 200
