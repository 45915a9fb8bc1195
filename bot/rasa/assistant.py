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
from bot.rasa.domain import REQUESTED_SLOT, Form
from bot.rasa.errors import ActionRejected, ActionServerFailed
from bot.rasa.policies import DEFAULT_INTENT_ACTIONS
from bot.rasa.project import RasaProject, action_endpoint_of
from bot.rasa.roles import RoleModel
from bot.rasa.tracker import LISTEN, SESSION_START, Tracker, action_event, event, slot_event
from nlu.duckling import DucklingExtractor

log = logging.getLogger(__name__)

MAX_ACTIONS_PER_MESSAGE = 10  # Rasa's max_number_of_predictions
FALLBACK_INTENT = "nlu_fallback"
TWO_STAGE = "action_two_stage_fallback"
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
        self._unique_mappings: dict[str, set[str]] = {}
        self.seed = seed
        self._domain_json = self.domain.to_rasa()
        duckling = project.nlu_settings.duckling
        self.duckling = DucklingExtractor(
            url=duckling["url"], dimensions=duckling["dimensions"],
            locale=duckling["locale"] or ("zh_CN" if project.language.startswith("zh") else "en_US"),
            timezone=duckling["timezone"]) if duckling is not None else None
        self._roles = RoleModel(project.nlu.examples)
        self._vocabulary = _vocabulary(project)
        self._annotated = _annotated(project)

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
            # Duckling's dimensions come from Duckling, as in Rasa (ShopTalk's own number etc. never shadow them);
            # what the project annotated with such a name (`[balance]{"entity": "amount-of-money"}`) DIET learns
            # and reports beside Duckling's
            data["entities"] = [e for e in data.get("entities") or [] if e.get("entity") not in dims
                                or self._is_annotated(text, e)] + found
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
        """Only the domain's entities, valued as the project's data values them, with roles and groups as DIET
        reports them (learnt from the annotations: `roles.RoleModel`)."""
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
            out.append(entity)
        return self._roles.label(text, out) if self._roles else out

    def _is_annotated(self, text: str, entity: dict[str, Any]) -> bool:
        start, end = entity.get("start"), entity.get("end")
        return isinstance(start, int) and isinstance(end, int) and \
            text[start:end].lower() in self._annotated.get(str(entity.get("entity")), set())

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
            action, policy, hide = self.predict_hidden(tracker)
            if action == LISTEN and tracker.latest_action_name == LISTEN:
                # Nothing learnt says what follows this message: Rasa's RulePolicy then predicts its core
                # fallback (no silent turn).
                action, policy, hide = self.project.policies.core_fallback_action, "RulePolicy", False
            if action == LISTEN:
                tracker.events.append(action_event(LISTEN, policy=policy, hide_rule_turn=hide))
                return
            if not await self.run_action(action, tracker, context, policy=policy, hide_rule_turn=hide):
                last = tracker.events[-1] if tracker.events else {}
                if not (last.get("event") == "action" and last.get("name") == LISTEN):
                    tracker.events.append(action_event(LISTEN, policy=policy, hide_rule_turn=hide))
                return
        tracker.events.append(action_event(LISTEN, policy="max_predictions"))

    def predict(self, tracker: Tracker) -> tuple[str, str]:
        action, policy, _ = self.predict_hidden(tracker)
        return action, policy

    def predict_hidden(self, tracker: Tracker) -> tuple[str, str, bool]:
        """The next action in RulePolicy's order: a follow-up, a default intent's action (/restart, /back,
        /session_start), the active loop's happy path, a rule (a general rule's action_listen inside a loop
        returns to the loop: the form re-asks after a digression), a remembered story, the fallback. The flag is
        Rasa's `hide_rule_turn`: RulePolicy predicted it from a rule, default or loop path no story has, so the
        ML policies will not see this turn (`Tracker.ml_states`)."""
        policies = self.project.policies
        followup = tracker.followup_action
        if followup:
            return followup, "FollowupAction", False
        prev = tracker.latest_action_name
        loop = tracker.active_loop
        if prev == LISTEN and tracker.latest_intent in DEFAULT_INTENT_ACTIONS:
            intent = str(tracker.latest_intent)
            return DEFAULT_INTENT_ACTIONS[intent], "RulePolicy", intent not in policies.used_default_intents
        rejected = tracker.loop_rejected
        if loop and loop != TWO_STAGE and not rejected:
            if prev == loop:
                return LISTEN, "RulePolicy", loop not in policies.used_loop_listens
            return loop, "RulePolicy", loop not in policies.used_loops
        if loop == TWO_STAGE and prev == LISTEN:
            return TWO_STAGE, "RulePolicy", False
        states = tracker.past_states()
        rule = policies.rule_action(states)
        if rule is not None and rejected and rule[0] == loop:
            rule = None  # the form just refused this message: running it again would refuse again
        if rule is not None:
            action, snippet = rule
            if loop and loop != TWO_STAGE and action == LISTEN and prev not in (LISTEN, loop) and \
                    not snippet.states[-1].get("active_loop"):
                return loop, "RulePolicy", policies.hides(snippet)
            return action, "RulePolicy", policies.hides(snippet)
        ml_states = tracker.ml_states(policies.rule_only_slots, policies.rule_only_loops)
        remembered = None
        if policies.augmented:
            # Rasa's AugmentedMemoizationPolicy: the whole history first, then the conversation cut at each action
            remembered = policies.recall_truncated([ml_states, *(
                cut.ml_states(policies.rule_only_slots, policies.rule_only_loops)
                for cut in tracker.truncations(policies.max_history))])
        if remembered is None:
            remembered = policies.memo_action(ml_states)
        if remembered is not None and not (rejected and remembered == loop):
            return remembered, "MemoizationPolicy", False
        # TEDPolicy's stand-in beats RulePolicy's core fallback only above core_fallback_threshold; the loop that
        # just refused the message is not predicted again (Rasa's ensemble zeroes the rejected action)
        # a loop only rules run is invisible to the ML policies (Rasa's rule-only loops): TED sees no form refusing
        seen_refusing = bool(rejected and loop and loop not in policies.rule_only_loops)
        if prev == LISTEN:
            learned = policies.learned_action(ml_states, excluded=(loop,) if rejected and loop else (),
                                              rejected=seen_refusing)
            if learned is not None:
                return learned, "TEDPolicy", False
            return policies.core_fallback_action, "RulePolicy", False
        if loop and loop != TWO_STAGE and seen_refusing and tracker.latest_action_policy == "TEDPolicy":
            # the form that refused the message stays refused until it runs again (Rasa: no happy path then):
            # after what the stand-in answered there, the stand-in says what follows
            learned = policies.learned_action(ml_states)
            if learned is not None:
                return learned, "TEDPolicy", False
        if loop and loop != TWO_STAGE and prev != loop:
            return loop, "RulePolicy", False  # back to the form after whatever interrupted it
        return LISTEN, "RulePolicy", False

    # ---------------------------------------------------------------- slots
    async def _extract_slots(self, tracker: Tracker, context: ActionContext) -> None:
        """Rasa 3.6's action_extract_slots: after each user message, each slot's first mapping that yields a value
        sets it (a SlotSet even when the value is unchanged: a form counts it as extracted). Mappings apply
        whatever slot is requested unless their `conditions` say otherwise; inside an active form a `from_entity`
        mapping of another of its slots applies only when no other slot of the form maps the same entity;
        `from_trigger_intent` applies while a form (of its conditions) is active; an entity fills a mapping only
        with the same role and group (none = none); a non-list slot takes the last value."""
        loop = tracker.active_loop
        form = self.domain.forms.get(loop or "")
        requested = tracker.get_slot(REQUESTED_SLOT)
        rejected = tracker.loop_rejected
        intent = tracker.latest_intent
        entities = tracker.latest_entities()
        text = str(tracker.latest_message.get("text") or "")
        custom_actions: list[str] = []
        for slot in self.domain.slots.values():
            if slot.name == REQUESTED_SLOT:
                continue
            for mapping in slot.mappings:
                kind = mapping["type"]
                ignored = _loop_ignored_intents(mapping, form) if form is not None else []
                if not _intent_allowed(mapping, intent, also_unwanted=ignored):
                    continue
                if kind != "from_trigger_intent" and mapping.get("conditions") and (
                        (rejected and requested == slot.name) or not _conditions_hold(mapping, loop, requested)):
                    continue
                if kind == "from_entity" and form is not None and requested != slot.name and \
                        slot.name in form.required_slots and not self._unique_entity_mapping(form, mapping):
                    continue
                values: list[Any] = []
                if kind == "from_entity":
                    values = [e.get("value") for e in entities if e.get("entity") == mapping.get("entity")
                              and e.get("role") == mapping.get("role") and e.get("group") == mapping.get("group")]
                elif kind == "from_intent":
                    values = [mapping.get("value")]
                elif kind == "from_trigger_intent":
                    loops = [c.get("active_loop") for c in mapping.get("conditions") or [] if isinstance(c, dict)]
                    if loop is not None and (not loops or loop in loops):
                        values = [mapping.get("value")]
                elif kind == "from_text":
                    values = [text]
                elif kind == "custom" and mapping.get("action") and mapping["action"] not in custom_actions:
                    custom_actions.append(str(mapping["action"]))
                if values:
                    value: Any = values if slot.type == "list" else values[-1]
                    if value is not None or tracker.get_slot(slot.name) is not None:
                        tracker.events.append(slot_event(slot.name, value))
                        break
        for action in custom_actions:
            events, responses = await self._call_custom(action, tracker, context)
            self._apply(tracker, events, responses, action)

    def _unique_entity_mapping(self, form: Form, mapping: dict[str, Any]) -> bool:
        """Rasa's FormAction.entity_mapping_is_unique: no other mapping of the form's slots is the same
        `from_entity` mapping (so the entity can only mean this slot)."""
        if form.name not in self._unique_mappings:
            seen: dict[str, int] = {}
            for slot_name in form.required_slots:
                slot = self.domain.slots.get(slot_name)
                for other in slot.mappings if slot is not None else []:
                    if other.get("type") == "from_entity":
                        key = json.dumps(other, sort_keys=True, default=str)
                        seen[key] = seen.get(key, 0) + 1
            self._unique_mappings[form.name] = {key for key, count in seen.items() if count == 1}
        return json.dumps(mapping, sort_keys=True, default=str) in self._unique_mappings[form.name]

    # ---------------------------------------------------------------- actions
    async def run_action(self, name: str, tracker: Tracker, context: ActionContext, *,
                         policy: str | None = None, hide_rule_turn: bool = False) -> bool:
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
            return await self._run_form(name, tracker, context, policy=policy, hide_rule_turn=hide_rule_turn)
        if name == TWO_STAGE:
            return self._two_stage_fallback(tracker, policy)
        tracker.events.append(action_event(name, policy=policy, hide_rule_turn=hide_rule_turn))
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
    async def _run_form(self, name: str, tracker: Tracker, context: ActionContext, *, policy: str | None,
                        hide_rule_turn: bool = False) -> bool:
        form = self.domain.forms[name]
        activating = tracker.active_loop != name
        after_user = tracker.latest_action_name == LISTEN
        candidates: dict[str, Any] = {}
        requested = tracker.get_slot(REQUESTED_SLOT) if not activating else None
        # Rasa's _get_slot_extractions: the form's required slots plus the slot it asked for (a validation
        # action may ask for one the form does not list)
        wanted = {*form.required_slots, *([str(requested)] if requested else [])}
        for item in tracker.events_since_last_user() if after_user else []:
            if item.get("event") == "slot" and item.get("name") in wanted:
                candidates[str(item["name"])] = item.get("value")
        if activating:
            intent = tracker.latest_intent
            for slot_name in form.required_slots:
                for mapping in self.domain.slots[slot_name].mappings:
                    if mapping["type"] == "from_trigger_intent" and _intent_allowed(mapping, intent) and \
                            _conditions_hold(mapping, name, None):
                        candidates[slot_name] = mapping.get("value")
                        break
        validator = f"validate_{name}"
        has_validator = validator in self.domain.actions
        if after_user and not activating:
            if tracker.latest_intent in form.ignored_intents or (not has_validator and not candidates):
                tracker.events.append(event("action_execution_rejected", name=name, policy=policy))
                return True
        start = len(tracker.events)
        tracker.events.append(action_event(name, policy=policy, hide_rule_turn=hide_rule_turn))
        if activating:
            tracker.events.append(event("active_loop", name=name))
            # Rasa 3.6's FormAction.activate: action_extract_slots runs again, now with this form active (not
            # rejected; requested_slot still the one asked before, e.g. by the form switched from), and every
            # required slot then set is validated as prefilled
            await self._extract_slots(tracker, context)
            for slot_name in form.required_slots:
                value = tracker.get_slot(slot_name)
                if value is not None and slot_name not in candidates:
                    candidates[slot_name] = value
        validation: list[dict[str, Any]] = []
        if has_validator:
            # Rasa 3.6's FormAction calls validate_<form> on every run, with nothing to validate too (at activation,
            # and back in the form after a digression): its own logic (slots it sets, requested_slot) counts
            probe = Tracker(tracker.sender_id, self.domain,
                            [*tracker.events, *(slot_event(k, v) for k, v in candidates.items())])
            try:
                events, responses = await self._call_custom(validator, probe, context)
            except ActionRejected:
                events, responses = [slot_event(k, v) for k, v in candidates.items()], []
            failed = any(e.get("event") == "bot" and (e.get("metadata") or {}).get("utter_action") ==
                         "utter_action_failed" for e in events)
            if failed and not candidates:
                events, responses = [], []  # nothing to validate: a validation action out of reach changes nothing
            named = {e.get("name") for e in events if e.get("event") == "slot"}
            events = [*events, *(slot_event(k, v) for k, v in candidates.items() if k not in named)]
            user_rejected = any(e.get("event") == "action_execution_rejected" for e in events)
            validated = any(e.get("event") == "slot" and e.get("name") != REQUESTED_SLOT for e in events)
            if after_user and not activating and requested and not validated and not user_rejected:
                # FormAction.validate: the slot asked for, nothing extracted or validated -> the form rejects
                del tracker.events[start:]
                tracker.events.append(event("action_execution_rejected", name=name, policy=policy))
                return True
            self._apply(tracker, events, responses, validator)
            validation = events
            if failed and candidates:
                return False
            if user_rejected:
                return True  # the validation action rejected the form itself: no slot is asked for
        else:
            for slot_name, value in candidates.items():
                if tracker.get_slot(slot_name) != value:
                    tracker.events.append(slot_event(slot_name, value))
        if tracker.active_loop != name:
            return True  # the validation action ended the form itself
        last_request = next((e for e in reversed(validation) if e.get("event") == "slot"
                             and e.get("name") == REQUESTED_SLOT), None)
        if last_request is not None and last_request.get("value") is None and \
                not any(e.get("event") == "action_execution_rejected" for e in validation):
            # the validation action stopped the form early with requested_slot None (Rasa's FormAction.is_done)
            tracker.events.extend([event("active_loop", name=None), slot_event(REQUESTED_SLOT, None)])
            return True
        asked = last_request.get("value") if last_request is not None else None
        missing = str(asked) if asked else next((s for s in form.required_slots if tracker.get_slot(s) is None), None)
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
        """Rasa 3.6's TwoStageFallbackAction: activated, it asks whether the best guess was meant. Then, after each
        message: an understood intent (anything but nlu_fallback / out_of_scope) ends it as if said in the first
        place; two low-confidence messages in a row, or out_of_scope -> nlu_fallback -> out_of_scope (the second
        guess refused too), give up with action_default_fallback; otherwise nlu_fallback asks the affirmation
        again and out_of_scope (the "No" button) asks to rephrase."""
        intent = tracker.latest_intent
        active = tracker.active_loop == TWO_STAGE
        tracker.events.append(action_event(TWO_STAGE, policy=policy))
        give_up = _last_intents(tracker, 2) == [FALLBACK_INTENT, FALLBACK_INTENT] or \
            _last_intents(tracker, 3) == ["out_of_scope", FALLBACK_INTENT, "out_of_scope"]
        clarified = intent not in (FALLBACK_INTENT, "out_of_scope")
        if not active:
            tracker.events.append(event("active_loop", name=TWO_STAGE))
        if not active and not give_up:
            self._ask_two_stage(tracker, "action_default_ask_affirmation")
            return False
        if give_up:
            message = self.render("utter_default", tracker) or _own("rasa.fallback")
            tracker.events.append(bot_event(message, utter_action="utter_default"))
            # the message is reverted and the loop is over (real Rasa's tracker then shows no active loop)
            tracker.events.extend([event("rewind"), event("active_loop", name=None)])
            return False
        if not clarified:
            self._ask_two_stage(tracker, "action_default_ask_affirmation" if intent == FALLBACK_INTENT
                                else "action_default_ask_rephrase")
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
        wanted_loop = condition.get("active_loop")
        if wanted_loop is None:
            if loop is None:
                return True
            continue
        if wanted_loop != loop:
            continue
        if condition.get("requested_slot") and condition.get("requested_slot") != requested:
            continue
        return True
    return False


