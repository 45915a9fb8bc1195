"""`shoptalk recommend train` learns from the shop's orders and saves the model under the data directory."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli.recommend import app
from kit.db import Database
from kit.settings import get_settings
from tests.commerce.recommend.test_service import _paid_order
from tests.factories import make_product, make_shop


@pytest.fixture
async def shop(db: Database) -> Database:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 10}})
        await make_product(session, slug="teapot", skus={"POT-1": {"RTM": 5}})
    await _paid_order(db, "1", ["KET-1", "POT-1"])
    return db


@pytest.fixture
def environment(shop: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SHOPTALK_DATABASE__URL", shop.url)
    monkeypatch.setenv("SHOPTALK_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


def test_train_prints_a_report_and_saves_the_model(environment: Path) -> None:
    result = CliRunner().invoke(app, ["train"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["orders"] == 1
    assert report["items"] == 2
    assert (environment / "models" / "recommend" / "model.pkl").is_file()

    result = CliRunner().invoke(app, ["performance"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == []
