"""Rules, stories and test stories in Rasa 3.x YAML, as lists of steps with their file lines."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.rasa.domain import Problems
from bot.rasa.yaml_source import item_line, line_of
from nlu.errors import TrainingDataError
from nlu.training_data import parse_annotated_text


@dataclass(frozen=True)
class UserStep:
    intent: str | None
    entities: tuple[tuple[str, Any, str | None, str | None], ...] = ()  # (entity, value, role, group)
    text: str | None = None
    line: int = 0


@dataclass(frozen=True)
class ActionStep:
    name: str
    line: int = 0


@dataclass(frozen=True)
class BotTextStep:
    text: str
    line: int = 0


@dataclass(frozen=True)
class LoopStep:
    name: str | None
    line: int = 0


@dataclass(frozen=True)
class SlotStep:
    slots: tuple[tuple[str, Any], ...]  # value `...` (Ellipsis) means "set to anything"
    line: int = 0


@dataclass(frozen=True)
class OrStep:
    options: tuple[UserStep | SlotStep, ...]
    line: int = 0


@dataclass(frozen=True)
class CheckpointStep:
    name: str
    line: int = 0


Step = UserStep | ActionStep | BotTextStep | LoopStep | SlotStep | OrStep | CheckpointStep
MAX_STITCHED = 500  # stories made by joining checkpoints, at most (Rasa augments similarly, bounded)


@dataclass
class Flow:
    """A story, a rule or a test story."""

    kind: str  # story | rule | test
    name: str
    steps: list[Step]
    file: str
    line: int
    condition: list[Step] = field(default_factory=list)
    conversation_start: bool = False
    wait_for_user_input: bool = True


def _entities(raw: Any, file: str, line: int, problems: Problems) -> tuple[tuple[str, Any, str | None, str | None],
                                                                            ...]:
    out = []
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add(file, line, "'entities' must be a list")
        return ()
    for item in raw:
        if isinstance(item, str):
            out.append((item, ..., None, None))
        elif isinstance(item, dict) and "entity" in item:
            out.append((str(item["entity"]), item.get("value", ...), item.get("role"), item.get("group")))
        elif isinstance(item, dict) and len(item) == 1:
            name, value = next(iter(item.items()))
            out.append((str(name), value, None, None))
        else:
            problems.add(file, line, f"entity {item!r} must be a name or 'name: value'")
    return tuple(out)


def _user_step(item: dict[str, Any], file: str, line: int, problems: Problems) -> UserStep:
    intent = item.get("intent")
    text = item.get("user")
    entities = _entities(item.get("entities"), file, line, problems)
    if text is not None:
        # Rasa's annotation grammar, JSON form (roles, groups, values) included: [Oslo]{"entity": "city"}
        try:
            plain, annotations = parse_annotated_text(str(text).strip(), source=file, line=line)
        except TrainingDataError as error:
            problems.add(file, line, error.problem)
            plain, annotations = str(text).strip(), []
        if annotations:
            entities = entities or tuple((a.entity, a.value, a.role, a.group) for a in annotations)
        text = plain
    return UserStep(intent=str(intent) if intent is not None else None, entities=entities, text=text, line=line)


def _slot_step(raw: Any, file: str, line: int, problems: Problems) -> SlotStep:
    pairs: list[tuple[str, Any]] = []
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, str):
                pairs.append((item, ...))
            elif isinstance(item, dict):
                pairs.extend((str(k), v) for k, v in item.items())
    elif isinstance(raw, dict):
        pairs.extend((str(k), v) for k, v in raw.items())
    else:
        problems.add(file, line, "'slot_was_set' must be a list of 'slot: value'")
    return SlotStep(slots=tuple(pairs), line=line)


def parse_steps(raw: Any, *, file: str, problems: Problems, what: str) -> list[Step]:
    steps: list[Step] = []
    if not isinstance(raw, list):
        problems.add(file, line_of(raw), f"{what}: 'steps' must be a list")
        return steps
    for index, item in enumerate(raw):
        line = item_line(raw, index, line_of(raw))
        if not isinstance(item, dict):
            problems.add(file, line, f"{what}: step {item!r} must be a mapping such as '- intent: greet'")
            continue
        if "intent" in item or "user" in item:
            steps.append(_user_step(item, file, line, problems))
        elif "action" in item:
            steps.append(ActionStep(name=str(item["action"]), line=line))
        elif "bot" in item:
            steps.append(BotTextStep(text=str(item["bot"]).strip(), line=line))
        elif "active_loop" in item:
            name = item["active_loop"]
            steps.append(LoopStep(name=None if name in (None, "null") else str(name), line=line))
        elif "slot_was_set" in item:
            steps.append(_slot_step(item["slot_was_set"], file, line, problems))
        elif "or" in item:
            options: list[UserStep | SlotStep] = []
            if not isinstance(item["or"], list):
                problems.add(file, line, f"{what}: 'or' must be a list of intents or slot_was_set")
                continue
            for option in item["or"]:
                if isinstance(option, dict) and ("intent" in option or "user" in option):
                    options.append(_user_step(option, file, line, problems))
                elif isinstance(option, dict) and "slot_was_set" in option:
                    options.append(_slot_step(option["slot_was_set"], file, line, problems))
                else:
                    problems.add(file, line, f"{what}: 'or' options must be intents or slot_was_set")
            steps.append(OrStep(options=tuple(options), line=line))
        elif "checkpoint" in item:
            steps.append(CheckpointStep(name=str(item["checkpoint"]), line=line))
        else:
            problems.add(file, line, f"{what}: unknown step keys {', '.join(map(str, item))}")
    return steps


def parse_flows(raw: dict[str, Any], *, file: str, problems: Problems) -> list[Flow]:
    flows: list[Flow] = []
    for key, kind in (("rules", "rule"), ("stories", "story")):
        items = raw.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            problems.add(file, line_of(raw, key), f"'{key}' must be a list")
            continue
        for index, item in enumerate(items):
            line = item_line(items, index)
            if not isinstance(item, dict) or kind not in item:
                problems.add(file, line, f"each of '{key}' needs a '{kind}:' name")
                continue
            name = str(item[kind])
            what = f"{kind} '{name}'"
            is_test = file.replace("\\", "/").split("/")[-1].startswith("test_") or "/tests/" in f"/{file}"
            flow = Flow(kind="test" if is_test and kind == "story" else kind, name=name,
                        steps=parse_steps(item.get("steps"), file=file, problems=problems, what=what),
                        file=file, line=line)
            if kind == "rule":
                flow.condition = parse_steps(item.get("condition") or [], file=file, problems=problems,
                                             what=f"{what} condition")
                flow.conversation_start = bool(item.get("conversation_start", False))
                flow.wait_for_user_input = bool(item.get("wait_for_user_input", True))
                if not flow.steps:
                    problems.add(file, line, f"{what} has no steps")
            flows.append(flow)
    return flows


def _ends(flow: Flow) -> tuple[list[str], list[Step], list[str]]:
    """A flow's opening checkpoints, its steps between them, its closing checkpoints."""
    steps = list(flow.steps)
    opening: list[str] = []
    closing: list[str] = []
    while steps and isinstance(first := steps[0], CheckpointStep):
        opening.append(first.name)
        steps.pop(0)
    while steps and isinstance(last := steps[-1], CheckpointStep):
        closing.insert(0, last.name)
        steps.pop()
    return opening, steps, closing


