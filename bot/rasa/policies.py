"""Rasa's RulePolicy and MemoizationPolicy: rules match the end of the conversation, stories are remembered
over `max_history` states; a rule always beats a story."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from bot.rasa.domain import Domain, Problems
from bot.rasa.learned import LearnedPolicy
from bot.rasa.stories import ActionStep, BotTextStep, Flow, LoopStep, OrStep, SlotStep, Step, UserStep
from bot.rasa.tracker import LISTEN, State

_ANY = object()
# Rasa's default intents and the default actions RulePolicy predicts for them right after the user said them.
DEFAULT_INTENT_ACTIONS = {"restart": "action_restart", "back": "action_back",
                          "session_start": "action_session_start"}
_UNSET = None  # a rule's `slot: null` / `active_loop: null`: the conversation must not have it set


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
        if value is None:
            out[f"slot:{name}"] = _UNSET
            continue
        out[f"slot:{name}"] = True if value is ... and slot.type not in ("bool", "categorical") else (
            slot.feature(value) if value is not ... else _ANY)
    return out


def simulate(flow_steps: list[Step], domain: Domain, *, partial: bool,
             start: State | None = None) -> list[tuple[State, str]]:
    """(state, action) pairs of a step list, action_listen before each user message but the first. Partial
    (rules): only what the rule says (its condition lasts while the rule runs); full (stories): the whole
    state as a tracker has it."""
    pairs: list[tuple[State, str]] = []
    lasting: State = {**(start or {})} if partial else {"active_loop": None, **(start or {})}
    current: State = {}
    first = True
    for step in flow_steps:
        if isinstance(step, UserStep):
            if not first:
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
            if not partial:  # a tracker's state leaves unset slots out
                lasting = {k: v for k, v in lasting.items() if not (k.startswith("slot:") and v is None)}
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
    # AugmentedMemoizationPolicy: when nothing is remembered, the conversation is cut at each action in turn (what
    # was set before a cut, slots and the active loop, is forgotten) and looked up again
    augmented: bool = False
    core_fallback_action: str = "action_default_fallback"
    core_fallback_threshold: float = 0.3
    # TEDPolicy's stand-in (bot.rasa.learned), when the project's config has TEDPolicy; fitted at first use
    learned: LearnedPolicy | None = None
    story_runs: list[list[tuple[State, str]]] = field(default_factory=list)  # each story's (state, action)s
    _fitted: bool = False
    warnings: list[str] = field(default_factory=list)
    # Rasa's rule-only data (RulePolicy `_find_rule_only_slots_loops`): slots and loops rules use and no story does;
    # the ML policies (memoization, TED) never see them
    rule_only_slots: frozenset[str] = frozenset()
    rule_only_loops: frozenset[str] = frozenset()
    # what of RulePolicy's predictions the stories also make (Rasa's `_analyze_rules` -> RULES_NOT_IN_STORIES is
    # the rest): rule snippets, a loop's happy path (the loop; listen after it), default intents' actions
    used_snippets: set[tuple[Any, ...]] = field(default_factory=set)
    used_loops: set[str] = field(default_factory=set)
    used_loop_listens: set[str] = field(default_factory=set)
    used_default_intents: set[str] = field(default_factory=set)

    def learn(self, flows: list[Flow], problems: Problems) -> None:
        for flow in flows:
            if flow.kind == "rule":
                self._learn_rule(flow)
        for flow in flows:
            if flow.kind == "story":
                self._learn_story(flow, problems)
        self._check_rules(problems)
        self._find_rule_only_data()

    def _find_rule_only_data(self) -> None:
        """Rasa 3.6's RulePolicy training: the slots and loops of rule states that no story state has, and which
        of its predictions a story also makes (its prediction matched the story's action)."""
        rule_slots = {k[5:] for snippet in self.snippets for state in snippet.states for k in state
                      if k.startswith("slot:")}
        rule_loops = {str(state["active_loop"]) for snippet in self.snippets for state in snippet.states
                      if state.get("active_loop")}
        # a story's tracker has each slot's initial value too (Rasa featurises it when it is not "unset")
        story_slots = {name for name, slot in self.domain.slots.items()
                       if slot.influence_conversation and slot.initial_value is not None}
        story_loops: set[str] = set()
        for run in self.story_runs:
            for state, _ in run:
                story_slots.update(k[5:] for k, v in state.items() if k.startswith("slot:") and v is not None)
                if state.get("active_loop"):
                    story_loops.add(str(state["active_loop"]))
        self.rule_only_slots = frozenset(rule_slots - story_slots)
        self.rule_only_loops = frozenset(rule_loops - story_loops)
        for run in self.story_runs:
            history: list[State] = []
            rejected = False
            for state, action in run:
                if history and history[-1].get("active_loop") != state.get("active_loop"):
                    rejected = False  # another loop (or none): nothing rejected yet
                history.append(state)
                prev, loop = state.get("prev_action"), state.get("active_loop")
                intent = str(state.get("intent"))
                was_rejected = rejected
                if action == loop:
                    rejected = False  # the loop runs again (after this prediction)
                if prev == LISTEN and intent in DEFAULT_INTENT_ACTIONS:
                    if action == DEFAULT_INTENT_ACTIONS[intent]:
                        self.used_default_intents.add(intent)
                    continue
                if loop and not was_rejected and prev == loop:
                    if action == LISTEN:
                        self.used_loop_listens.add(str(loop))
                    continue
                if loop and not was_rejected and prev != loop:
                    if action == loop:
                        self.used_loops.add(str(loop))
                        continue
                    rejected = True  # Rasa's training emulates the loop's rejection and asks the rules
                rule = self.rule_action(history)
                if rule is None:
                    continue
                predicted = rule[0]
                if loop and predicted == LISTEN and not rule[1].states[-1].get("active_loop"):
                    predicted = str(loop)  # a general rule's listen inside a loop returns to the loop
                if predicted == action:
                    self.used_snippets.add(snippet_key(rule[1]))

    def hides(self, snippet: Snippet) -> bool:
        """Rasa's `hide_rule_turn` for a rule's prediction: no story makes it."""
        return snippet_key(snippet) not in self.used_snippets

    def _learn_rule(self, flow: Flow) -> None:
        """Rasa's rule snippets: a rule that is not `conversation_start` begins with `...`, so the states up
        to and including the first one (and with it the first action when the rule opens with an action)
        are no part of what the rule matches; the condition stays in force in every later state."""
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
                if flow.wait_for_user_input and steps and not isinstance(steps[-1], UserStep) and pairs:
                    lasting = _lasting_of(self.domain, pairs, start, steps)
                    pairs.append(({**lasting, "prev_action": pairs[-1][1]}, LISTEN))
                opens_with_action = bool(steps) and not isinstance(steps[0], UserStep | OrStep)
                skip = 1 if opens_with_action and not flow.conversation_start else 0
                for index, (_, action) in enumerate(pairs):
                    if index < skip:
                        continue  # predicted from the `...` state: unpredictable, as in Rasa
                    states = tuple(state for state, _ in pairs[skip: index + 1])
                    if not any(states):
                        continue  # "do X whatever happened" is not a rule
                    self.snippets.append(Snippet(states=states, action=action, rule=flow.name, where=where,
                                                 conversation_start=flow.conversation_start))

    def _learn_story(self, flow: Flow, problems: Problems) -> None:
        for steps in _expand(flow.steps):
            pairs = simulate(steps, self.domain, partial=False)
            if steps and not isinstance(steps[-1], UserStep) and pairs:
                pairs.append(({**_lasting_of(self.domain, pairs, {}, steps), "prev_action": pairs[-1][1]}, LISTEN))
            self.story_runs.append(pairs)
            history: list[State] = []
            for index, (state, action) in enumerate(pairs):
                history.append(state)
                if len(history) == 1:
                    self.openings.add((_freeze(state),))
                    self.openings.add((_freeze(_without_slots(state)),))
                for size in range(1, min(self.max_history, len(history)) + 1):
                    key = tuple(_freeze(s) for s in history[-size:])
                    known = self.memory.get(key)
                    if known is not None and known[0] not in (action, "") and "prev_action" in history[0] and \
                            size == min(self.max_history, len(history)):
                        # Rasa's `rasa data validate` reports story structure conflicts as warnings and
                        # trains anyway (memoization forgets the ambiguous history).
                        self.warnings.append(
                            f"{flow.file}:{flow.line}: story structure conflict: '{action}' predicted in "
                            f"'{flow.name}' while '{known[0]}' predicted in {known[1]} after the same "
                            f"{size} states")
                    loose = tuple(_freeze(_without_slots(s)) for s in history[-size:])
                    if self.loose_memory.get(loose, action) != action:
                        self.loose_memory[loose] = ""
                    else:
                        self.loose_memory[loose] = action
                    if known is None:
                        self.memory[key] = (action, f"story '{flow.name}' ({flow.file}:{flow.line})")
                    elif known[0] != action:
                        self.memory[key] = ("", "ambiguous")  # shorter histories that disagree predict nothing
                if index == 0 and not isinstance(steps[0], UserStep | OrStep):
                    continue  # a story's first action is unpredictable (Rasa's contradiction check)
                rule = self.rule_action([*history])
                if rule is None or rule[0] == action or LISTEN in (action, rule[0]):
                    continue
                if state.get("active_loop") and rule[0] == state.get("active_loop"):
                    continue  # Rasa emulates the loop's rejection here: a story may interrupt a form
                problems.add(flow.file, flow.line,
                             f"- the prediction of the action '{action}' in story '{flow.name}' is contradicting "
                             f"with rule(s) '{rule[1].rule}' which predicted action '{rule[0]}' "
                             f"(rule at {rule[1].where})")

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


    def recall_truncated(self, truncated: list[list[State]]) -> str | None:
        """Rasa's AugmentedMemoizationPolicy `_recall_using_truncation`: the states of the conversation cut at each
        action, oldest cut first; the first remembered history wins (a one-state history only where a story opens)."""
        for states in truncated:
            key = tuple(_freeze(s) for s in states[-self.max_history:])
            found = self.memory.get(key)
            if found is not None and found[0] and (len(key) > 1 or key in self.openings):
                return found[0]
        return None

    def learned_action(self, states: list[State], *, excluded: tuple[str, ...] = (),
                       rejected: bool = False) -> str | None:
        """TEDPolicy's stand-in: the action the stories suggest here, when confident enough to beat the core
        fallback (None without TEDPolicy in the config)."""
        if self.learned is None:
            return None
        if not self._fitted:
            self.learned.threshold = self.core_fallback_threshold
            self.learned.fit(self.story_runs)
            self._fitted = True
        found = self.learned.predict(states, excluded=excluded, rejected=rejected)
        return found[0] if found is not None else None


def snippet_key(snippet: Snippet) -> tuple[Any, ...]:
    """Rasa's rule key: the snippet's states (rules with the same states are one rule to Rasa)."""
    return (snippet.conversation_start, tuple(_freeze(state) for state in snippet.states))


def _without_slots(state: State) -> State:
    return {k: v for k, v in state.items() if not k.startswith("slot:")}


def _weight(snippet: Snippet) -> int:
    return sum(len(state) for state in snippet.states)


def _lasting_of(domain: Domain, pairs: list[tuple[State, str]], start: State, steps: list[Step]) -> State:
    """Condition, slots and loop in force after the last step (slot_was_set / active_loop after the last
    action count)."""
    lasting = {**start, **{k: v for k, v in pairs[-1][0].items() if k.startswith("slot:") or k == "active_loop"}}
    index = max((i for i, s in enumerate(steps) if isinstance(s, ActionStep | BotTextStep)), default=-1)
    for step in steps[index + 1:]:
        if isinstance(step, LoopStep):
            lasting["active_loop"] = step.name
        elif isinstance(step, SlotStep):
            lasting.update(_slot_features(domain, step))
    return lasting
