"""A conversation as Rasa sees it: a list of Rasa events, and what they add up to (slots, loop, states)."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

from bot.rasa.domain import REQUESTED_SLOT, Domain

LISTEN = "action_listen"
SESSION_START = "action_session_start"
# Rasa event names that change the dialogue; everything else is kept but changes nothing here.
_RESETTING = ("restart", "session_started")

State = dict[str, Any]


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A Rasa event in its JSON form, stamped now."""
    return {"event": kind, "timestamp": time.time(), **fields}


def action_event(name: str, *, policy: str | None = None, confidence: float = 1.0,
                 hide_rule_turn: bool = False) -> dict[str, Any]:
    """Rasa's ActionExecuted; `hide_rule_turn`: a rule no story uses predicted it (Rasa's ML policies do not see
    that turn, `ml_states`)."""
    return event("action", name=name, policy=policy, confidence=confidence, action_text=None,
                 hide_rule_turn=hide_rule_turn)


def slot_event(name: str, value: Any) -> dict[str, Any]:
    return event("slot", name=name, value=value)


def applied_events(events: list[dict[str, Any]], *, collapse_loops: bool = False) -> list[dict[str, Any]]:
    """The events still in force after restarts, rewinds (UserUtteranceReverted) and undos (ActionReverted), as
    Rasa's `DialogueStateTracker.applied_events`: a rewind takes back the user's message, what followed it and the
    action before it (the action_listen that waited for it); an undo takes back the last action.
    `collapse_loops` (the states the policies see): a loop's later runs on its happy path are folded into its first
    run (the user turns between them go), as Rasa folds them, so a form reads as one step as in the stories."""
    loop_names = {e.get("name") for e in events if e.get("event") in ("active_loop", "form") and e.get("name")} \
        if collapse_loops else set()
    applied: list[dict[str, Any]] = []
    for item in events:
        kind = item.get("event")
        if kind in _RESETTING:
            applied = []
        elif kind == "undo":
            _undo_till(applied, "action")
        elif kind == "rewind":
            _undo_till(applied, "user")
            _undo_till(applied, "action")
        elif kind == "action" and item.get("name") in loop_names and \
                not _first_loop_run_or_unhappy_path(str(item.get("name")), applied):
            _undo_till_previous_loop_run(str(item.get("name")), applied)
        else:
            applied.append(item)
    return applied


def _undo_till(applied: list[dict[str, Any]], kind: str) -> None:
    while applied:
        if applied.pop().get("event") == kind:
            return


def _first_loop_run_or_unhappy_path(loop: str, applied: list[dict[str, Any]]) -> bool:
    next_action: str | None = None
    for item in reversed(applied):
        kind = item.get("event")
        if kind in ("active_loop", "form") and item.get("name") is None:
            return True
        if kind == "action_execution_rejected" and item.get("name") == loop:
            return True
        if kind == "user" and next_action is not None and next_action != loop:
            return True
        if kind == "action":
            if item.get("name") == loop:
                return False
            next_action = str(item.get("name"))
    return True


def _undo_till_previous_loop_run(loop: str, applied: list[dict[str, Any]]) -> None:
    offset = 0
    for item in reversed(applied[:]):
        if item.get("event") == "action" and item.get("name") == loop:
            break
        if item.get("event") in ("action", "user"):
            del applied[len(applied) - 1 - offset]
        else:
            offset += 1


