"""A stand-in for a Rasa 3.6 server (`rasa run --enable-api`) speaking its HTTP wire format: the REST channel
(`POST /webhooks/rest/webhook`) and the conversation API (`/conversations/{id}/messages|predict|execute|
tracker/events`), with `?token=` auth. Its "model": a message `/intent` (or a keyword) is the intent; greet ->
utter_greet, order_status -> action_shoptalk_order_status, human -> action_shoptalk_handoff, then action_listen.
`behaviour` switches it to slow / garbage / error answers."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.http import start_aiohttp

POLICY = {"greet": "utter_greet", "order_status": "action_shoptalk_order_status", "human": "action_shoptalk_handoff"}
RESPONSES = {"utter_greet": "Hello from Rasa!"}


@dataclass
class RasaDouble:
    url: str = ""
    token: str | None = None
    behaviour: str = "ok"  # ok | slow | garbage | error
    trackers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, Any]] = field(default_factory=list)

    def events(self, sender: str) -> list[dict[str, Any]]:
        return self.trackers.setdefault(sender, [])


def _intent(text: str) -> str:
    if text.startswith("/"):
        return text[1:].split("{")[0]
    lowered = text.lower()
    return "greet" if "hello" in lowered or "hi" == lowered else "order_status" if "order" in lowered else \
        "human" if "person" in lowered else "nlu_fallback"


def _state(sender: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    latest: dict[str, Any] = next((e["parse_data"] for e in reversed(events) if e.get("event") == "user"), {})
    return {"sender_id": sender, "slots": {}, "latest_message": latest, "events": events,
            "latest_action_name": next((e["name"] for e in reversed(events) if e.get("event") == "action"), None)}


def _app(double: RasaDouble) -> web.Application:
    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        double.requests.append((request.path, await request.json() if request.can_read_body else None))
        if double.token is not None and request.query.get("token") != double.token:
            return web.json_response({"status": "failure", "reason": "NotAuthenticated"}, status=401)
        if double.behaviour == "slow":
            await asyncio.sleep(3)
        if double.behaviour == "garbage":
            return web.Response(text="<html>upstream error</html>", content_type="text/html")
        if double.behaviour == "error":
            return web.json_response({"status": "failure", "reason": "ConversationError"}, status=500)
        answer: web.StreamResponse = await handler(request)
        return answer

    async def rest(request: web.Request) -> web.Response:
        body = await request.json()
        sender, text = body["sender"], body["message"]
        answer = RESPONSES.get(POLICY.get(_intent(text), ""), f"You said: {text}")
        return web.json_response([{"recipient_id": sender, "text": answer,
                                   "buttons": [{"title": "Order status", "payload": "/order_status"}]}])

    async def messages(request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        body = await request.json()
        if body.get("sender") != "user":
            return web.json_response({"status": "failure", "reason": "BadRequest"}, status=400)
        events = double.events(sender)
        events.append({"event": "user", "text": body["text"], "timestamp": time.time(),
                       "parse_data": {"text": body["text"], "intent": {"name": _intent(body["text"]),
                                                                       "confidence": 1.0}, "entities": []}})
        return web.json_response(_state(sender, events))

    async def predict(request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        events = double.events(sender)
        last = events[-1] if events else {}
        name = "action_listen"
        if last.get("event") == "user":
            name = POLICY.get(last["parse_data"]["intent"]["name"], "action_default_fallback")
        scores: list[dict[str, Any]] = sorted(
            [{"action": name, "score": 0.97},
             {"action": "utter_greet" if name != "utter_greet" else "action_listen", "score": 0.03}],
            key=lambda s: -float(s["score"]))
        return web.json_response({"scores": scores, "policy": "RulePolicy", "confidence": 0.97,
                                  "tracker": _state(sender, events)})

    async def execute(request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        body = await request.json()
        events = double.events(sender)
        events.append({"event": "action", "name": body["name"], "policy": body.get("policy"),
                       "confidence": body.get("confidence"), "timestamp": time.time()})
        said = []
        if body["name"] in RESPONSES:
            said = [{"recipient_id": sender, "text": RESPONSES[body["name"]]}]
        elif body["name"] == "action_default_fallback":
            said = [{"recipient_id": sender, "text": "Sorry, I didn't get that."}]
        events.extend({"event": "bot", "text": m["text"], "timestamp": time.time()} for m in said)
        return web.json_response({"tracker": _state(sender, events), "messages": said})

    async def append(request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        body = await request.json()
        double.events(sender).extend(body if isinstance(body, list) else [body])
        return web.json_response(_state(sender, double.events(sender)))

    app = web.Application(middlewares=[guard])
    app.router.add_post("/webhooks/rest/webhook", rest)
    app.router.add_post("/conversations/{sender}/messages", messages)
    app.router.add_post("/conversations/{sender}/predict", predict)
    app.router.add_post("/conversations/{sender}/execute", execute)
    app.router.add_post("/conversations/{sender}/tracker/events", append)
    return app


@asynccontextmanager
async def rasa_double(token: str | None = None) -> AsyncIterator[RasaDouble]:
    double = RasaDouble(token=token)
    runner, port = await start_aiohttp(_app(double))
    double.url = f"http://127.0.0.1:{port}"
    try:
        yield double
    finally:
        await runner.cleanup()
