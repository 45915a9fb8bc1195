"""Web chat sessions are minted and signed by the server: a session id seen elsewhere cannot be spoken for."""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
import websockets
from websockets.asyncio.client import ClientConnection

from api.app import create_app
from bot import BotDeps
from bot.channels.webchat import WebchatSessions
from kit.db import Database
from kit.settings import Settings
from tests.bot.channels.served_shop import free_port

SECRET_KEY = "test-secret-key-0123456789"
DEMO_SESSION = "wc-7f3a9c21e04b"  # the demo shop's web chat identity (api/demo/catalog.json, shopper Lucas)


@asynccontextmanager
async def _served(db: Database, bot_deps: BotDeps, **settings: Any) -> AsyncIterator[str]:
    """The app served on a loopback port in this event loop (its database is the test's); the socket's URL."""
    app = create_app(Settings(environment="test", security={"secret_key": SECRET_KEY},
                              data_dir=bot_deps.settings.data_dir, **settings), database=db)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           lifespan="on", ws="websockets"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the app did not start"
        await asyncio.sleep(0.05)
    app.state.channels.runtime._deps = bot_deps  # the small trained NLU instead of the real one
    # Frames from other processes reach this one's sockets (Redis subscribed): a deadline, not a speed.
    await asyncio.wait_for(app.state.channels.subscribed.wait(), timeout=60)
    try:
        yield f"ws://127.0.0.1:{server.config.port}/ws/chat"
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
async def chat(db: Database, bot_deps: BotDeps) -> AsyncIterator[str]:
    async with _served(db, bot_deps) as url:
        yield url


async def _frame(socket: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), 30))
    return frame


async def _open(url: str, token: str | None = None) -> tuple[ClientConnection, str | None, dict[str, Any]]:
    """Connect (with `token` if given): the socket, the new session's token if the server minted one, and
    the history frame."""
    socket = await websockets.connect(url if token is None else f"{url}?session={token}")
    first = await _frame(socket)
    minted = None
    if first["type"] == "session":
        minted = first["token"]
        first = await _frame(socket)
    assert first["type"] == "history"
    return socket, minted, first


async def _say(socket: ClientConnection, text: str, frame_id: str) -> list[dict[str, Any]]:
    await socket.send(json.dumps({"type": "message", "id": frame_id, "text": text}))
    frames = [await _frame(socket)]
    while frames[-1]["type"] != "reply":
        frames.append(await _frame(socket))
    # The typing indicator frames around the bot's work are checked in test_webchat_identity.py.
    return [frame for frame in frames if frame["type"] != "typing"]


def _texts(history: dict[str, Any]) -> list[str]:
    return [m["text"] for m in history["messages"]]


async def test_a_fresh_connection_gets_a_signed_session_and_keeps_it_on_reconnect(chat: str) -> None:
    socket, token, history = await _open(chat)
    assert token is not None
    session_id, _, signature = token.partition(".")
    assert len(session_id) == 32  # 128 random bits, then the server's signature
    assert signature
    assert history["messages"] == []
    frames = await _say(socket, "/cart my secret cart", "w1")
    assert frames[0] == {"type": "ack", "id": "w1", "duplicate": False}
    await socket.close()

    again, minted, restored = await _open(chat, token)
    assert minted is None  # the same session, no new token
    assert restored["session"] == session_id
    assert "/cart my secret cart" in _texts(restored)
    await again.close()


async def test_a_forged_or_bare_session_never_sees_another_sessions_history(chat: str) -> None:
    victim, token, _ = await _open(chat)
    assert token is not None
    await _say(victim, "/cart the victim's words", "v1")
    await victim.close()
    session_id, _, signature = token.partition(".")
    other_key = WebchatSessions("another-shops-secret-key-0123").mint()[1].partition(".")[2]
    forged = [
        session_id,  # the bare id, as an old widget sent it
        f"{session_id}.{'A' * len(signature)}",  # the right id, a wrong signature
        f"{session_id}.{other_key}",  # a signature from another key
        f"{session_id}.{signature[:-1]}",  # a truncated one
        DEMO_SESSION,  # a well-known id from the demo data
    ]
    for attempt in forged:
        socket, minted, history = await _open(chat, attempt)
        assert minted is not None, attempt  # refused: a new session instead
        assert minted.partition(".")[0] != session_id
        assert history["session"] != session_id
        assert "/cart the victim's words" not in _texts(history)
        await socket.close()


def test_tokens_are_checked_with_the_shops_key() -> None:
    shop, other = WebchatSessions(SECRET_KEY), WebchatSessions("another-shops-secret-key-0123")
    session_id, token = shop.mint()
    assert shop.session_of(token) == session_id
    assert other.session_of(token) is None
    assert shop.session_of(session_id) is None
    assert shop.session_of(DEMO_SESSION) is None
    assert shop.session_of(token + "x") is None
    assert shop.mint()[0] != session_id


async def test_a_session_over_its_message_limit_gets_an_error_frame_and_nothing_is_stored(
        db: Database, bot_deps: BotDeps) -> None:
    async with _served(db, bot_deps, rate_limits={"webchat_session": "100/second;3/minute"}) as url:
        socket, token, _ = await _open(url)
        for n in range(3):
            assert (await _say(socket, f"/cart {n}", f"m{n}"))[-1]["type"] == "reply"
        await socket.send(json.dumps({"type": "message", "id": "m3", "text": "/cart flood"}))
        refused = await _frame(socket)
        assert (refused["type"], refused["code"], refused["id"]) == ("error", "too_many_messages", "m3")
        assert 1 <= refused["retry_after"] <= 60
        await socket.close()
        other, _, _ = await _open(url)  # another shopper's session is not held back
        assert (await _say(other, "/cart", "o1"))[-1]["type"] == "reply"
        await other.close()
        again, minted, history = await _open(url, token)
        assert minted is None
        assert [t for t in _texts(history) if t.startswith("/cart")] == ["/cart 0", "/cart 1", "/cart 2"]
        await again.close()
