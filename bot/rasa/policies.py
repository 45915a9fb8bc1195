"""Rasa's RulePolicy and MemoizationPolicy: rules match the end of the conversation, stories are remembered
over `max_history` states; a rule always beats a story."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from bot.rasa.domain import Domain, Problems
from bot.rasa.stories import ActionStep, BotTextStep, Flow, LoopStep, OrStep, SlotStep, Step, UserStep
from bot.rasa.tracker import LISTEN, State

_ANY = object()


@dataclass(frozen=True)
class Snippet:
    """One prediction a rule makes: when the last len(states) states match, do `action`."""

    states: tuple[State, ...]
    action: str
    rule: str
    where: str
    conversation_start: bool


def _freeze(state: State) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, v) for k, v in state.items()))


def _expand(steps: list[Step]) -> list[list[Step]]:
    """One step list per combination of `or` options."""
    choices: list[list[Step]] = [[*s.options] if isinstance(s, OrStep) else [s] for s in steps]
    return [list(combo) for combo in itertools.product(*choices)][:64]


def _user_features(step: UserStep) -> State:
    state: State = {"prev_action": LISTEN}
    if step.intent:
        state["intent"] = step.intent
    if step.entities:
        state["entities"] = frozenset(name for name, _, _, _ in step.entities)
    return state


def _slot_features(domain: Domain, step: SlotStep) -> State:
    out: State = {}
    for name, value in step.slots:
        slot = domain.slots.get(name)
        if slot is None or not slot.influence_conversation:
            continue
        out[f"slot:{name}"] = True if value is ... and slot.type not in ("bool", "categorical") else (
            slot.feature(value) if value is not ... else _ANY)
    return out


def simulate(flow_steps: list[Step], domain: Domain, *, partial: bool,
             start: State | None = None) -> list[tuple[State, str]]:
    """(state, action) pairs of a step list. Partial (rules): only what the rule says; full (stories): the
    whole state as a tracker has it."""
    pairs: list[tuple[State, str]] = []
    lasting: State = {} if partial else {"active_loop": None}
    current: State = {**(start or {})}
    first = True
    for step in flow_steps:
        if isinstance(step, UserStep):
            if not first and not partial:
                pairs.append(({**lasting, **current}, LISTEN))
            current = _user_features(step)
        elif isinstance(step, ActionStep | BotTextStep):
            name = step.name if isinstance(step, ActionStep) else f"bot:{step.text}"
            pairs.append(({**lasting, **current}, name))
            current = {"prev_action": name}
        elif isinstance(step, LoopStep):
            lasting["active_loop"] = step.name
        elif isinstance(step, SlotStep):
            lasting.update(_slot_features(domain, step))
        first = False
    return pairs


def _matches(partial: State, full: State) -> bool:
    for key, value in partial.items():
        if key == "entities":
            if not value <= full.get("entities", frozenset()):
                return False
        elif value is _ANY:
            if full.get(key) in (None, False):
                return False
        elif full.get(key, None if key != "active_loop" else None) != value:
            return False
    return True


@dataclass
class DialoguePolicies:
    domain: Domain
    max_history: int = 5
    snippets: list[Snippet] = field(default_factory=list)
    memory: dict[tuple[Any, ...], tuple[str, str]] = field(default_factory=dict)
    # the same stories without slot features: a slot an entity filled that the story does not mention
    loose_memory: dict[tuple[Any, ...], str] = field(default_factory=dict)
    # one-state histories that open a story: only these may match without the action before them
    openings: set[tuple[Any, ...]] = field(default_factory=set)
    core_fallback_action: str = "action_default_fallback"

    def learn(self, flows: list[Flow], problems: Problems) -> None:
        for flow in flows:
            if flow.kind == "rule":
                self._learn_rule(flow)
        for flow in flows:
            if flow.kind == "story":
                self._learn_story(flow, problems)
        self._check_rules(problems)

    def _learn_rule(self, flow: Flow) -> None:
        where = f"{flow.file}:{flow.line}"
        for condition in _expand(flow.condition) or [[]]:
            start: State = {}
            for step in condition:
                if isinstance(step, LoopStep):
                    start["active_loop"] = step.name
                elif isinstance(step, SlotStep):
                    start.update(_slot_features(self.domain, step))
            for steps in _expand(flow.steps):
                pairs = simulate(steps, self.domain, partial=True, start=start)
                if flow.wait_for_user_input and steps and not isinstance(steps[-1], UserStep):
                    last_state: State = {"prev_action": pairs[-1][1]} if pairs else {}
                    pairs.append((last_state, LISTEN))
                for index, (_, action) in enumerate(pairs):
                    states = tuple(state for state, _ in pairs[: index + 1])
                    states = ({**start, **states[0]}, *states[1:])
                    if index == 0 and not states[0]:
                        continue  # "do X whatever happened" is not a rule
                    self.snippets.append(Snippet(states=states, action=action, rule=flow.name, where=where,
                                                 conversation_start=flow.conversation_start))

    def _learn_story(self, flow: Flow, problems: Problems) -> None:
        for steps in _expand(flow.steps):
            pairs = simulate(steps, self.domain, partial=False)
            if steps and not isinstance(steps[-1], UserStep):
                pairs.append(({"prev_action": pairs[-1][1], **_lasting_of(pairs)}, LISTEN) if pairs else ({}, LISTEN))
            history: list[State] = []
            for state, action in pairs:
                history.append(state)
                if len(history) == 1:
                    self.openings.add((_freeze(state),))
                    self.openings.add((_freeze(_without_slots(state)),))
                for size in range(1, min(self.max_history, len(history)) + 1):
                    key = tuple(_freeze(s) for s in history[-size:])
                    known = self.memory.get(key)
                    if known is not None and known[0] != action and size == min(self.max_history, len(history)):
                        problems.add(flow.file, flow.line,
                                     f"story '{flow.name}' does '{action}' where {known[1]} does '{known[0]}' "
                                     "after the same conversation")
                    loose = tuple(_freeze(_without_slots(s)) for s in history[-size:])
                    if self.loose_memory.get(loose, action) != action:
                        self.loose_memory[loose] = ""
                    else:
                        self.loose_memory[loose] = action
                    if known is None:
                        self.memory[key] = (action, f"story '{flow.name}' ({flow.file}:{flow.line})")
                    elif known[0] != action:
                        self.memory[key] = ("", "ambiguous")  # shorter histories that disagree predict nothing
                rule = self.rule_action([*history])
                if rule is not None and rule[0] != action and action != LISTEN and rule[0] != LISTEN:
                    problems.add(flow.file, flow.line,
                                 f"story '{flow.name}' does '{action}' but rule '{rule[1].rule}' "
                                 f"({rule[1].where}) does '{rule[0]}' in the same situation")

    def _check_rules(self, problems: Problems) -> None:
        for a, b in itertools.combinations(self.snippets, 2):
            if a.rule == b.rule or a.action == b.action or a.states != b.states or \
                    a.conversation_start != b.conversation_start:
                continue
            if LISTEN in (a.action, b.action):
                continue
            file, _, line = a.where.rpartition(":")
            problems.add(file, int(line), f"rule '{a.rule}' does '{a.action}' but rule '{b.rule}' ({b.where}) "
                                          f"does '{b.action}' in the same situation")

    # ---------- prediction ----------
    def rule_action(self, states: list[State]) -> tuple[str, Snippet] | None:
        best: Snippet | None = None
        for snippet in self.snippets:
            size = len(snippet.states)
            if size > len(states):
                continue
            if snippet.conversation_start and size != len(states):
                continue
            if all(_matches(partial, full) for partial, full in zip(snippet.states, states[-size:], strict=True)):
                if best is None or size > len(best.states) or (
                        size == len(best.states) and _weight(snippet) > _weight(best)):
                    best = snippet
        return (best.action, best) if best is not None else None

    def memo_action(self, states: list[State]) -> str | None:
        for size in range(min(self.max_history, len(states)), 0, -1):
            key = tuple(_freeze(s) for s in states[-size:])
            found = self.memory.get(key)
            if found is not None and (size > 1 or key in self.openings):
                return found[0] or None
        for size in range(min(self.max_history, len(states)), 0, -1):
            key = tuple(_freeze(_without_slots(s)) for s in states[-size:])
            loose = self.loose_memory.get(key)
            if loose is not None and (size > 1 or key in self.openings):
                return loose or None
        return None


def _without_slots(state: State) -> State:
    return {k: v for k, v in state.items() if not k.startswith("slot:")}


def _weight(snippet: Snippet) -> int:
    return sum(len(state) for state in snippet.states)


def _lasting_of(pairs: list[tuple[State, str]]) -> State:
    last = pairs[-1][0]
    return {k: v for k, v in last.items() if k.startswith("slot:") or k == "active_loop"}