def stitch_checkpoints(flows: list[Flow], problems: Problems, warnings: list[str]) -> list[Flow]:
    """Stories joined at their checkpoints as Rasa joins them: a story ending in `checkpoint: X` goes on with
    every story starting with `checkpoint: X` (several opening checkpoints: any of them). Rules and stories
    without checkpoints are returned as they are."""
    if not any(isinstance(step, CheckpointStep) for flow in flows for step in flow.steps):
        return flows
    parts = {id(flow): _ends(flow) for flow in flows}
    for flow in flows:
        opening, middle, closing = parts[id(flow)]
        inner = next((s for s in middle if isinstance(s, CheckpointStep)), None)
        if inner is not None:
            problems.add(flow.file, inner.line, f"{flow.kind} '{flow.name}': a checkpoint must be the first or "
                                                "the last step")
        if flow.kind == "rule" and (opening or closing):
            problems.add(flow.file, flow.line, f"rule '{flow.name}': rules cannot use checkpoints")
    starts: dict[str, list[Flow]] = {}
    for flow in flows:
        for name in parts[id(flow)][0]:
            starts.setdefault(name, []).append(flow)
    ends = {name for flow in flows for name in parts[id(flow)][2]}
    for name in sorted(set(starts) - ends):
        warnings.append(f"checkpoint '{name}' is used at the start of a story but no story ends with it")
    for name in sorted(ends - set(starts)):
        warnings.append(f"checkpoint '{name}' ends a story but no story starts with it")
    out: list[Flow] = []

    def walk(root: Flow, flow: Flow, steps: list[Step], names: list[str], depth: int) -> None:
        closing = parts[id(flow)][2]
        following = [f for name in closing for f in starts.get(name, [])]
        if not following or depth > 8 or len(out) >= MAX_STITCHED:
            out.append(Flow(kind=root.kind, name=" > ".join(names), steps=steps, file=root.file, line=root.line))
            return
        for nxt in following:
            walk(root, nxt, [*steps, *parts[id(nxt)][1]], [*names, nxt.name], depth + 1)

    for flow in flows:
        opening, middle, _ = parts[id(flow)]
        if flow.kind == "rule" or not any(isinstance(s, CheckpointStep) for s in flow.steps):
            out.append(flow)
        elif not opening:
            walk(flow, flow, middle, [flow.name], 0)
    return out