def _last_intents(tracker: Tracker, count: int) -> list[str | None]:
    """Rasa's _last_n_intent_names: of the last `count` user messages or reverts (since the last restart), the
    intents of the messages (a revert takes a place but names nothing)."""
    out: list[str | None] = []
    seen = 0
    for item in reversed(tracker.events):
        kind = item.get("event")
        if kind == "restart":
            break
        if kind not in ("user", "rewind"):
            continue
        seen += 1
        if kind == "user":
            intent = ((item.get("parse_data") or {}).get("intent") or {}).get("name")
            out.append(str(intent) if intent else None)
        if seen == count:
            break
    return out


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]


def _intent_allowed(mapping: dict[str, Any], intent: str | None, *, also_unwanted: list[str] | None = None) -> bool:
    """Rasa's SlotMapping.intent_is_desired: one of `intent`, or (with none listed) not one of `not_intent`
    (plus the active form's ignored intents)."""
    wanted = _as_list(mapping.get("intent"))
    unwanted = [*_as_list(mapping.get("not_intent")), *(also_unwanted or [])]
    return (not wanted and intent not in unwanted) or intent in wanted


def _loop_ignored_intents(mapping: dict[str, Any], form: Form) -> list[str]:
    """The active form's ignored intents, when the mapping's conditions (if any) name that form."""
    conditions = mapping.get("conditions")
    if conditions and not any(isinstance(c, dict) and c.get("active_loop") == form.name for c in conditions):
        return []
    return list(form.ignored_intents)




def _annotated(project: RasaProject) -> dict[str, set[str]]:
    """Every annotated text (lower case) of each entity in the project's NLU data."""
    out: dict[str, set[str]] = {}
    for example in project.nlu.examples:
        for annotation in example.entities:
            out.setdefault(annotation.entity, set()).add(annotation.text.lower())
    return out


def _vocabulary(project: RasaProject) -> dict[str, dict[str, str]]:
    """Surface form -> value of every annotation whose value differs from its text (Rasa makes those synonyms)."""
    vocabulary: dict[str, dict[str, str]] = {}
    for example in project.nlu.examples:
        for annotation in example.entities:
            if str(annotation.value) != annotation.text:
                vocabulary.setdefault(annotation.entity, {})[annotation.text.lower()] = annotation.value
    return vocabulary


