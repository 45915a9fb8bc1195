"""Where the shopper came from: the web chat's landing page, referrer and UTM parameters (sent by the widget when it
connects, kept with the first message) and Telegram's deep-link start parameter, in the console's shopper panel."""
from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import httpx
import websockets

from bot import BotDeps, handoff
from bot.channels.source import telegram_start, visit_source
from kit.db import Database
from tests.bot.channels.test_webchat_sessions import _served
from tests.bot.handoff.conftest import PASSWORD, load_agent, make_agent, shopper_says


def test_visit_source_keeps_only_http_addresses_and_the_utm_parameters() -> None:
    page = "https://shop.example/tea?utm_source=newsletter&utm_medium=email&utm_campaign=spring&x=1#top"
    assert visit_source(page, "https://www.google.com/") == {
        "landing_page": "https://shop.example/tea?utm_source=newsletter&utm_medium=email&utm_campaign=spring&x=1",
        "utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring",
        "referrer": "https://www.google.com/"}
    assert visit_source("javascript:alert(1)", "") is None
    assert visit_source("https://shop.example/" + "a" * 3000, None) is None
    assert visit_source(None, "data:text/html,hi") is None
    assert telegram_start("/start spring_sale-2026") == {"start_parameter": "spring_sale-2026"}
    assert telegram_start("/start") is None
    assert telegram_start("/start <script>") is None


async def test_telegram_start_parameter_in_the_shopper_panel(db: Database) -> None:
    ana = await make_agent(db, "ana@shop.test")
    conversation_id = await shopper_says(db, "/start from_instagram", channel="telegram", sender="4242",
                                         human=True)
    async with db.unit_of_work() as session:
        agent = await load_agent(session, ana)
        await handoff.inbox.sync_escalations(session)
        view = await handoff.views.conversation_view(session, agent=agent, conversation_id=conversation_id)
    assert view.shopper.came_from == {"start_parameter": "from_instagram"}


async def test_web_chat_landing_page_and_utm_reach_the_console(db: Database, bot_deps: BotDeps) -> None:
    page = "https://shop.example/kettles?utm_source=ads&utm_medium=cpc&utm_campaign=winter"
    async with _served(db, bot_deps) as url:
        query = f"?page={quote(page, safe='')}&ref={quote('https://search.example/q', safe='')}"
        async with websockets.connect(url + query) as socket:
            for frame_id, text in (("c-1", "/human"), ("c-2", "hello again")):
                await socket.send(json.dumps({"type": "message", "id": frame_id, "text": text}))
                while json.loads(await asyncio.wait_for(socket.recv(), 30)).get("type") != "ack":
                    pass
        await make_agent(db, "ana@shop.test")
        base = url.replace("ws://", "http://").removesuffix("/ws/chat")
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:  # not httpx's 5 s: signing in hashes
            signed = await http.post("/api/v1/agent/session", json={"email": "ana@shop.test", "password": PASSWORD})
            assert signed.status_code == 200
            items = (await http.get("/api/v1/agent/inbox?view=open")).json()
            assert len(items) == 1
            view = (await http.get(f"/api/v1/agent/conversations/{items[0]['conversation_id']}")).json()
    assert view["shopper"]["came_from"] == {"landing_page": page, "utm_source": "ads", "utm_medium": "cpc",
                                            "utm_campaign": "winter", "referrer": "https://search.example/q"}
