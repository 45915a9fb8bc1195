"""Keep a real Rasa server: a conversation's turns go to an existing Rasa server while ShopTalk keeps the channels,
the handoff, the agent console and its commerce actions.

Two ways of talking to it (the assistant's `rasa_server.mode`):
- `rest`: Rasa's REST channel, `POST {url}/webhooks/rest/webhook` {sender, message, metadata} -> the bot's
  messages. Rasa runs every action itself (its own action server).
- `predict` (needs `rasa run --enable-api`): `POST /conversations/{sender}/messages` logs the user's message
  (Rasa's NLU parses it), then `POST /conversations/{sender}/predict` and `POST .../execute` one action at a time,
  as Rasa's own processor loops, until `action_listen` (at most MAX_ACTIONS, Rasa's max_number_of_predictions).
  ShopTalk's actions (`action_shoptalk_order_status`, `action_shoptalk_handoff`) run here, inside ShopTalk, and
  their events are appended with `POST .../tracker/events`; every other action Rasa executes.

A server that is down, slow (the assistant's `timeout`) or answers something that is not Rasa's JSON raises
`RasaServerFailed` once for the turn; the next message tries again (nothing is stuck). The token for Rasa's
`--auth-token` is read from the environment variable the setting names (`token_env`), never stored.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

import httpx

from bot.rasa.assistant import ActionContext, ShopTalkAction
from bot.rasa.domain import Domain
from bot.rasa.errors import RasaServerFailed, RasaServerSettingInvalid
from bot.rasa.tracker import Tracker, action_event

MODES = ("rest", "predict")
MAX_ACTIONS = 10  # Rasa's max_number_of_predictions


@dataclass(frozen=True)
class RasaServer:
    """The setting stored with an assistant (`summary["rasa_server"]`)."""

    url: str
    mode: str = "predict"
    timeout: float = 10.0
    token_env: str | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise RasaServerSettingInvalid(f"the Rasa server URL must start with http:// or https://, not {self.url!r}")
        if self.mode not in MODES:
            raise RasaServerSettingInvalid(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if not 0 < self.timeout <= 120:
            raise RasaServerSettingInvalid("timeout must be between 0 and 120 seconds")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RasaServer:
        return cls(url=str(raw["url"]), mode=str(raw.get("mode") or "predict"),
                   timeout=float(raw.get("timeout") or 10.0), token_env=raw.get("token_env") or None)


@dataclass
class RemoteTurn:
    """What the Rasa server answered to one message: the bot's messages (Rasa's REST channel shape) and, in
    predict mode, the user's message as Rasa's NLU read it and the actions that ran."""

    replies: list[dict[str, Any]]
    parse: dict[str, Any]
    actions: list[str]


class RemoteRasa:
    def __init__(self, server: RasaServer, *, shoptalk_actions: dict[str, ShopTalkAction] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.server = server
        self.shoptalk_actions = shoptalk_actions or {}
        self._transport = transport

    def _params(self) -> dict[str, str]:
        token = os.environ.get(self.server.token_env) if self.server.token_env else None
        return {"token": token} if token else {}

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.server.url.rstrip("/"), timeout=self.server.timeout,
                                 params=self._params(), transport=self._transport)

    async def _post(self, client: httpx.AsyncClient, path: str, body: Any) -> Any:
        try:
            answer = await client.post(path, json=body)
        except httpx.TimeoutException as error:
            raise RasaServerFailed(f"the Rasa server did not answer {path} within {self.server.timeout:g} s") \
                from error
        except httpx.HTTPError as error:
            raise RasaServerFailed(f"the Rasa server cannot be reached ({type(error).__name__})") from error
        if answer.status_code >= 400:
            raise RasaServerFailed(f"the Rasa server answered {path} with HTTP {answer.status_code}")
        try:
            return answer.json()
        except ValueError as error:
            raise RasaServerFailed(f"the Rasa server's answer to {path} is not JSON") from error

    async def turn(self, *, sender_id: str, text: str, metadata: dict[str, Any] | None = None,
                   context: ActionContext | None = None) -> RemoteTurn:
        async with self._client() as client:
            if self.server.mode == "rest":
                return await self._rest(client, sender_id, text, metadata)
            return await self._predict(client, sender_id, text, metadata, context)

    async def _rest(self, client: httpx.AsyncClient, sender_id: str, text: str,
                    metadata: dict[str, Any] | None) -> RemoteTurn:
        answer = await self._post(client, "/webhooks/rest/webhook",
                                  {"sender": sender_id, "message": text, "metadata": metadata or {}})
        if not isinstance(answer, list) or not all(isinstance(item, dict) for item in answer):
            raise RasaServerFailed("the Rasa server's REST answer is not a list of messages")
        return RemoteTurn(replies=[_without_recipient(item) for item in answer], parse={}, actions=[])

    async def _predict(self, client: httpx.AsyncClient, sender_id: str, text: str,
                       metadata: dict[str, Any] | None, context: ActionContext | None) -> RemoteTurn:
        base = f"/conversations/{quote(sender_id, safe='')}"
        tracker = await self._post(client, f"{base}/messages",
                                   {"text": text, "sender": "user", "metadata": metadata or {}})
        parse = _latest_parse(tracker)
        replies: list[dict[str, Any]] = []
        actions: list[str] = []
        for _ in range(MAX_ACTIONS):
            prediction = await self._post(client, f"{base}/predict", None)
            scores = prediction.get("scores") if isinstance(prediction, dict) else None
            if not isinstance(scores, list) or not scores:
                raise RasaServerFailed("the Rasa server's prediction has no scores")
            best = max((s for s in scores if isinstance(s, dict) and isinstance(s.get("action"), str)),
                       key=lambda s: float(s.get("score") or 0.0), default=None)
            if best is None:
                raise RasaServerFailed("the Rasa server's prediction names no action")
            name = str(best["action"])
            policy, confidence = prediction.get("policy"), prediction.get("confidence")
            actions.append(name)
            if name in self.shoptalk_actions and context is not None:
                local = Tracker(sender_id, Domain(), list(_events(prediction.get("tracker"))))
                context.tracker = local
                produced = await self.shoptalk_actions[name](context)
                await self._post(client, f"{base}/tracker/events",
                                 [action_event(name, policy=policy, confidence=float(confidence or 1.0)), *produced])
                replies.extend(_bot_message(e) for e in produced if e.get("event") == "bot")
                continue  # Rasa predicts what follows, as after any action
            executed = await self._post(client, f"{base}/execute",
                                        {"name": name, "policy": policy, "confidence": confidence})
            messages = executed.get("messages") if isinstance(executed, dict) else None
            replies.extend(_without_recipient(m) for m in messages or [] if isinstance(m, dict))
            if name == "action_listen":
                break
        return RemoteTurn(replies=replies, parse=parse, actions=actions)


def _events(tracker: Any) -> list[dict[str, Any]]:
    events = tracker.get("events") if isinstance(tracker, dict) else None
    return [e for e in events or [] if isinstance(e, dict)]


def _latest_parse(tracker: Any) -> dict[str, Any]:
    latest = tracker.get("latest_message") if isinstance(tracker, dict) else None
    if isinstance(latest, dict):
        return {k: latest.get(k) for k in ("text", "intent", "entities", "intent_ranking") if k in latest}
    for item in reversed(_events(tracker)):
        if item.get("event") == "user":
            return dict(item.get("parse_data") or {})
    return {}


def _without_recipient(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "recipient_id"}


def _bot_message(bot: dict[str, Any]) -> dict[str, Any]:
    data = bot.get("data") or {}
    return {"text": bot.get("text"), **{k: v for k, v in data.items() if v}}
