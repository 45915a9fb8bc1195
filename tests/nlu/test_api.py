from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.auth import create_token
from api.errors import install_error_handlers
from api.http.merchant import nlu as nlu_router
from kit.db import Database
from kit.settings import Settings
from nlu.service import NluService

pytestmark = pytest.mark.slow  # loads the real encoders (MiniLM + USE)

DATA = Path(__file__).parent / "data"


@pytest.fixture
async def client(db: Database, tiny_service: NluService) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.state.settings = Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"})
    app.state.database = db
    app.state.nlu = tiny_service
    app.include_router(nlu_router.router)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
        yield http


async def headers_for(db: Database, role: str) -> dict[str, str]:
    async with db.unit_of_work() as session:
        token = await create_token(session, name=f"nlu {role}", role=role)
    return {"Authorization": f"Bearer {token}"}


async def test_parse_answers_in_rasa_shape(client: httpx.AsyncClient, db: Database) -> None:
    headers = await headers_for(db, "agent")
    response = await client.post("/model/parse", json={"text": "我的订单#10023到哪里了"}, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["intent"]["name"] == "order_status"
    assert body["language"] == "zh"
    assert body["entities"] == [{"entity": "order_number", "start": 4, "end": 10, "value": "10023",
                                 "confidence": 1.0, "extractor": "RegexEntityExtractor"}]
    assert "embedding" not in body

    with_embedding = await client.post("/model/parse?include_embedding=true", json={"text": "hi"}, headers=headers)
    assert len(with_embedding.json()["embedding"]) == 896


async def test_parse_needs_a_token_and_a_text(client: httpx.AsyncClient, db: Database) -> None:
    assert (await client.post("/model/parse", json={"text": "hi"})).status_code == 401
    headers = await headers_for(db, "agent")
    missing = await client.post("/model/parse", json={}, headers=headers)
    assert missing.status_code == 422
    assert missing.headers["content-type"].startswith("application/problem+json")
    for text in ["", "🙂🙂", "x" * 10_000]:
        assert (await client.post("/model/parse", json={"text": text}, headers=headers)).status_code == 200


async def test_malformed_training_upload_is_refused_and_the_model_keeps_serving(
    client: httpx.AsyncClient, db: Database, tiny_service: NluService,
) -> None:
    headers = await headers_for(db, "merchant") | {"Content-Type": "application/x-yaml"}
    serving = tiny_service.model
    response = await client.post("/model/train", content=(DATA / "broken_item.yml").read_bytes(), headers=headers)
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "nlu_training_data_invalid"
    assert problem["line"] == 6
    assert "request body:6:" in problem["detail"]
    assert tiny_service.model is serving
    info = await client.get("/model/nlu", headers=headers)
    assert info.json()["version"] == serving.version if serving else False
