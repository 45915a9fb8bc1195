"""Running an imported Rasa project: one user message in, the bot's Rasa events and responses out.

Over 500 lines on purpose: `Assistant` is Rasa 3.6's message loop (rules, stories, forms, slot mappings, the
action server) in one class, because each step reads and writes the same tracker and must keep Rasa's order."""
from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bot import i18n
from bot.rasa.action_server import ActionServerClient
from bot.rasa.domain import REQUESTED_SLOT
from bot.rasa.errors import ActionRejected, ActionServerFailed
from bot.rasa.project import RasaProject, action_endpoint_of
from bot.rasa.tracker import LISTEN, SESSION_START, Tracker, action_event, event, slot_event
from nlu.duckling import DucklingExtractor

log = logging.getLogger(__name__)

MAX_ACTIONS_PER_MESSAGE = 10  # Rasa's max_number_of_predictions
FALLBACK_INTENT = "nlu_fallback"
TWO_STAGE = "action_two_stage_fallback"
# Rasa's default intents and the default actions RulePolicy predicts for them right after the user said them.
DEFAULT_INTENT_ACTIONS = {"restart": "action_restart", "back": "action_back",
                          "session_start": "action_session_start"}
DEFAULT_INTENTS = frozenset({*DEFAULT_INTENT_ACTIONS, "out_of_scope", FALLBACK_INTENT})
_SHORTCUT = re.compile(r"^/(?P<intent>[^{@\s]+)(?:@(?P<confidence>[0-9.]+))?(?P<entities>\{.*\})?\s*$", re.S)
_PLACEHOLDER = re.compile(r"{([^\n{}]+?)}")


class Parser(Protocol):
    async def parse(self, text: str) -> Any: ...


@dataclass
class ActionContext:
    """What a ShopTalk skill run as a Rasa action sees: the tracker and, inside ShopTalk, the session."""

    tracker: Tracker
    session: Any = None
    conversation_id: int | None = None
    channel: str = "rest"
    extra: dict[str, Any] = field(default_factory=dict)


ShopTalkAction = Callable[[ActionContext], Awaitable[list[dict[str, Any]]]]


def _own(key: str) -> dict[str, Any]:
    """ShopTalk's reply where the project has no response of its own (English, as Rasa's defaults are)."""
    return {"text": i18n.t("en", key)}


def bot_event(message: dict[str, Any], *, utter_action: str | None = None) -> dict[str, Any]:
    data = {k: message.get(k) for k in ("elements", "quick_replies", "buttons", "attachment", "image", "custom")}
    return event("bot", text=message.get("text"), data=data,
                 metadata={"utter_action": utter_action} if utter_action else {})


