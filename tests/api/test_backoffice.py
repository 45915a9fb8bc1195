"""The back office over HTTP, as a merchant's browser uses it (forms, cookies, CSRF): sign-in with one message for
every wrong credential, TOTP, roles (a staff member trying an owner action gets a 403 page and nothing changes),
invitations, API tokens from the UI, products with prices checked against their currency and an image upload,
stock adjustments with history and the channel push they queue, and FAQ drafts through review."""
from __future__ import annotations

import re
import struct
import zlib
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select

import knowledge_base as kb
from api import accounts
from api.app import create_app
from api.auth import create_token
from api.models import ApiToken, AuditEvent, Invitation
from bot import handoff
from commerce.channels import service as channels
from commerce.orders import service as orders
from commerce.orders.schemas import OrderIn, OrderLineIn
from kit.clock import utcnow
from kit.db import Database
from kit.settings import Settings
from knowledge_base.schemas import FaqEntryIn
from tests.factories import make_product, make_shop
from tests.http import app_client

PASSWORD = "correct horse battery"


def png(width: int = 2, height: int = 2) -> bytes:
    """A real, tiny PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture
async def client(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings, database=db)) as http:
        yield http


async def make_account(db: Database, email: str, role: str) -> int:
    async with db.unit_of_work() as session:
        agent = await handoff.agents.create_agent(session, email=email, name=email.split("@")[0].title(), role=role,
                                                  password=PASSWORD)
        return agent.id


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


async def signed_in(http: httpx.AsyncClient, email: str) -> str:
    """Sign in through the form; returns the CSRF token of the session."""
    response = await http.post("/backoffice/sign-in", data={"email": email, "password": PASSWORD})
    assert response.status_code == 303, response.text
    return csrf_of(await http.get("/backoffice"))


# ------------------------------------------------------------------------------------------------ TOTP

RFC6238_SHA1 = [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"), (1234567890, "89005924"),
                (2000000000, "69279037"), (20000000000, "65353130")]


@pytest.mark.parametrize(("unix_time", "expected"), RFC6238_SHA1)
def test_totp_matches_rfc_6238_vectors(unix_time: int, expected: str) -> None:
    assert accounts.hotp(b"12345678901234567890", unix_time // 30, digits=8) == expected


def test_rfc_4226_hotp_vectors() -> None:
    expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
    assert [accounts.hotp(b"12345678901234567890", i) for i in range(10)] == expected


# -------------------------------------------------------------------------------------------- sign-in

async def test_wrong_password_and_unknown_email_get_one_message(client: httpx.AsyncClient, db: Database) -> None:
    await make_account(db, "olga@shop.test", "owner")
    wrong = await client.post("/backoffice/sign-in", data={"email": "olga@shop.test", "password": "nope-nope-nope"})
    unknown = await client.post("/backoffice/sign-in", data={"email": "who@shop.test", "password": "nope-nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text
    assert "Wrong email or password." in unknown.text
    assert "shoptalk_agent" not in wrong.headers.get("set-cookie", "")
    # Not signed in: the back office sends the browser to the form, then back.
    page = await client.get("/backoffice/catalog")
    assert page.status_code == 303
    assert page.headers["location"] == "/backoffice/sign-in?next=/backoffice/catalog"


async def test_the_sign_in_form_is_throttled(db: Database, settings: Settings) -> None:
    await make_account(db, "olga@shop.test", "owner")
    settings = settings.model_copy(update={"rate_limits": settings.rate_limits.model_copy(
        update={"sign_in_client_failures": "3/15 minutes", "sign_in_free_failures": 100})})
    async with app_client(create_app(settings, database=db)) as http:
        for _ in range(3):
            bad = await http.post("/backoffice/sign-in", data={"email": "olga@shop.test", "password": "guess-guess"})
            assert bad.status_code == 401
        refused = await http.post("/backoffice/sign-in", data={"email": "olga@shop.test", "password": PASSWORD})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "Too many failed sign-ins" in refused.text


async def test_one_sign_in_serves_the_console_and_the_back_office(client: httpx.AsyncClient, db: Database) -> None:
    await make_account(db, "sam@shop.test", "supervisor")
    await signed_in(client, "sam@shop.test")
    session = await client.get("/api/v1/agent/session")
    assert session.status_code == 200
    body = session.json()
    assert body["agent"]["role"] == "supervisor"
    assert "faq_review" in body["agent"]["permissions"]
    assert "catalog" not in body["agent"]["permissions"]
    nav = (await client.get("/backoffice")).text
    assert 'href="/backoffice/faq"' in nav
    assert 'href="/agent"' in nav
    assert 'href="/backoffice/catalog"' not in nav
    refused = await client.get("/backoffice/catalog")
    assert refused.status_code == 403
    assert 'href="/backoffice/faq"' in refused.text  # the 403 page keeps the navigation


async def test_totp_second_factor(client: httpx.AsyncClient, db: Database) -> None:
    owner = await make_account(db, "olga@shop.test", "owner")
    csrf = await signed_in(client, "olga@shop.test")
    assert (await client.post("/backoffice/security/totp", data={"csrf_token": csrf})).status_code == 303
    async with db.sessions() as session:
        factor = await accounts.totp_of(session, account_id=owner)
    assert factor is not None
    assert "secret" in (await client.get("/backoffice/security")).text.lower()
    wrong = await client.post("/backoffice/security/totp/confirm", data={"csrf_token": csrf, "code": "000000"})
    assert wrong.status_code == 422
    assert "not the current one" in wrong.text
    code = accounts.totp(factor.secret, utcnow())
    assert (await client.post("/backoffice/security/totp/confirm",
                              data={"csrf_token": csrf, "code": code})).status_code == 303
    await client.post("/backoffice/sign-out", data={"csrf_token": csrf})

    asked = await client.post("/backoffice/sign-in", data={"email": "olga@shop.test", "password": PASSWORD})
    assert asked.status_code == 401
    assert 'name="code"' in asked.text
    # The confirming code was used: it does not sign in again (a code is good once).
    replay = await client.post("/backoffice/sign-in", data={"email": "olga@shop.test", "password": PASSWORD,
                                                           "code": code})
    assert replay.status_code == 401
    async with db.unit_of_work() as session:
        row = await accounts.totp_of(session, account_id=owner)
        assert row is not None
        row.last_step -= 1  # as if the code had been confirmed 30 s earlier
    ok = await client.post("/backoffice/sign-in", data={"email": "olga@shop.test", "password": PASSWORD,
                                                       "code": code})
    assert ok.status_code == 303


# ---------------------------------------------------------------------------------- roles, team, tokens

async def test_owner_invites_staff_and_staff_cannot_do_owner_things(client: httpx.AsyncClient, db: Database,
                                                                   settings: Settings) -> None:
    await make_account(db, "olga@shop.test", "owner")
    csrf = await signed_in(client, "olga@shop.test")
    invited = await client.post("/backoffice/team/invitations",
                                data={"csrf_token": csrf, "email": "sid@shop.test", "role": "staff"})
    assert invited.status_code == 200
    link = re.search(r'value="(http://shop\.test/invite/[^"]+)"', invited.text)
    assert link, invited.text
    bad = await client.post("/backoffice/team/invitations",
                            data={"csrf_token": csrf, "email": "not-an-email", "role": "staff"})
    assert bad.status_code == 422
    assert 'id="err-email"' in bad.text

    async with app_client(create_app(settings, database=db)) as staff:
        form = await staff.get(link.group(1))
        assert form.status_code == 200
        assert "sid@shop.test" in form.text
        short = await staff.post(link.group(1), data={"name": "Sid", "password": "short"})
        assert short.status_code == 422
        assert 'id="err-password"' in short.text
        joined = await staff.post(link.group(1), data={"name": "Sid", "password": PASSWORD})
        assert joined.status_code == 303
        again = await staff.post(link.group(1), data={"name": "Sid", "password": PASSWORD})
        assert again.status_code == 409  # an invitation works once
        staff_csrf = csrf_of(await staff.get("/backoffice"))
        forbidden = await staff.get("/backoffice/team")
        assert forbidden.status_code == 403
        assert "Nothing was changed" in forbidden.text
        async with db.sessions() as session:
            before = await session.scalar(select(func.count()).select_from(Invitation))
            tokens_before = await session.scalar(select(func.count()).select_from(ApiToken))
        tried = await staff.post("/backoffice/team/invitations",
                                 data={"csrf_token": staff_csrf, "email": "eve@shop.test", "role": "owner"})
        assert tried.status_code == 403
        minted = await staff.post("/backoffice/tokens",
                                  data={"csrf_token": staff_csrf, "name": "x", "role": "merchant"})
        assert minted.status_code == 403
        async with db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Invitation)) == before
            assert await session.scalar(select(func.count()).select_from(ApiToken)) == tokens_before
        # No CSRF token: refused before anything runs.
        assert (await staff.post("/backoffice/stock/adjust", data={"sku": "X", "location": "RTM", "mode": "add",
                                                                   "quantity": "1"})).status_code == 403
    team = await client.get("/backoffice/team")
    assert "sid@shop.test" in team.text
    assert "Merchant staff" in team.text


async def test_api_tokens_from_the_ui_are_shown_once_and_revocable(client: httpx.AsyncClient, db: Database) -> None:
    await make_account(db, "olga@shop.test", "owner")
    csrf = await signed_in(client, "olga@shop.test")
    bad = await client.post("/backoffice/tokens", data={"csrf_token": csrf, "name": "feed", "role": "merchant",
                                                        "expires_in": "soon"})
    assert bad.status_code == 422
    assert 'id="err-expires_in"' in bad.text
    created = await client.post("/backoffice/tokens", data={"csrf_token": csrf, "name": "feed", "role": "merchant",
                                                            "expires_in": "30d"})
    assert "shown this once" in created.text
    plain = re.search(r'value="(st_[^"]+)"', created.text)
    assert plain
    listed = await client.get("/backoffice/tokens")
    assert plain.group(1) not in listed.text
    assert "never" in listed.text
    used = await client.get("/api/v1/channels", headers={"Authorization": f"Bearer {plain.group(1)}"})
    assert used.status_code == 200
    assert "just now" in (await client.get("/backoffice/tokens")).text
    async with db.sessions() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.name == "feed"))
    assert row is not None
    assert (await client.post(f"/backoffice/tokens/{row.id}/revoke", data={"csrf_token": csrf})).status_code == 303
    refused = await client.get("/api/v1/channels", headers={"Authorization": f"Bearer {plain.group(1)}"})
    assert refused.status_code == 401
    audit = (await client.get("/backoffice/audit?area=tokens")).text
    assert "created" in audit
    assert "revoked" in audit
    assert "Olga &lt;olga@shop.test&gt;" in audit


# -------------------------------------------------------------------------------------- catalog, stock

def _product_form(csrf: str, **overrides: str) -> dict[str, str]:
    form = {"csrf_token": csrf, "slug": "tea-kettle", "category": "home-kitchen", "title_en": "Tea kettle",
            "title_zh": "茶壶", "description_en": "Boils water.", "description_zh": "烧水。", "base_price": "39.90",
            "currency": "EUR", "weight_grams": "900",
            "variants": "KETTLE-1 | colour=red\nKETTLE-2 | colour=blue | 41.50"}
    form.update(overrides)
    return form


async def test_product_with_chinese_title_and_image_and_refused_input(client: httpx.AsyncClient,
                                                                     db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
    await make_account(db, "sid@shop.test", "staff")
    csrf = await signed_in(client, "sid@shop.test")

    decimals = await client.post("/backoffice/catalog/new", data=_product_form(csrf, base_price="39.999"))
    assert decimals.status_code == 422
    assert "EUR prices have at most 2 decimal places" in decimals.text
    assert 'id="err-base_price"' in decimals.text
    assert "茶壶" in decimals.text  # what was typed stays in the form
    yen = await client.post("/backoffice/catalog/new", data=_product_form(csrf, currency="JPY", base_price="1200.5",
                                                                          variants="KETTLE-1"))
    assert yen.status_code == 422
    assert "JPY prices have at most 0 decimal places" in yen.text
    variant = await client.post("/backoffice/catalog/new", data=_product_form(csrf, variants="KETTLE-1 | 4.999"))
    assert variant.status_code == 422
    assert 'id="err-variants"' in variant.text
    not_image = await client.post("/backoffice/catalog/new", data=_product_form(csrf),
                                  files={"image": ("kettle.png", b"%PDF-1.4 not an image", "image/png")})
    assert not_image.status_code == 422
    assert "not a PNG, JPEG, GIF or WebP" in not_image.text
    too_big = await client.post("/backoffice/catalog/new", data=_product_form(csrf),
                                files={"image": ("kettle.png", png() + b"\0" * accounts.MAX_IMAGE_BYTES, "image/png")})
    assert too_big.status_code == 422
    assert "the limit is 2 MB" in too_big.text
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEvent)) == 0  # nothing was created

    created = await client.post("/backoffice/catalog/new", data=_product_form(csrf),
                                files={"image": ("kettle.png", png(), "image/png")})
    assert created.status_code == 303, created.text
    page = await client.get(created.headers["location"])
    assert "茶壶" in page.text
    assert "烧水。" in page.text
    assert "€41.50" in page.text
    image_url = re.search(r'src="(/media/\d+\.png)"', page.text)
    assert image_url
    served = await client.get(image_url.group(1))
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.content == png()
    duplicate = await client.post("/backoffice/catalog/new", data=_product_form(csrf))
    assert duplicate.status_code == 409
    assert 'id="err-slug"' in duplicate.text
    listing = await client.get("/backoffice/catalog")
    assert "Tea kettle" in listing.text
    assert "茶壶" in listing.text


async def test_stock_adjustment_shows_history_and_the_queued_channel_push(client: httpx.AsyncClient,
                                                                         db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await channels.create_channel(session, code="site", name="Web shop", kind="web", sync_mode="push",
                                      connector="webhook", config={"base_url": "http://127.0.0.1:9/hook",
                                                                   "secret": "s" * 32})
        await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 5}})
    await make_account(db, "sid@shop.test", "staff")
    csrf = await signed_in(client, "sid@shop.test")
    added = await client.post("/backoffice/stock/adjust", data={"csrf_token": csrf, "sku": "KET-1", "location": "RTM",
                                                                "mode": "add", "quantity": "7", "reason": "delivery"})
    assert added.status_code == 303
    page = await client.get(added.headers["location"])
    assert "12" in page.text
    assert "5 → 12" in page.text
    assert "delivery" in page.text
    assert "site · pending" in page.text
    too_many = await client.post("/backoffice/stock/adjust", data={"csrf_token": csrf, "sku": "KET-1",
                                                                   "location": "RTM", "mode": "remove",
                                                                   "quantity": "50"})
    assert too_many.status_code == 409
    assert 'id="err-quantity"' in too_many.text
    words = await client.post("/backoffice/stock/adjust", data={"csrf_token": csrf, "sku": "KET-1",
                                                                "location": "RTM", "mode": "add", "quantity": "lots"})
    assert words.status_code == 422
    assert "whole number" in words.text
    counted = await client.post("/backoffice/stock/adjust", data={"csrf_token": csrf, "sku": "KET-1",
                                                                  "location": "SZX", "mode": "count", "quantity": "3"})
    assert counted.status_code == 303
    levels = (await client.get("/api/v1/stock?sku=KET-1")).json()
    assert {lvl["location"]: lvl["on_hand"] for lvl in levels} == {"RTM": 12, "SZX": 3}


# ------------------------------------------------------------------------------------------------- FAQ

@pytest.mark.slow
async def test_faq_draft_review_and_publish_changes_the_shoppers_answer(client: httpx.AsyncClient, db: Database,
                                                                       settings: Settings) -> None:
    async with db.unit_of_work() as session:
        entry = await kb.create_entry(session, data=FaqEntryIn(
            language="en", questions=["How long does delivery take?"], answer="Delivery takes 2-4 days.",
            status="published"), author="seed")
        entry_id = entry.id
    await make_account(db, "sid@shop.test", "staff")
    await make_account(db, "olga@shop.test", "owner")
    csrf = await signed_in(client, "sid@shop.test")
    editor = await client.get(f"/backoffice/faq/{entry_id}")
    assert "中文" in editor.text
    assert "Missing" in editor.text
    assert "reaches it" in editor.text

    saved = await client.post(f"/backoffice/faq/{entry_id}/draft", data={
        "csrf_token": csrf, "questions": "How long does delivery take?", "answer": "Delivery takes 1-2 days.",
        "revision": "0", "seen_version": "1", "action": "save"})
    assert saved.status_code == 303
    index = client._transport.app.state.faq_index  # type: ignore[attr-defined]
    async with db.sessions() as session:
        live = await kb.answer(index, question="How long does delivery take?", language="en", session=session)
    assert live.matches[0].answer == "Delivery takes 2-4 days."  # a draft does not go live

    # A second tab that opened the entry before that save: told, and its text is kept.
    stale = await client.post(f"/backoffice/faq/{entry_id}/draft", data={
        "csrf_token": csrf, "questions": "How long does delivery take?", "answer": "Second tab's text.",
        "revision": "0", "seen_version": "1", "action": "save"})
    assert stale.status_code == 409
    assert "saved this draft" in stale.text
    assert "Second tab&#39;s text." in stale.text
    assert 'data-guard="dirty"' in stale.text

    forbidden = await client.post(f"/backoffice/faq/{entry_id}/draft", data={
        "csrf_token": csrf, "questions": "How long does delivery take?", "answer": "Delivery takes 1-2 days.",
        "revision": "1", "seen_version": "1", "action": "publish"})
    assert forbidden.status_code == 403
    review = await client.post(f"/backoffice/faq/{entry_id}/draft", data={
        "csrf_token": csrf, "questions": "How long does delivery take?", "answer": "Delivery takes 1-2 days.",
        "revision": "1", "seen_version": "1", "action": "review"})
    assert review.status_code == 303

    async with app_client(create_app(settings, database=db)) as owner:
        owner_csrf = await signed_in(owner, "olga@shop.test")
        waiting = await owner.get("/backoffice/faq?state=review")
        assert "How long does delivery take?" in waiting.text
        page = await owner.get(f"/backoffice/faq/{entry_id}")
        assert "awaiting review" in page.text
        revision = re.search(r'name="revision" value="(\d+)"', page.text)
        assert revision
        published = await owner.post(f"/backoffice/faq/{entry_id}/draft", data={
            "csrf_token": owner_csrf, "questions": "How long does delivery take?",
            "answer": "Delivery takes 1-2 days.", "revision": revision.group(1), "seen_version": "1",
            "action": "publish"})
        assert published.status_code == 303
        history = await owner.get(f"/backoffice/faq/{entry_id}")
        assert "v2</b> published by Olga" in history.text
        assert "+ Delivery takes 1-2 days." in history.text
    async with db.sessions() as session:
        now = await kb.answer(index, question="How long does delivery take?", language="en", session=session)
    assert now.matches[0].answer == "Delivery takes 1-2 days."


async def test_orders_list_filters_and_the_order_moves_along_its_lifecycle(client: httpx.AsyncClient,
                                                                          db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 5}})
        order, _ = await orders.create_order(session, data=OrderIn(
            channel="web", external_id="w-1", currency="EUR", country="DE", email="anna@example.com",
            lines=[OrderLineIn(sku="KET-1", quantity=2)], shipping=Decimal("4.90"), duties=Decimal("0"),
            taxes=Decimal("18.96")))
        order_id, number = order.id, order.number
    await make_account(db, "sid@shop.test", "staff")
    csrf = await signed_in(client, "sid@shop.test")
    listed = await client.get("/backoffice/orders?status=pending_payment")
    assert f"#{number}" in listed.text
    assert f"#{number}" not in (await client.get("/backoffice/orders?status=paid")).text
    detail = await client.get(f"/backoffice/orders/{order_id}")
    assert "<td>Taxes</td><td>€18.96</td>" in detail.text
    assert "KET-1" in detail.text
    paid = await client.post(f"/backoffice/orders/{order_id}/status", data={"csrf_token": csrf, "to_status": "paid"})
    assert paid.status_code == 303
    packed = await client.post(f"/backoffice/orders/{order_id}/status", data={"csrf_token": csrf,
                                                                              "to_status": "packed"})
    assert packed.status_code == 303
    untracked = await client.post(f"/backoffice/orders/{order_id}/status", data={"csrf_token": csrf,
                                                                                 "to_status": "shipped"})
    assert untracked.status_code == 422
    assert 'id="err-tracking_number"' in untracked.text
    shipped = await client.post(f"/backoffice/orders/{order_id}/status", data={
        "csrf_token": csrf, "to_status": "shipped", "carrier": "DHL", "tracking_number": "JD0001"})
    assert shipped.status_code == 303
    backwards = await client.post(f"/backoffice/orders/{order_id}/status", data={"csrf_token": csrf,
                                                                                 "to_status": "paid"})
    assert backwards.status_code == 409
    assert "cannot become paid" in backwards.text
    async with db.sessions() as session:
        assert (await orders.get_order(session, order_id=order_id)).status == "shipped"


async def test_faq_export_and_all_or_nothing_import(client: httpx.AsyncClient, db: Database) -> None:
    async with db.unit_of_work() as session:
        await kb.create_entry(session, author="seed", data=FaqEntryIn(
            language="en", questions=["Do you ship to Japan?"], answer="Yes, in 5-8 days.", status="draft"))
    await make_account(db, "olga@shop.test", "owner")
    csrf = await signed_in(client, "olga@shop.test")
    exported = await client.get("/backoffice/faq/export/faq.csv")
    assert exported.status_code == 200
    assert "Do you ship to Japan?" in exported.text
    bad = exported.text + "broken-row,xx,draft,Question?,Answer.,,,\n"
    refused = await client.post("/backoffice/faq/import", data={"csrf_token": csrf},
                                files={"file": ("faq.csv", bad.encode(), "text/csv")})
    assert refused.status_code == 303
    assert "Nothing%20imported" in refused.headers["location"]
    changed = exported.text.replace("Yes, in 5-8 days.", "Yes, in 4-6 days.")
    imported = await client.post("/backoffice/faq/import", data={"csrf_token": csrf},
                                 files={"file": ("faq.csv", changed.encode(), "text/csv")})
    assert imported.status_code == 303
    assert "1%20updated" in imported.headers["location"]
    async with db.sessions() as session:
        _, entries = await kb.list_entries(session, text="japan")
    assert [e.answer for e in entries] == ["Yes, in 4-6 days."]


async def test_edit_a_products_translations_and_price(client: httpx.AsyncClient, db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        product = await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 5}}, price="49.90")
        product_id = product.id
    await make_account(db, "sid@shop.test", "staff")
    csrf = await signed_in(client, "sid@shop.test")
    form = {"csrf_token": csrf, "product_id": str(product_id), "title_en": "Kettle", "title_zh": "电热水壶",
            "description_en": "A test product.", "description_zh": "", "base_price": "49.905"}
    refused = await client.post("/backoffice/catalog/edit", data=form)
    assert refused.status_code == 422
    assert 'id="err-base_price"' in refused.text
    assert 'value="电热水壶"' in refused.text  # the typed translation is kept
    saved = await client.post("/backoffice/catalog/edit", data={**form, "base_price": "44.50"})
    assert saved.status_code == 303
    shown = (await client.get(f"/api/v1/products/{product_id}")).json()
    assert shown["title"] == {"en": "Kettle", "zh": "电热水壶"}
    assert Decimal(shown["base_price"]) == Decimal("44.50")
    async with db.sessions() as session:
        _, events = await accounts.audit_events(session, area="price")
    assert [(e.action, e.details["before"], e.details["after"]) for e in events] == [
        ("price changed", "49.90 EUR", "44.50 EUR")]


async def test_changes_made_through_the_api_are_in_the_audit_log(client: httpx.AsyncClient, db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        token = await create_token(session, name="erp sync", role="merchant")
    bearer = {"Authorization": f"Bearer {token}"}
    created = await client.post("/api/v1/products", headers=bearer, json={
        "slug": "mug", "category": "home-kitchen", "title": {"en": "Mug", "zh": "杯子"}, "base_price": "9.90",
        "currency": "EUR", "variants": [{"sku": "MUG-1"}]})
    assert created.status_code == 201, created.text
    adjusted = await client.post("/api/v1/stock/adjustments", headers=bearer,
                                 json={"sku": "MUG-1", "location": "RTM", "delta": 4})
    assert adjusted.status_code == 200, adjusted.text
    await make_account(db, "olga@shop.test", "owner")
    await signed_in(client, "olga@shop.test")
    audit = (await client.get("/backoffice/audit")).text
    assert "API token" in audit
    assert "(erp sync)" in audit
    assert "product created" in audit
    assert "0 → 4" not in audit  # details are listed as key: value
    assert "after: 4" in audit


async def test_pins_and_synonyms_are_picked_by_search(client: httpx.AsyncClient, db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="electric-kettle", skus={"KET-1": {"RTM": 5}}, title="Electric Kettle")
        await make_product(session, slug="glass-teapot", skus={"POT-1": {"RTM": 5}}, title="Glass Teapot")
    await make_account(db, "sid@shop.test", "staff")
    csrf = await signed_in(client, "sid@shop.test")
    page = await client.get("/backoffice/search", params={"q": "kettle", "find": "teapot"})
    assert page.status_code == 200
    assert "Electric Kettle" in page.text
    assert "Products found for “teapot”" in page.text
    pinned = await client.post("/backoffice/search/rules", data={
        "csrf_token": csrf, "kind": "pin", "product": "glass-teapot", "q": "kettle", "position": "1"})
    assert pinned.status_code == 303
    first = (await client.get("/api/v1/search/products", params={"q": "kettle"},
                              headers=await _merchant(db))).json()["hits"][0]
    assert first["product"] == "glass-teapot"
    no_query = await client.post("/backoffice/search/rules", data={
        "csrf_token": csrf, "kind": "pin", "product": "glass-teapot", "q": "", "position": "1"})
    assert no_query.status_code == 422
    assert 'id="err-q"' in no_query.text
    lonely = await client.post("/backoffice/search/synonyms", data={"csrf_token": csrf, "terms": "kettle"})
    assert lonely.status_code == 422
    assert 'id="err-terms"' in lonely.text
    added = await client.post("/backoffice/search/synonyms", data={"csrf_token": csrf, "terms": "kettle, 水壶, boiler"})
    assert added.status_code == 303
    assert "boiler" in (await client.get("/backoffice/search")).text


async def _merchant(db: Database) -> dict[str, str]:
    async with db.unit_of_work() as session:
        return {"Authorization": f"Bearer {await create_token(session, name='check', role='merchant')}"}


async def test_the_consoles_json_sign_in_asks_for_the_second_factor_too(client: httpx.AsyncClient,
                                                                       db: Database) -> None:
    account = await make_account(db, "sam@shop.test", "supervisor")
    async with db.unit_of_work() as session:
        secret = await accounts.start_totp(session, account_id=account)
        await accounts.confirm_totp(session, account_id=account, code=accounts.totp(secret, utcnow()))
    asked = await client.post("/api/v1/agent/session", json={"email": "sam@shop.test", "password": PASSWORD})
    assert asked.status_code == 401
    assert asked.json()["code"] == "totp_required"
    wrong = await client.post("/api/v1/agent/session", json={"email": "sam@shop.test", "password": PASSWORD,
                                                             "code": "123456"})
    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "Wrong email, password or code."
    assert "shoptalk_agent" not in wrong.headers.get("set-cookie", "")
