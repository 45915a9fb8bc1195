"""Return conditions and notes per locale: the shopper's language when translated, English otherwise."""
from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, text

from api.auth import create_token
from api.migrations import upgrade
from commerce.cross_border import return_policy
from kit.db import Database
from tests.migrating import migrate_to


async def test_chinese_shopper_in_germany_gets_chinese_conditions(shop: Database) -> None:
    async with shop.sessions() as session:
        chinese = await return_policy(session, country="DE", locale="zh")
        regional = await return_policy(session, country="DE", locale="zh-Hans-CN")
        english = await return_policy(session, country="DE", locale="en")
    assert (chinese.scope, chinese.locale, chinese.window_days) == ("EU", "zh", 14)
    assert chinese.conditions[0] == "自收到商品之日起 14 天内，您可以撤回本次购买合同，无需说明任何理由。"
    assert len(chinese.conditions) == len(english.conditions) == 4
    assert "第 13 条第 2 款" in chinese.notes
    assert regional.conditions == chinese.conditions
    assert english.locale == "en"
    assert english.conditions[0].startswith("Withdraw within 14 days")
    assert english.notes.startswith("Express delivery")


async def test_a_locale_without_translation_gets_english(shop: Database) -> None:
    async with shop.sessions() as session:
        french = await return_policy(session, country="FR", locale="fr")
        unspecified = await return_policy(session, country="US")
        uk_chinese = await return_policy(session, country="GB", locale="zh")
    assert french.locale == unspecified.locale == "en"
    assert french.conditions[0].startswith("Withdraw within 14 days")
    assert unspecified.conditions[0].startswith("Return unused goods")
    assert (uk_chinese.scope, uk_chinese.locale, uk_chinese.notes) == ("GB", "zh", "")
    assert "取消订单" in uk_chinese.conditions[0]


@pytest.fixture
async def client(client: httpx.AsyncClient, shop: Database) -> httpx.AsyncClient:
    """The shop's API client (conftest), signed in as a merchant."""
    async with shop.unit_of_work() as session:
        token = await create_token(session, name="merchant", role="merchant")
    client.headers["Authorization"] = f"Bearer {token}"
    return client


async def _policy(client: httpx.AsyncClient, scope: str) -> dict[str, Any]:
    rows = (await client.get("/api/v1/cross-border/return-policies")).json()
    return dict(next(r for r in rows if r["scope"] == scope))


async def test_merchant_sets_conditions_per_locale(client: httpx.AsyncClient, shop: Database) -> None:
    policy = await _policy(client, "*")
    assert set(policy["translations"]) == {"zh"}
    assert len(policy["translations"]["zh"]["conditions"]) == len(policy["conditions"])
    body = {k: v for k, v in policy.items() if k != "id"}
    body["conditions"] = ["Return unused goods within 30 days of delivery."]
    body["translations"] = {"JA": {"conditions": ["未使用の商品は配達後30日以内に返品できます。"]},
                            "zh": {"conditions": ["请在商品送达后 30 天内退回未使用的商品。"]}}
    saved = await client.put(f"/api/v1/cross-border/return-policies/{policy['id']}", json=body)
    assert saved.status_code == 200, saved.text
    assert set(saved.json()["translations"]) == {"ja", "zh"}  # locale codes are stored in lower case
    async with shop.sessions() as session:
        japanese = await return_policy(session, country="JP", locale="ja-JP")
        chinese = await return_policy(session, country="JP", locale="zh")
    assert (japanese.locale, japanese.conditions) == ("ja", ["未使用の商品は配達後30日以内に返品できます。"])
    assert chinese.conditions == ["请在商品送达后 30 天内退回未使用的商品。"]


@pytest.mark.parametrize(("translations", "field", "says"), [
    ({"zh": {"conditions": ["只有一条。"]}}, ["body", "translations"], "translations.zh.conditions has 1"),
    ({"en": {"conditions": ["a", "b", "c"]}}, ["body", "translations", "en", "[key]"], "English is"),
    ({"not a locale": {"conditions": ["a", "b", "c"]}}, ["body", "translations", "not a locale", "[key]"],
     "pattern"),
    ({"zh": {"conditions": ["a", " ", "c"]}}, ["body", "translations", "zh", "conditions", "1"], "at least 1"),
    ({"zh": {"conditions": ["a", "b", "c"], "notes": "x"}}, ["body", "translations"], "notes (English) is empty"),
])
async def test_bad_translations_are_refused_naming_the_field(
        client: httpx.AsyncClient, translations: dict[str, Any], field: list[str], says: str) -> None:
    policy = await _policy(client, "*")
    body = {k: v for k, v in policy.items() if k != "id"} | {"translations": translations}
    refused = await client.put(f"/api/v1/cross-border/return-policies/{policy['id']}", json=body)
    assert refused.status_code == 422, refused.text
    errors = refused.json()["errors"]
    assert [e["loc"] for e in errors] == [field]
    assert says in errors[0]["msg"]
    assert (await _policy(client, "*"))["translations"] == policy["translations"]


SHIPPED_STAR = ["Return unused goods in their original packaging within 30 days of delivery.",
                "Return shipping is paid by the shopper unless the item is faulty or wrong.",
                "Duties and taxes paid to the carrier on delivery are not refunded by us; customs may refund them "
                "on re-export."]


async def _check_migration(url: str) -> None:
    database = Database(url)
    try:
        await upgrade(database.engine)
        await migrate_to(database, url, "downgrade", "commerce_0401")
        async with database.engine.begin() as connection:
            columns = [c["name"] for c in await connection.run_sync(
                lambda sync: inspect(sync).get_columns("return_policies"))]
            assert "translations" not in columns
            insert = text("INSERT INTO return_policies (scope, window_days, conditions, legal_basis, source_url, "
                          "refunds_outbound_shipping, duties_refundable, return_shipping_paid_by, "
                          "restocking_fee_percent, notes) VALUES (:scope, 30, :conditions, 'Shop policy', '', "
                          "false, false, 'shopper', 0, '')")
            await connection.execute(insert, {"scope": "*", "conditions": json.dumps(SHIPPED_STAR)})
            await connection.execute(insert, {"scope": "US", "conditions": json.dumps(["Edited by the shop."])})
        await migrate_to(database, url, "upgrade", "heads")
        async with database.sessions() as session:
            star = await return_policy(session, country="JP", locale="zh")
            edited = await return_policy(session, country="US", locale="zh")
        assert (star.locale, star.conditions[1]) == ("zh", "退货运费由顾客承担，商品有缺陷或发错货的除外。")
        assert (edited.locale, edited.conditions) == ("en", ["Edited by the shop."])
        await migrate_to(database, url, "downgrade", "commerce_0401")
        await migrate_to(database, url, "upgrade", "heads")
    finally:
        await database.dispose()


@pytest.mark.slow
async def test_migration_upgrades_and_downgrades(unmigrated_url: str) -> None:
    await _check_migration(unmigrated_url)
