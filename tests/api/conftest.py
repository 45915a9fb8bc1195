from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import create_app
from api.auth import create_token
from kit.db import Database
from kit.settings import Settings
from tests.http import app_client


@pytest.fixture
def settings() -> Settings:
    return Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"},
                    limits={"max_body_bytes": 64_000})


@pytest.fixture
async def client(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings, database=db)) as http:
        yield http


async def token_for(db: Database, role: str) -> dict[str, str]:
    async with db.unit_of_work() as session:
        token = await create_token(session, name=f"test {role}", role=role)
    return {"Authorization": f"Bearer {token}"}
