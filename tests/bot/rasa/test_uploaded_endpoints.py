"""An uploaded (not folder) project reads its action endpoint at run time, as a folder-imported one does: its
endpoints.yml lives in the data directory and replacing it takes effect at the next action, no re-import."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot import BotDeps, InboundMessage, handle_inbound
from bot.rasa import service
from bot.rasa.errors import RasaProjectInvalid
from bot.rasa.project import read_project_folder
from kit.db import Database
from tests.bot.rasa.conftest import SAMPLE
from tests.http import start_aiohttp

FAILED = "Sorry, our kitchen system is not answering right now. Please try again later."


async def _send(db: Database, deps: BotDeps, text: str, number: int) -> list[str]:
    async with db.unit_of_work() as session:
        result = await handle_inbound(session, InboundMessage(channel="rest", sender_id="uma",
                                                              message_id=f"uma-{number}", text=text), deps=deps)
    return [reply.text for reply in result.replies]


async def test_replacing_an_uploaded_projects_endpoints_takes_effect_at_the_next_action(
        db: Database, bot_deps: BotDeps, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "train_project_nlu", lambda *a, **k: None)  # messages use /intent: no NLU
    monkeypatch.delenv("CAKE_SHOP_ACTIONS_URL", raising=False)
    models_dir = service.models_dir_of(bot_deps.settings.data_dir)
    files = read_project_folder(SAMPLE)
    async with db.unit_of_work() as session:
        report = await service.import_project(session, files=files, models_dir=models_dir)
    stored = Path(report.summary["endpoints_file"])
    assert stored.read_text(encoding="utf-8") == files["endpoints.yml"]
    assert await _send(db, bot_deps, "/ask_quote", 1) == [FAILED]  # ${CAKE_SHOP_ACTIONS_URL} is unset

    calls: list[dict[str, Any]] = []

    async def webhook(request: web.Request) -> web.Response:
        calls.append(await request.json())
        return web.json_response({"events": [], "responses": [{"text": "A wedding cake is 250 EUR."}]})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner, port = await start_aiohttp(app)
    try:
        async with db.unit_of_work() as session:
            changed = await service.replace_endpoints(
                session, text=f"action_endpoint:\n  url: http://127.0.0.1:{port}/webhook\n", models_dir=models_dir)
        assert changed["action_endpoint"] == f"http://127.0.0.1:{port}/webhook"
        assert await _send(db, bot_deps, "/ask_quote", 2) == ["A wedding cake is 250 EUR."]  # no re-import
        assert calls[-1]["next_action"] == "action_slow_quote"
        # the operator may edit the file itself too: read when it changes
        stored.write_text("action_endpoint:\n  url: http://127.0.0.1:9/webhook\n  timeout: 1\n", encoding="utf-8")
        assert await _send(db, bot_deps, "/ask_quote", 3) == [FAILED]
    finally:
        await runner.cleanup()
    async with db.unit_of_work() as session:
        with pytest.raises(RasaProjectInvalid):
            await service.replace_endpoints(session, text="action_endpoint: [", models_dir=models_dir)


async def test_a_folder_projects_endpoints_are_edited_in_the_folder(db: Database, bot_deps: BotDeps,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "train_project_nlu", lambda *a, **k: None)
    models_dir = service.models_dir_of(bot_deps.settings.data_dir)
    async with db.unit_of_work() as session:
        report = await service.import_project(session, files=read_project_folder(SAMPLE), models_dir=models_dir,
                                              source_dir=SAMPLE)
        assert "endpoints_file" not in report.summary
        with pytest.raises(RasaProjectInvalid, match="imported from a folder"):
            await service.replace_endpoints(session, text="action_endpoint:\n  url: http://x/webhook\n",
                                            models_dir=models_dir)
