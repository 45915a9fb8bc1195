from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.demo.loader import load_demo
from commerce.catalog import service as catalog
from commerce.inventory import service as inventory
from commerce.orders import service as orders
from kit.db import Database
from kit.settings import get_settings


@pytest.mark.slow
async def test_demo_shop_loads_once_with_orders_in_every_status(db: Database) -> None:
    async with db.unit_of_work() as session:
        message = await load_demo(session)
    assert message.startswith("demo shop loaded")
    async with db.unit_of_work() as session:
        assert (await load_demo(session)).startswith("demo shop already loaded")
    async with db.sessions() as session:
        products = await catalog.all_products(session)
        all_orders = await orders.list_orders(session, limit=200)
        skus = [v.sku for p in products for v in p.variants]
        available = await inventory.available_stock(session, skus=skus)
        locations = {loc.code for loc in await inventory.locations(session)}
    assert len(products) >= 60
    assert len({p.category_id for p in products}) >= 6
    assert all(p.title.get("zh") and p.title.get("en") for p in products)
    assert len(all_orders) == 30
    statuses = Counter(o.status for o in all_orders)
    assert set(statuses) == {"pending_payment", "paid", "packed", "shipped", "delivered", "cancelled",
                             "return_requested", "refunded"}
    assert all(o.tracking_number for o in all_orders if o.status in ("shipped", "delivered"))
    assert all(value >= 0 for value in available.values())
    assert locations == {"SZX", "RTM"}


@pytest.mark.slow
def test_cli_migrates_loads_and_creates_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPTALK_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("SHOPTALK_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert runner.invoke(app, ["migrate"]).exit_code == 0
        loaded = runner.invoke(app, ["demo", "load"])
        assert loaded.exit_code == 0, loaded.output
        assert "demo shop loaded" in loaded.output
        token = runner.invoke(app, ["token", "create", "--name", "ci", "--role", "merchant"])
        assert token.exit_code == 0
        assert token.output.strip().startswith("st_")
        refused = runner.invoke(app, ["token", "create", "--name", "ci", "--role", "owner"])
        assert refused.exit_code != 0
    finally:
        get_settings.cache_clear()
