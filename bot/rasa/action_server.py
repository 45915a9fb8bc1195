"""Rasa's action server protocol: POST the tracker and domain, get events and responses back."""
from __future__ import annotations

import logging
from typing import Any

import httpx

from bot.rasa.errors import ActionRejected, ActionServerFailed

log = logging.getLogger(__name__)
RASA_VERSION = "3.6.20"
_EVENT_KINDS = frozenset({
    "slot", "followup", "active_loop", "form", "restart", "reset_slots", "bot", "reminder", "cancel_reminder",
    "undo", "rewind", "session_started", "pause", "resume", "action_execution_rejected", "loop_interrupted",
    "user", "action", "agent", "export", "user_featurization", "entities", "stack",
})


class ActionServerClient:
    def __init__(self, url: str, *, timeout: float = 10.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self._transport = transport

    async def run(self, *, action: str, sender_id: str, tracker: dict[str, Any],
                  domain: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The events and responses the action server returns for `action`."""
        body = {"next_action": action, "sender_id": sender_id, "tracker": tracker, "domain": domain,
                "version": RASA_VERSION}
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self._transport) as client:
                response = await client.post(self.url, json=body)
        except httpx.TimeoutException as error:
            raise ActionServerFailed(f"action '{action}': the action server did not answer within "
                                     f"{self.timeout:g} s", action=action) from error
        except httpx.HTTPError as error:
            raise ActionServerFailed(f"action '{action}': cannot reach the action server ({type(error).__name__})",
                                     action=action) from error
        if response.status_code == 400:
            try:
                reason = response.json().get("error", "")
            except ValueError:
                reason = ""
            raise ActionRejected(f"action '{action}' was rejected: {reason}"[:500], action=action)
        if response.status_code == 404:
            raise ActionServerFailed(f"action '{action}' is not known to the action server", action=action)
        if response.status_code != 200:
            raise ActionServerFailed(f"action '{action}': the action server answered HTTP {response.status_code}",
                                     action=action)
        try:
            payload = response.json()
        except ValueError as error:
            raise ActionServerFailed(f"action '{action}': the answer is not JSON", action=action) from error
        if not isinstance(payload, dict):
            raise ActionServerFailed(f"action '{action}': the answer is not a JSON object", action=action)
        events = payload.get("events") or []
        responses = payload.get("responses") or []
        if not isinstance(events, list) or not isinstance(responses, list):
            raise ActionServerFailed(f"action '{action}': 'events' and 'responses' must be lists", action=action)
        for item in events:
            if not isinstance(item, dict) or item.get("event") not in _EVENT_KINDS:
                raise ActionServerFailed(f"action '{action}': {str(item)[:80]!r} is not a Rasa event", action=action)
        if not all(isinstance(item, dict) for item in responses):
            raise ActionServerFailed(f"action '{action}': responses must be objects", action=action)
        return events, responses
