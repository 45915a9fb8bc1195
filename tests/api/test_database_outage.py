"""The database going away mid-run, through a proxy we cut: every route answers 503 database_unavailable (never
500), /health/live stays 200, chat messages are refused so the client resends them, and all recovers on its own."""
from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy.exc import DBAPIError, PendingRollbackError, ProgrammingError

from api.app import create_app
from api.auth import create_token
from bot import conversation_history
from kit.db import Database, DatabaseUnavailable, database_unavailable_cause
from kit.settings import Settings
from tests.api.db_proxy import CuttableProxy
from tests.http import served_in_thread


@pytest.fixture
async def rest_headers(db: Database) -> dict[str, str]:
    """Headers every REST webhook call sends: the shop's channel token."""
    async with db.unit_of_work() as session:
        return {"Authorization": f"Bearer {await create_token(session, name='outage', role='channel')}"}


@pytest.fixture
def proxy(db: Database) -> Iterator[CuttableProxy]:
    if db.is_sqlite:
        pytest.skip("a network cut needs a database behind a network: PostgreSQL")
    cuttable = CuttableProxy.for_url(db.url).start()
    yield cuttable
    cuttable.stop()


@pytest.fixture
def served(db: Database, proxy: CuttableProxy) -> Iterator[str]:
    """The app served by uvicorn on a thread, its database reached only through the proxy."""
    settings = Settings(environment="test", database={"url": proxy.url_through(db.url)},
                        security={"secret_key": "test-secret-key-0123456789"})
    with served_in_thread(create_app(settings), name="outage-app") as base_url:
        yield base_url.removeprefix("http://")


def _unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert "Traceback" not in response.text


# A process's first chat turn builds its engine (the NLU model, trained from the shipped data when none is cached,
# and the catalog's words): minutes on a loaded CI box, with the server on a thread of this process. Generous waits,
# never a speed assertion, and no client keepalive pings (a pong late behind that build closed the socket in CI).
ENGINE_BUILD_SECONDS = 300


async def _frame(socket_: Any) -> dict[str, Any]:
    """The next frame that is not a typing indicator (the server says "typing" while a message is handled)."""
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(socket_.recv(), ENGINE_BUILD_SECONDS))
        if frame["type"] != "typing":
            return frame


async def test_a_database_outage_answers_503_and_recovers_without_a_restart(
        db: Database, proxy: CuttableProxy, served: str, rest_headers: dict[str, str]) -> None:
    message = {"sender": "outage-shopper", "message": "/cart", "metadata": {"message_id": "out-1"}}
    async with httpx.AsyncClient(base_url=f"http://{served}", timeout=ENGINE_BUILD_SECONDS) as http, \
            websockets.connect(f"ws://{served}/ws/chat", ping_interval=None) as socket_:
        minted = json.loads(await socket_.recv())
        assert minted["type"] == "session"  # the server mints the web chat session
        session = minted["token"].partition(".")[0]
        assert json.loads(await socket_.recv())["type"] == "history"
        # Not a catalog read before the cut: a request's unit of work commits after its response is sent, and
        # that commit would meet the cut.
        assert (await http.get("/health/ready")).status_code == 200

        proxy.cut()
        ready = await http.get("/health/ready")
        _unavailable(ready)
        assert ready.json()["checks"] == {"database": "connection refused"}
        _unavailable(await http.get("/health"))
        assert (await http.get("/health/live")).json() == {"status": "ok"}
        _unavailable(await http.get("/api/v1/products"))
        _unavailable(await http.post("/webhooks/rest/webhook", json=message, headers=rest_headers))
        await socket_.send(json.dumps({"type": "message", "id": "w-1", "text": "/cart"}))
        refused = await _frame(socket_)
        assert (refused["type"], refused["id"], refused["code"]) == ("error", "w-1", "database_unavailable")

        proxy.restore()  # no restart of anything: the next requests find the database again
        assert (await http.get("/health/ready")).json()["status"] == "ok"
        assert (await http.get("/api/v1/products")).status_code == 200
        resent = await http.post("/webhooks/rest/webhook", json=message, headers=rest_headers)
        assert resent.status_code == 200, resent.text
        assert resent.json()
        assert all(r["recipient_id"] == "outage-shopper" for r in resent.json())
        await socket_.send(json.dumps({"type": "message", "id": "w-1", "text": "/cart"}))
        ack = await _frame(socket_)
        assert (ack["type"], ack["id"], ack["duplicate"]) == ("ack", "w-1", False)
    # Each message is stored once, with its replies: the refused tries left nothing half-done behind.
    async with db.sessions() as read:
        for channel, sender in (("rest", "outage-shopper"), ("webchat", session)):
            history = list(await conversation_history(read, channel=channel, sender_id=sender))
            assert [m.direction for m in history].count("in") == 1
            assert any(m.direction == "out" for m in history)


def test_only_outages_count_as_the_database_being_unavailable() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed")
    assert database_unavailable_cause(refused, from_database=True) == "connection refused"
    assert database_unavailable_cause(refused) is None  # not raised by the driver: a channel or Redis call
    assert database_unavailable_cause(DatabaseUnavailable("down")) == "down"
    assert database_unavailable_cause(ProgrammingError("SELECT nope", {}, Exception("syntax error"))) is None
    lost = DBAPIError("UPDATE", {}, ConnectionResetError("reset"), connection_invalidated=True)
    # A rollback hook meeting the dead connection raises its own error while the first one is handled.
    during = PendingRollbackError("Can't reconnect until invalid transaction is rolled back")
    during.__context__ = lost
    assert database_unavailable_cause(during) == "connection lost"
    during.__suppress_context__ = True  # "raise ... from None": the outage is not its cause
    assert database_unavailable_cause(during) is None


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_ready_names_the_dependency_that_is_down(db: Database) -> None:
    from tests.http import app_client

    settings = Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"})
    async with app_client(create_app(settings, database=db)) as http:
        assert (await http.get("/health/live")).json() == {"status": "ok"}
        assert (await http.get("/health/ready")).json() == {"status": "ok", "checks": {"database": "ok"}}
        assert (await http.get("/health")).json() == {"status": "ok", "checks": {"database": "ok"}}
    no_redis = Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"},
                        redis={"url": f"redis://127.0.0.1:{_closed_port()}/0"})
    async with app_client(create_app(no_redis, database=db)) as http:
        ready = await http.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["code"] == "redis_unavailable"
        assert ready.json()["checks"]["database"] == "ok"
        assert ready.json()["checks"]["redis"] != "ok"
        assert (await http.get("/health/live")).status_code == 200


async def test_a_write_whose_commit_fails_is_never_answered_as_done(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import AsyncSession

    from api.auth import create_token
    from tests.http import app_client

    async with db.unit_of_work() as session:
        token = await create_token(session, name="m", role="merchant")
    merchant = {"Authorization": f"Bearer {token}"}
    settings = Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"})
    real_commit = AsyncSession.commit

    async def commit_meets_a_cut(self: AsyncSession) -> None:
        raise DBAPIError("COMMIT", {}, ConnectionResetError("reset"), connection_invalidated=True)

    async with app_client(create_app(settings, database=db)) as http:
        monkeypatch.setattr(AsyncSession, "commit", commit_meets_a_cut)
        created = await http.post("/api/v1/channels", headers=merchant,
                                  json={"code": "outlet", "name": "Outlet", "kind": "web"})
        monkeypatch.setattr(AsyncSession, "commit", real_commit)
        _unavailable(created)
        assert (await http.get("/api/v1/channels/outlet", headers=merchant)).status_code == 404
