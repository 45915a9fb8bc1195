"""The demo shop served for end-to-end tests: a temp SQLite database (migrated, demo loaded) and uvicorn
in a background thread on a free 127.0.0.1 port."""
from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.app import create_app
from api.demo.loader import load_demo
from api.migrations import upgrade
from commerce.cross_border import load_cross_border_defaults
from kit.db import Database
from kit.settings import Settings
from tests.conftest import run_in_thread
from tests.http import served_in_thread


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def prepare_demo_database(url: str) -> None:
    database = Database(url)
    try:
        await upgrade(database.engine)
        async with database.unit_of_work() as session:
            await load_demo(session)
            # Shipping zones, duties and demo FX rates (filled only where empty), so checkout can quote.
            await load_cross_border_defaults(session)
    finally:
        await database.dispose()


def shop_settings(url: str, **sections: Any) -> Settings:
    security = {"secret_key": "test-secret-key-0123456789", **sections.pop("security", {})}
    # "development": the served app builds the engine (NLU) before it accepts the first request.
    return Settings(environment="development", database={"url": url}, security=security, **sections)


@dataclass
class ServedShop:
    base_url: str
    database_url: str
    settings: Settings


@contextmanager
def served_shop(tmp_path: Path, **sections: Any) -> Iterator[ServedShop]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    run_in_thread(prepare_demo_database(url))
    settings = shop_settings(url, **sections)
    app = create_app(settings)
    with served_in_thread(app, name="served-shop", start_timeout=300, ws="websockets") as base_url:
        yield ServedShop(base_url=base_url, database_url=url, settings=settings)


async def wait_until(check: Any, *, timeout: float = 20.0, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