class Assistant:
    """Rasa's message processor over a project: NLU, slot extraction, rules/memoization, forms, actions."""

    def __init__(self, project: RasaProject, *, parser: Parser | None = None,
                 action_client: ActionServerClient | None = None,
                 shoptalk_actions: dict[str, ShopTalkAction] | None = None, seed: int = 0,
                 endpoints_file: Path | None = None) -> None:
        self.project = project
        self.domain = project.domain
        self.parser = parser
        self.action_client = action_client  # fixed (tests, embedding); else read at run time, see _client()
        self.endpoints_file = endpoints_file
        self._endpoint_seen: tuple[Any, ...] | None = None
        self._endpoint_client: ActionServerClient | None = None
        self.shoptalk_actions = shoptalk_actions or {}
        self.seed = seed
        self._domain_json = self.domain.to_rasa()
        duckling = project.nlu_settings.duckling
        self.duckling = DucklingExtractor(
            url=duckling["url"], dimensions=duckling["dimensions"],
            locale=duckling["locale"] or ("zh_CN" if project.language.startswith("zh") else "en_US"),
            timezone=duckling["timezone"]) if duckling is not None else None
        self._role_cues = _role_cues(project)
        self._vocabulary = _vocabulary(project)

    # ---------------------------------------------------------------- NLU
    async def parse(self, text: str) -> dict[str, Any]:
        """Rasa's parse data for a message; `/intent{"entity": "value"}` skips the NLU as in Rasa."""
        data: dict[str, Any]
        shortcut = _SHORTCUT.match(text.strip())
        if shortcut and (shortcut.group("intent").split("/")[0] in self.domain.intents
                         or shortcut.group("intent") in DEFAULT_INTENTS):
            entities: list[dict[str, Any]] = []
            if shortcut.group("entities"):
                try:
                    decoded = json.loads(shortcut.group("entities"))
                except ValueError:
                    decoded = {}
                for name, value in (decoded.items() if isinstance(decoded, dict) else []):
                    for one in value if isinstance(value, list) else [value]:
                        entities.append({"entity": name, "value": one, "start": None, "end": None,
                                         "confidence": 1.0, "extractor": "RegexMessageHandler"})
            confidence = float(shortcut.group("confidence") or 1.0)
            data = {"text": text, "intent": {"name": shortcut.group("intent"), "confidence": confidence},
                    "intent_ranking": [{"name": shortcut.group("intent"), "confidence": confidence}],
                    "entities": entities}
        elif self.parser is None:
            data = {"text": text, "intent": {"name": FALLBACK_INTENT, "confidence": 0.0}, "intent_ranking": [],
                    "entities": []}
        else:
            result = await self.parser.parse(text)
            data = dict(result.to_rasa() if hasattr(result, "to_rasa") else result)
            data = self._with_fallback(data)
            data["entities"] = self._with_roles(text, data.get("entities") or [])
        if self.duckling is not None and not shortcut:
            found = await self.duckling.extract(text)
            dims = {e["entity"] for e in found} | set(self.duckling.dimensions or [])
            # Duckling's dimensions come from Duckling, as in Rasa (ShopTalk's own number etc. never shadow them)
            data["entities"] = [e for e in data.get("entities") or [] if e.get("entity") not in dims] + found
        return self._with_retrieval(data)

    def _with_fallback(self, data: dict[str, Any]) -> dict[str, Any]:
        settings = self.project.nlu_settings
        ranking = [r for r in data.get("intent_ranking") or [] if r.get("name") != FALLBACK_INTENT]
        # Retrieval sub-intents compete as their intent (Rasa ranks the intent; the selector picks the answer).
        merged: dict[str, float] = {}
        for item in ranking:
            base = str(item["name"]).split("/")[0]
            merged[base] = merged.get(base, 0.0) + float(item["confidence"])
        ordered = sorted(merged.items(), key=lambda kv: -kv[1])
        intent = data.get("intent") or {}
        top = ordered[0][1] if ordered else float(intent.get("confidence") or 0.0)
        second = ordered[1][1] if len(ordered) > 1 else 0.0
        if settings.fallback_threshold is not None and intent.get("name") != FALLBACK_INTENT and (
                top < settings.fallback_threshold
                or (settings.ambiguity_threshold is not None and top - second < settings.ambiguity_threshold)):
            data["intent"] = {"name": FALLBACK_INTENT, "confidence": settings.fallback_threshold}
            data["intent_ranking"] = [data["intent"], *ranking]
        return data

    def _with_roles(self, text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Only the domain's entities, valued as the project's data values them, with roles and groups the way
        the training data used them (by the word before the entity)."""
        cues = self._role_cues
        vocabulary = self._vocabulary
        known = set(self.domain.entities)
        out = []
        for entity in entities:
            entity = dict(entity)
            if entity.get("entity") not in known:
                continue  # ShopTalk's built-in extractors know entities this assistant never asked for
            start = entity.get("start")
            end = entity.get("end")
            if isinstance(start, int) and isinstance(end, int) and not str(entity.get("extractor") or "").startswith(
                    "Duckling"):
                # DIET's value is the text as written; EntitySynonymMapper maps synonyms (case-insensitively).
                surface = text[start:end]
                values = vocabulary.get(str(entity["entity"]), {})
                entity["value"] = values.get(surface.lower(), self.project.nlu.synonyms.get(surface.lower(),
                                                                                            surface))
            if isinstance(start, int) and entity.get("entity") in cues:
                before = text[:start].lower().split()
                cue = cues[str(entity["entity"])].get(before[-1] if before else "")
                if cue is not None:
                    role, group = cue
                    if role:
                        entity["role"] = role
                    if group:
                        entity["group"] = group
            out.append(entity)
        return out

    def _with_retrieval(self, data: dict[str, Any]) -> dict[str, Any]:
        name = str((data.get("intent") or {}).get("name") or "")
        if "/" in name:
            base = name.split("/")[0]
            confidence = float(data["intent"].get("confidence") or 1.0)
            data["intent"] = {"name": base, "confidence": confidence}
            data["response_selector"] = {
                "all_retrieval_intents": sorted(self.project.retrieval_intents),
                base: {"response": {"intent_response_key": name, "utter_action": f"utter_{name}",
                                    "confidence": confidence,
                                    "responses": self.domain.responses.get(f"utter_{name}", [])},
                       "ranking": [{"intent_response_key": name, "confidence": confidence}]},
            }
            seen: dict[str, float] = {}
            for item in data.get("intent_ranking") or []:
                key = str(item["name"]).split("/")[0]
                seen[key] = seen.get(key, 0.0) + float(item["confidence"])
            data["intent_ranking"] = [{"name": k, "confidence": round(v, 6)}
                                      for k, v in sorted(seen.items(), key=lambda kv: -kv[1])]
        return data

    # ---------------------------------------------------------------- a message
    async def handle_message(self, tracker: Tracker, text: str, *, channel: str = "rest",
                             message_id: str | None = None, metadata: dict[str, Any] | None = None,
                             context: ActionContext | None = None) -> list[dict[str, Any]]:
        """Append the user's message and the bot's actions to the tracker; returns the bot's messages."""
        started = len(tracker.events)
        context = context or ActionContext(tracker=tracker, channel=channel)
        context.tracker = tracker
        await self._start_session_if_due(tracker, context)
        parse_data = await self.parse(text)
        tracker.events.append(event("user", text=text, parse_data=parse_data, input_channel=channel,
                                    message_id=message_id, metadata=metadata or {}))
        await self._extract_slots(tracker, context)
        await self.predict_and_run(tracker, context)
        return [bot_message(e) for e in tracker.events[started:] if e.get("event") == "bot"]

    async def _start_session_if_due(self, tracker: Tracker, context: ActionContext) -> None:
        if not tracker.events:
            await self.run_action(SESSION_START, tracker, context)
            return
        expiry = self.domain.session_expiration_minutes
        last = next((e for e in reversed(tracker.events) if e.get("event") == "user"), None)
        if expiry > 0 and last is not None and time.time() - float(last.get("timestamp") or 0) > expiry * 60:
            await self.run_action(SESSION_START, tracker, context)

    async def predict_and_run(self, tracker: Tracker, context: ActionContext) -> None:
        for _ in range(MAX_ACTIONS_PER_MESSAGE):
            action, policy = self.predict(tracker)
            if action == LISTEN and tracker.latest_action_name == LISTEN:
                # Nothing learnt says what follows this message: Rasa's RulePolicy then predicts its core
                # fallback (no silent turn).
                action, policy = self.project.policies.core_fallback_action, "RulePolicy"
            if action == LISTEN:
                tracker.events.append(action_event(LISTEN, policy=policy))
                return
            if not await self.run_action(action, tracker, context, policy=policy):
                last = tracker.events[-1] if tracker.events else {}
                if not (last.get("event") == "action" and last.get("name") == LISTEN):
                    tracker.events.append(action_event(LISTEN, policy=policy))
                return
        tracker.events.append(action_event(LISTEN, policy="max_predictions"))

    def predict(self, tracker: Tracker) -> tuple[str, str]:
        """The next action in RulePolicy's order: a follow-up, a default intent's action (/restart, /back,
        /session_start), the active loop's happy path, a rule (a general rule's action_listen inside a loop
        returns to the loop: the form re-asks after a digression), a remembered story, the fallback."""
        followup = tracker.followup_action
        if followup:
            return followup, "FollowupAction"
        prev = tracker.latest_action_name
        loop = tracker.active_loop
        if prev == LISTEN and tracker.latest_intent in DEFAULT_INTENT_ACTIONS:
            return DEFAULT_INTENT_ACTIONS[str(tracker.latest_intent)], "RulePolicy"
        rejected = tracker.loop_rejected
        if loop and loop != TWO_STAGE and not rejected:
            return (LISTEN if prev == loop else loop), "RulePolicy"
        if loop == TWO_STAGE and prev == LISTEN:
            return TWO_STAGE, "RulePolicy"
        states = tracker.past_states()
        rule = self.project.policies.rule_action(states)
        if rule is not None and rejected and rule[0] == loop:
            rule = None  # the form just refused this message: running it again would refuse again
        if rule is not None:
            action, snippet = rule
            if loop and loop != TWO_STAGE and action == LISTEN and prev not in (LISTEN, loop) and \
                    not snippet.states[-1].get("active_loop"):
                return loop, "RulePolicy"
            return action, "RulePolicy"
        remembered = self.project.policies.memo_action(states)
        if remembered is not None and not (rejected and remembered == loop):
            return remembered, "MemoizationPolicy"
        if prev == LISTEN:
            return self.project.policies.core_fallback_action, "RulePolicy"
        if loop and loop != TWO_STAGE and prev != loop:
            return loop, "RulePolicy"  # back to the form after whatever interrupted it
        return LISTEN, "RulePolicy"

    # ---------------------------------------------------------------- slots
    async def _extract_slots(self, tracker: Tracker, context: ActionContext) -> None:
        """Rasa's action_extract_slots: fill slots from their mappings after each user message."""
        loop = tracker.active_loop
        form = self.domain.forms.get(loop or "")
        requested = tracker.get_slot(REQUESTED_SLOT)
        intent = tracker.latest_intent
        entities = tracker.latest_entities()
        text = str(tracker.latest_message.get("text") or "")
        custom_actions: list[str] = []
        for slot in self.domain.slots.values():
            in_form = form is not None and slot.name in form.required_slots
            if in_form and form is not None and intent in form.ignored_intents:
                continue
            for mapping in slot.mappings:
                if not _conditions_hold(mapping, loop, requested):
                    continue
                if not _intent_allowed(mapping, intent):
                    continue
                kind = mapping["type"]
                value: Any = None
                found = False
                if kind == "from_entity":
                    values = [e.get("value") for e in entities if e.get("entity") == mapping["entity"]
                              and (mapping.get("role") is None or e.get("role") == mapping.get("role"))
                              and (mapping.get("group") is None or e.get("group") == mapping.get("group"))]
                    if values:
                        value, found = (values if slot.type == "list" else values[0]), True
                elif kind in ("from_text", "from_intent"):
                    if in_form and requested != slot.name:
                        continue
                    if kind == "from_text" and not text.startswith("/"):
                        value, found = text, True
                    elif kind == "from_intent":
                        value, found = mapping.get("value"), True
                elif kind == "custom" and mapping.get("action") and mapping["action"] not in custom_actions:
                    custom_actions.append(str(mapping["action"]))
                if found:
                    if tracker.get_slot(slot.name) != value:
                        tracker.events.append(slot_event(slot.name, value))
                    break
        for action in custom_actions:
            events, responses = await self._call_custom(action, tracker, context)
            self._apply(tracker, events, responses, action)

    # ---------------------------------------------------------------- actions
    async def run_action(self, name: str, tracker: Tracker, context: ActionContext, *,
                         policy: str | None = None) -> bool:
        """Run one action; False when the bot should now wait for the user."""
        if name == SESSION_START:
            initial = {name: slot.initial_value for name, slot in self.domain.slots.items()}
            carried = {k: v for k, v in tracker.slots.items() if v != initial.get(k)} \
                if self.domain.carry_over_slots else {}
            tracker.events.append(action_event(SESSION_START, policy=policy))
            tracker.events.append(event("session_started"))
            for slot_name, value in carried.items():
                if self.domain.slots.get(slot_name) is not None and slot_name != REQUESTED_SLOT:
                    tracker.events.append(slot_event(slot_name, value))
            tracker.events.append(action_event(LISTEN, policy=policy))
            return False
        if name in self.domain.forms:
            return await self._run_form(name, tracker, context, policy=policy)
        if name == TWO_STAGE:
            return self._two_stage_fallback(tracker, policy)
        tracker.events.append(action_event(name, policy=policy))
        if name.startswith("utter_"):
            message = self.render(name, tracker, channel=context.channel)
            if message is not None:
                tracker.events.append(bot_event(message, utter_action=name))
            return True
        if name == "action_restart":
            tracker.events.append(event("restart"))
            message = self.render("utter_restart", tracker, channel=context.channel)
            if message is not None:
                tracker.events.append(bot_event(message, utter_action="utter_restart"))
            await self.run_action(SESSION_START, tracker, context, policy=policy)
            return False
        if name == "action_default_fallback":
            message = self.render("utter_default", tracker, channel=context.channel) or _own("rasa.fallback")
            tracker.events.append(bot_event(message, utter_action="utter_default"))
            tracker.events.append(event("rewind"))
            return False
        if name == "action_deactivate_loop":
            tracker.events.extend([event("active_loop", name=None), slot_event(REQUESTED_SLOT, None)])
            return True
        if name == "action_back":
            message = self.render("utter_back", tracker, channel=context.channel)
            if message is not None:
                tracker.events.append(bot_event(message, utter_action="utter_back"))
            tracker.events.extend([event("rewind"), event("rewind")])
            return False
        if name in ("action_unlikely_intent", "action_extract_slots", "action_revert_fallback_events"):
            return True
        if name in ("action_default_ask_affirmation", "action_default_ask_rephrase"):
            self._ask_two_stage(tracker, name)
            return True
        events, responses = await self._call_custom(name, tracker, context)
        self._apply(tracker, events, responses, name)
        return not any(e.get("event") in ("restart", "session_started", "pause") for e in events)

    def _client(self) -> ActionServerClient | None:
        """The action server client as endpoints.yml says now: the project folder's endpoints.yml when the
        project was imported from a folder (edits take effect at the next action, no re-import), else the
        imported copy; `${VAR}` is read from the environment each time, as Rasa reads it at start."""
        if self.action_client is not None:
            return self.action_client
        text = self.project.files.get("endpoints.yml", "")
        mtime: float | None = None
        if self.endpoints_file is not None:
            try:
                mtime = self.endpoints_file.stat().st_mtime
                if self._endpoint_seen is None or self._endpoint_seen[0] != mtime:
                    text = self.endpoints_file.read_text(encoding="utf-8")
                elif self._endpoint_seen is not None:
                    text = str(self._endpoint_seen[1])
            except OSError:
                mtime = None
        endpoint = action_endpoint_of(text)
        if (mtime, text, endpoint) != self._endpoint_seen:
            self._endpoint_seen = (mtime, text, endpoint)
            self._endpoint_client = ActionServerClient(endpoint[0], timeout=endpoint[1]) if endpoint else None
        return self._endpoint_client

    async def _call_custom(self, name: str, tracker: Tracker,
                           context: ActionContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """A ShopTalk skill or the project's action server; a failure becomes a polite reply."""
        try:
            if name in self.shoptalk_actions:
                return await self.shoptalk_actions[name](context), []
            client = self._client()
            if client is None:
                raise ActionServerFailed(f"action '{name}' needs an action server and endpoints.yml has none")
            return await client.run(action=name, sender_id=tracker.sender_id, tracker=tracker.to_rasa(),
                                                domain=self._domain_json)
        except ActionRejected:
            raise
        except ActionServerFailed as error:
            log.warning("rasa custom action failed: %s", error.detail)
            message = self.render("utter_action_failed", tracker, channel=context.channel) or \
                _own("rasa.action_failed")
            return [bot_event(message, utter_action="utter_action_failed")], []

    def _apply(self, tracker: Tracker, events: list[dict[str, Any]], responses: list[dict[str, Any]],
               action: str) -> None:
        for response in responses:
            message = self._response_message(response, tracker)
            if message is not None:
                tracker.events.append(bot_event(message, utter_action=response.get("response")
                                                or response.get("template")))
        for item in events:
            kind = item.get("event")
            if kind == "slot" and item.get("name") not in self.domain.slots:
                log.warning("action %s set unknown slot %s; ignored", action, item.get("name"))
                continue
            if kind == "reminder":
                log.info("action %s scheduled a reminder; reminders are not delivered by ShopTalk yet", action)
            stamped = {**item}
            stamped.setdefault("timestamp", time.time())
            if kind == "form":
                stamped["event"] = "active_loop"
            tracker.events.append(stamped)

    def _response_message(self, response: dict[str, Any], tracker: Tracker) -> dict[str, Any] | None:
        name = response.get("response") or response.get("template")
        if name:
            extra = {k: v for k, v in response.items() if k not in ("response", "template")}
            kwargs = extra.pop("kwargs", None) or {}
            extra = {**extra, **kwargs}
            return self.render(str(name), tracker, extra=extra)
        if any(response.get(k) for k in ("text", "image", "buttons", "custom", "attachment", "elements")):
            return {k: v for k, v in response.items() if v not in (None, [], {})}
        return None

    # ---------------------------------------------------------------- forms
    async def _run_form(self, name: str, tracker: Tracker, context: ActionContext, *, policy: str | None) -> bool:
        form = self.domain.forms[name]
        activating = tracker.active_loop != name
        after_user = tracker.latest_action_name == LISTEN
        candidates: dict[str, Any] = {}
        for item in tracker.events_since_last_user() if after_user else []:
            if item.get("event") == "slot" and item.get("name") in form.required_slots:
                candidates[str(item["name"])] = item.get("value")
        if activating:
            intent = tracker.latest_intent
            for slot_name in form.required_slots:
                for mapping in self.domain.slots[slot_name].mappings:
                    if mapping["type"] == "from_trigger_intent" and _intent_allowed(mapping, intent) and \
                            _conditions_hold(mapping, name, None):
                        candidates[slot_name] = mapping.get("value")
                        break
        elif after_user:
            requested = tracker.get_slot(REQUESTED_SLOT)
            if tracker.latest_intent in form.ignored_intents or (requested not in candidates and not candidates):
                tracker.events.append(event("action_execution_rejected", name=name, policy=policy))
                return True
        tracker.events.append(action_event(name, policy=policy))
        if activating:
            tracker.events.append(event("active_loop", name=name))
        validator = f"validate_{name}"
        if candidates and validator in self.domain.actions:
            probe = Tracker(tracker.sender_id, self.domain,
                            [*tracker.events, *(slot_event(k, v) for k, v in candidates.items())])
            try:
                events, responses = await self._call_custom(validator, probe, context)
            except ActionRejected:
                events, responses = [slot_event(k, v) for k, v in candidates.items()], []
            self._apply(tracker, events, responses, validator)
            if any(e.get("event") == "bot" and (e.get("metadata") or {}).get("utter_action") == "utter_action_failed"
                   for e in events):
                return False
        else:
            for slot_name, value in candidates.items():
                if tracker.get_slot(slot_name) != value:
                    tracker.events.append(slot_event(slot_name, value))
        if tracker.active_loop != name:
            return True  # the validation action ended the form itself
        missing = next((s for s in form.required_slots if tracker.get_slot(s) is None), None)
        if missing is None:
            tracker.events.extend([event("active_loop", name=None), slot_event(REQUESTED_SLOT, None)])
            return True
        tracker.events.append(slot_event(REQUESTED_SLOT, missing))
        for ask in (f"utter_ask_{name}_{missing}", f"utter_ask_{missing}"):
            if ask in self.domain.responses:
                message = self.render(ask, tracker, channel=context.channel)
                if message is not None:
                    tracker.events.append(bot_event(message, utter_action=ask))
                return True
        for ask in (f"action_ask_{name}_{missing}", f"action_ask_{missing}"):
            if ask in self.domain.actions:
                events, responses = await self._call_custom(ask, tracker, context)
                self._apply(tracker, events, responses, ask)
                return True
        return True

    # ---------------------------------------------------------------- two-stage fallback
    def _two_stage_fallback(self, tracker: Tracker, policy: str | None) -> bool:
        intent = tracker.latest_intent
        active = tracker.active_loop == TWO_STAGE
        tracker.events.append(action_event(TWO_STAGE, policy=policy))
        if not active:
            tracker.events.append(event("active_loop", name=TWO_STAGE))
            self._ask_two_stage(tracker, "action_default_ask_affirmation")
            return False
        if intent in (FALLBACK_INTENT, "out_of_scope", "deny"):
            asked = sum(1 for e in tracker.events_since_last_user() if e.get("event") == "bot")
            rephrased_before = any((e.get("metadata") or {}).get("utter_action") == "utter_ask_rephrase"
                                   for e in tracker.events[-30:] if e.get("event") == "bot")
            if rephrased_before and not asked:
                tracker.events.append(event("active_loop", name=None))
                message = self.render("utter_default", tracker) or _own("rasa.fallback")
                tracker.events.append(bot_event(message, utter_action="utter_default"))
                return False
            self._ask_two_stage(tracker, "action_default_ask_rephrase")
            return False
        # Confirmed or rephrased into something understood: forget the fallback exchange, as Rasa does, and
        # carry on as if the shopper had said this in the first place.
        latest = tracker.latest_message
        tracker.events.extend([event("rewind"), event("rewind"), event("active_loop", name=None),
                               action_event(LISTEN, policy=policy), {**latest, "timestamp": time.time()}])
        return True

    def _ask_two_stage(self, tracker: Tracker, name: str) -> None:
        if name == "action_default_ask_rephrase":
            message = self.render("utter_ask_rephrase", tracker) or _own("rasa.ask_rephrase")
            tracker.events.append(bot_event(message, utter_action="utter_ask_rephrase"))
            return
        ranking = ((tracker.latest_message.get("parse_data") or {}).get("intent_ranking") or [])
        guess = next((str(r["name"]) for r in ranking if r.get("name") not in (FALLBACK_INTENT, "out_of_scope")),
                     None)
        message = {"text": f"Did you mean '{guess}'?" if guess else "Did you mean something else?",
                   "buttons": ([{"title": "Yes", "payload": f"/{guess}"}] if guess else [])
                   + [{"title": "No", "payload": "/out_of_scope"}]}
        tracker.events.append(bot_event(message, utter_action="utter_ask_affirmation"))

    # ---------------------------------------------------------------- responses
    def render(self, name: str, tracker: Tracker, *, channel: str | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """A response variation chosen as Rasa does (conditions, channel), with {slot} filled in."""
        if name in self.domain.actions and name not in self.domain.responses and "/" not in name:
            return None
        if "/" not in name and name.removeprefix("utter_") in self.project.retrieval_intents:
            selector = (tracker.latest_message.get("parse_data") or {}).get("response_selector") or {}
            key = ((selector.get(name.removeprefix("utter_")) or {}).get("response") or {}).get("intent_response_key")
            if not key:
                return None
            name = f"utter_{key}"
        variations = self.domain.responses.get(name)
        if not variations:
            return None
        slots = tracker.slots
        channel = channel or str(tracker.latest_message.get("input_channel") or "")
        usable = [v for v in variations if not v.get("channel") or v.get("channel") == channel]
        conditional = [v for v in usable if v.get("condition") and _condition_matches(v["condition"], slots)]
        plain = [v for v in usable if not v.get("condition")]
        pool = conditional or plain
        if not pool:
            return None
        preferred = [v for v in pool if v.get("channel") == channel] or pool
        rng = random.Random(f"{self.seed}:{tracker.sender_id}:{len(tracker.events)}")
        chosen = dict(rng.choice(preferred))
        values = dict(slots.items())
        values.update(extra or {})
        message = {k: _fill(v, values) for k, v in chosen.items() if k not in ("condition", "channel")}
        # A shopper writing in a language the project has no responses in is told so once (in their language
        # when ShopTalk has a catalog for it), then answered in the project's language.
        notice = i18n.other_language_notice((tracker.latest_message.get("parse_data") or {}).get("language"),
                                            self.project.language)
        if notice and not any(e.get("event") == "bot" and notice in str(e.get("text") or "") for e in tracker.events):
            message["text"] = f"{notice}\n\n{message['text']}" if message.get("text") else notice
        return message


def bot_message(bot: dict[str, Any]) -> dict[str, Any]:
    """A BotUttered event as Rasa's REST channel shows it."""
    out: dict[str, Any] = {}
    if bot.get("text"):
        out["text"] = bot["text"]
    for key, value in (bot.get("data") or {}).items():
        if value:
            out[key] = value
    return out


def _fill_text(template: str, values: dict[str, Any]) -> str:
    """Rasa's interpolation: `{name}` takes the slot's (or the action's kwarg's) value as Python prints it
    (an unset slot prints None); a name that is neither leaves the whole text unfilled; `{{x}}` gives `{x}`."""
    try:
        text = _PLACEHOLDER.sub(lambda m: "{0[" + m.group(1) + "]}", template).format(values)
        if "0[" in text:
            return template.format({})
        return text
    except (KeyError, IndexError, ValueError):
        log.info("response placeholder without a slot or value; the response is sent unfilled")
        return template


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return _fill_text(value, values)
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    return value


def _condition_matches(conditions: Any, slots: dict[str, Any]) -> bool:
    for condition in conditions if isinstance(conditions, list) else []:
        if not isinstance(condition, dict) or condition.get("type", "slot") != "slot":
            return False
        if slots.get(str(condition.get("name"))) != condition.get("value"):
            return False
    return True


def _conditions_hold(mapping: dict[str, Any], loop: str | None, requested: Any) -> bool:
    conditions = mapping.get("conditions")
    if not conditions:
        return True
    for condition in conditions:
        if not isinstance(condition, dict):
            continue
        if condition.get("active_loop") != loop:
            continue
        if "requested_slot" in condition and condition.get("requested_slot") != requested:
            continue
        return True
    return False


def _intent_allowed(mapping: dict[str, Any], intent: str | None) -> bool:
    wanted = mapping.get("intent")
    unwanted = mapping.get("not_intent")
    if wanted is not None and intent not in (wanted if isinstance(wanted, list) else [wanted]):
        return False
    return not (unwanted is not None and intent in (unwanted if isinstance(unwanted, list) else [unwanted]))




def _vocabulary(project: RasaProject) -> dict[str, dict[str, str]]:
    """Surface form -> value of every annotation whose value differs from its text (Rasa makes those synonyms)."""
    vocabulary: dict[str, dict[str, str]] = {}
    for example in project.nlu.examples:
        for annotation in example.entities:
            if str(annotation.value) != annotation.text:
                vocabulary.setdefault(annotation.entity, {})[annotation.text.lower()] = annotation.value
    return vocabulary


def _role_cues(project: RasaProject) -> dict[str, dict[str, tuple[str | None, str | None]]]:
    cues: dict[str, dict[str, tuple[str | None, str | None]]] = {}
    for example in project.nlu.examples:
        for annotation in example.entities:
            if annotation.role or annotation.group:
                before = example.text[:annotation.start].lower().split()
                cues.setdefault(annotation.entity, {})[before[-1] if before else ""] = (annotation.role,
                                                                                       annotation.group)
    return cues
