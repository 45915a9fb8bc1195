"""The merchant's web chat sites API and what a storefront page gets: the loader, CORS on the config for listed
origins only (others get the reason), and the frame's frame-ancestors from the same list."""
from __future__ import annotations

import httpx

from kit.db import Database
from tests.api.conftest import token_for

STORE = "https://shop.example"


async def test_merchant_lists_origins_and_the_frame_and_config_follow_them(client: httpx.AsyncClient,
                                                                          db: Database) -> None:
    merchant = await token_for(db, "merchant")
    assert (await client.put("/api/v1/webchat/sites/demo-store", json={"allowed_origins": [STORE]})).status_code == 401
    agent = await token_for(db, "agent")
    refused = await client.put("/api/v1/webchat/sites/demo-store", json={"allowed_origins": [STORE]}, headers=agent)
    assert refused.status_code == 403
    bad = await client.put("/api/v1/webchat/sites/demo-store", json={"allowed_origins": ["https://x.example/path"]},
                           headers=merchant)
    assert bad.status_code == 422
    assert "no path" in bad.json()["detail"]

    saved = await client.put("/api/v1/webchat/sites/demo-store",
                             json={"allowed_origins": [STORE, "http://localhost:3000/"]}, headers=merchant)
    assert saved.status_code == 200
    body = saved.json()
    assert body["allowed_origins"] == [STORE, "http://localhost:3000"]
    assert body["identity_verification"] is False
    assert 'data-shop="demo-store"' in body["snippet"]
    assert "/widget.js" in body["snippet"]
    secret = await client.post("/api/v1/webchat/sites/demo-store/identity-secret", headers=merchant)
    assert secret.status_code == 201
    assert len(secret.json()["identity_secret"]) >= 40
    listed = (await client.get("/api/v1/webchat/sites", headers=merchant)).json()
    assert listed[0]["identity_verification"] is True
    assert "identity_secret" not in listed[0]  # shown once, never listed

    loader = await client.get("/widget.js")
    assert loader.status_code == 200
    assert loader.headers["content-type"].startswith("text/javascript")
    assert "ShopTalk" in loader.text

    allowed = await client.get("/webchat/config", params={"shop": "demo-store", "locale": "zh"},
                               headers={"Origin": STORE})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == STORE
    assert allowed.json()["frame_url"].endswith("/webchat/frame?shop=demo-store")
    assert allowed.json()["strings"]["open"] == "打开聊天"
    other = await client.get("/webchat/config", params={"shop": "demo-store"},
                             headers={"Origin": "https://evil.example"})
    assert other.status_code == 403
    assert "https://evil.example is not in the allowed origins" in other.json()["detail"]
    assert "frame_url" not in other.json()
    unknown = await client.get("/webchat/config", params={"shop": "nope"}, headers={"Origin": STORE})
    assert unknown.status_code == 404
    assert "no shop 'nope'" in unknown.json()["detail"]

    frame = await client.get("/webchat/frame", params={"shop": "demo-store"})
    assert frame.status_code == 200
    assert "frame-ancestors https://shop.example http://localhost:3000" in frame.headers["content-security-policy"]
    assert "x-frame-options" not in frame.headers
    assert '"打开聊天"' in frame.text  # the catalogs' strings, inlined as data
    assert "<script>" not in frame.text.replace('<script type="application/json"', "")
    page = await client.get("/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    missing = await client.get("/webchat/frame", params={"shop": "nope"})
    assert missing.status_code == 404
    assert "frame-ancestors 'none'" in missing.headers["content-security-policy"]

    off = await client.delete("/api/v1/webchat/sites/demo-store/identity-secret", headers=merchant)
    assert off.status_code == 204
    assert (await client.get("/api/v1/webchat/sites/demo-store", headers=merchant)).json()[
        "identity_verification"] is False