@dataclass
class Tracker:
    sender_id: str
    domain: Domain
    events: list[dict[str, Any]] = field(default_factory=list)

    # ---------- what the events add up to ----------
    def _replay(self) -> dict[str, Any]:
        slots = {name: slot.initial_value for name, slot in self.domain.slots.items()}
        loop: str | None = None
        rejected = False
        latest: dict[str, Any] = {}
        prev_action: str | None = None
        followup: str | None = None
        paused = False
        for item in applied_events(self.events):
            kind = item.get("event")
            if kind == "slot":
                slots[str(item.get("name"))] = item.get("value")
            elif kind == "reset_slots":
                slots = {name: slot.initial_value for name, slot in self.domain.slots.items()}
            elif kind in ("active_loop", "form"):
                loop = item.get("name")
                rejected = False
            elif kind == "action_execution_rejected":
                rejected = True
            elif kind == "user":
                latest = item  # a rejected loop stays rejected until it runs again (Rasa's set_latest_action)
            elif kind == "action":
                prev_action = item.get("name")
                if prev_action == loop:
                    rejected = False
                if followup == prev_action:
                    followup = None
            elif kind == "followup":
                followup = item.get("name")
            elif kind == "pause":
                paused = True
            elif kind == "resume":
                paused = False
        return {"slots": slots, "loop": loop, "rejected": rejected, "latest": latest, "prev_action": prev_action,
                "followup": followup, "paused": paused}

    @property
    def slots(self) -> dict[str, Any]:
        return dict(self._replay()["slots"])

    def get_slot(self, name: str) -> Any:
        return self._replay()["slots"].get(name)

    @property
    def active_loop(self) -> str | None:
        loop = self._replay()["loop"]
        return str(loop) if loop else None

    @property
    def loop_rejected(self) -> bool:
        return bool(self._replay()["rejected"])

    @property
    def latest_message(self) -> dict[str, Any]:
        return dict(self._replay()["latest"])

    @property
    def latest_action_name(self) -> str | None:
        name = self._replay()["prev_action"]
        return str(name) if name else None

    @property
    def latest_action_policy(self) -> str | None:
        """The policy that predicted the latest action (None before any)."""
        last = next((e for e in reversed(self.events) if e.get("event") == "action"), None)
        return str(last["policy"]) if last is not None and last.get("policy") else None

    @property
    def followup_action(self) -> str | None:
        name = self._replay()["followup"]
        return str(name) if name else None

    @property
    def latest_intent(self) -> str | None:
        intent = (self.latest_message.get("parse_data") or {}).get("intent") or {}
        name = intent.get("name")
        return str(name) if name else None

    def latest_entities(self) -> list[dict[str, Any]]:
        return list((self.latest_message.get("parse_data") or {}).get("entities") or [])

    def events_since_last_user(self) -> list[dict[str, Any]]:
        applied = applied_events(self.events)
        for index in range(len(applied) - 1, -1, -1):
            if applied[index].get("event") == "user":
                return applied[index + 1:]
        return applied

    # ---------- the dialogue states the policies see ----------
    def _user(self, latest: dict[str, Any]) -> State:
        """The user message's features: its intent and the entities the domain lets the intent use."""
        state: State = {}
        if not latest:
            return state
        parse = latest.get("parse_data") or {}
        intent = (parse.get("intent") or {}).get("name")
        if intent:
            state["intent"] = str(intent)
        used = self.domain.intent_properties.get(str(intent), {})
        names = {str(e.get("entity")) for e in parse.get("entities") or [] if e.get("entity")}
        if used.get("use_entities") is not None and isinstance(used.get("use_entities"), list):
            names &= set(used["use_entities"])
        if used.get("use_entities") is False or used.get("use_entities") == []:
            names = set()
        names -= set(used.get("ignore_entities") or [])
        if names:
            state["entities"] = frozenset(names)
        return state

    def _state(self, slots: dict[str, Any], loop: str | None, latest: dict[str, Any], prev: str | None) -> State:
        state: State = {}
        if prev is not None:
            state["prev_action"] = prev
        if prev == LISTEN:
            state.update(self._user(latest))
        state["active_loop"] = loop
        for name, slot in self.domain.slots.items():
            if name == REQUESTED_SLOT:
                continue
            feature = slot.feature(slots.get(name))
            if feature is not None and feature is not False or (slot.type == "bool" and feature is False):
                state[f"slot:{name}"] = feature
        return state

    def past_states(self) -> list[State]:
        """The state before each action of the conversation, and the current one last."""
        return [state for state, _, _ in self._prior_states()]

    def ml_states(self, rule_only_slots: frozenset[str] | set[str] = frozenset(),
                  rule_only_loops: frozenset[str] | set[str] = frozenset()) -> list[State]:
        """The states Rasa's ML policies (MemoizationPolicy, TEDPolicy: `SupportedData.ML_DATA`) predict from, as
        Rasa 3.6's `Domain.states_for_tracker_history(ignore_rule_only_turns=True, rule_only_data=...)`: a turn
        whose action a rule no story uses predicted (`hide_rule_turn`) is left out, and so are the turns after
        it up to the next action that is no follow-up and not the active loop's own next step; the state after
        a hidden run has the previous action of the last state seen (the user's message of a non-listen state
        comes from the last state seen too); slots and loops only rules use are dropped from every state."""
        out: list[State] = []
        last_user: State = {}  # the user part of the last state kept (Rasa's states carry it after bot actions too)
        last_ml_prev: str | None = None
        hidden = False
        for state, action, user in self._prior_states():
            if not hidden:
                last_ml_prev = state.get("prev_action")
            follows = action is not None and (
                action.get("policy") == "FollowupAction"
                or (state.get("prev_action") is not None and state.get("prev_action") == state.get("active_loop")))
            if not follows:
                hidden = bool(action.get("hide_rule_turn")) if action is not None else False
            if hidden:
                continue
            kept = {k: v for k, v in state.items() if k not in ("intent", "entities")
                    and not (k.startswith("slot:") and k[5:] in rule_only_slots)}
            if kept.get("active_loop") in rule_only_loops:
                kept["active_loop"] = None
            if out and state.get("prev_action") != LISTEN:
                user = dict(last_user)  # Rasa's _substitute_rule_only_user_input
            if last_ml_prev is not None:
                kept["prev_action"] = last_ml_prev
            if kept.get("prev_action") == LISTEN:  # user features only after a listen, as everywhere here
                kept.update(user)
            last_user = user
            out.append(kept)
        return out

    def truncations(self, max_history: int) -> list[Tracker]:
        """Rasa's AugmentedMemoizationPolicy: the conversation trimmed to its last `max_history` actions (cut at an
        action_listen), then cut at its first action, its second, ...; each cut starts afresh (slots and the active
        loop set before it are forgotten, as a tracker rebuilt from those events has them)."""
        applied = applied_events(self.events, collapse_loops=True)
        actions = 0
        start = 0
        for index in range(len(applied) - 1, -1, -1):
            item = applied[index]
            if item.get("event") == "action":
                actions += 1
                if actions > max_history and item.get("name") == LISTEN:
                    start = index
                    break
        applied = applied[start:]
        cuts = [i for i, item in enumerate(applied) if item.get("event") == "action"]
        return [Tracker(self.sender_id, self.domain, applied[cut:]) for cut in cuts]

    def _prior_states(self) -> list[tuple[State, dict[str, Any] | None, State]]:
        """Each state with the action event that followed it (None for the current state), as Rasa's
        `generate_all_prior_trackers`, and the user's latest message as features (intent, entities) whatever the
        previous action."""
        slots = {name: slot.initial_value for name, slot in self.domain.slots.items()}
        loop: str | None = None
        latest: dict[str, Any] = {}
        prev: str | None = None
        states: list[tuple[State, dict[str, Any] | None, State]] = []
        for item in applied_events(self.events, collapse_loops=True):
            kind = item.get("event")
            if kind == "slot":
                slots[str(item.get("name"))] = item.get("value")
            elif kind == "reset_slots":
                slots = {name: slot.initial_value for name, slot in self.domain.slots.items()}
            elif kind in ("active_loop", "form"):
                loop = item.get("name")
            elif kind == "user":
                latest = item
            elif kind == "action":
                name = str(item.get("name"))
                if name == SESSION_START:
                    continue
                if prev is not None or name != LISTEN:
                    states.append((self._state(slots, loop, latest, prev), item, self._user(latest)))
                prev = name
        states.append((self._state(slots, loop, latest, prev), None, self._user(latest)))
        return states

    # ---------- Rasa's tracker JSON ----------
    def to_rasa(self) -> dict[str, Any]:
        replay = self._replay()
        latest = replay["latest"]
        return {
            "sender_id": self.sender_id,
            "slots": replay["slots"],
            "latest_message": {"text": latest.get("text"), **(latest.get("parse_data") or {}),
                               "message_id": latest.get("message_id"), "metadata": latest.get("metadata") or {}}
            if latest else {"intent": {}, "entities": [], "text": None},
            "latest_event_time": self.events[-1].get("timestamp") if self.events else None,
            "followup_action": replay["followup"],
            "paused": replay["paused"],
            "events": copy.deepcopy(self.events),
            "latest_input_channel": latest.get("input_channel"),
            "active_loop": {"name": replay["loop"], "is_interrupted": False, "rejected": replay["rejected"],
                            "trigger_message": {}} if replay["loop"] else {},
            "latest_action": {"action_name": replay["prev_action"]} if replay["prev_action"] else {},
            "latest_action_name": replay["prev_action"],
        }
