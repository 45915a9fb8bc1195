"""Rules, stories and test stories in Rasa 3.x YAML, as lists of steps with their file lines."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.rasa.domain import Problems
from bot.rasa.yaml_source import item_line, line_of


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


Step = UserStep | ActionStep | BotTextStep | LoopStep | SlotStep | OrStep


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


_USER_TEXT_ENTITY = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<entity>[^):]+)(?::(?P<value>[^)]+))?\)"
                               r"|\[(?P<jtext>[^\]]+)\]\{(?P<json>[^}]+)\}")


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
        text = str(text).strip()
        annotated = []
        plain = text
        for match in _USER_TEXT_ENTITY.finditer(text):
            if match.group("entity"):
                annotated.append((match.group("entity"), match.group("value") or match.group("text"), None, None))
        if annotated:
            plain = _USER_TEXT_ENTITY.sub(lambda m: m.group("text") or m.group("jtext"), text)
            entities = entities or tuple(annotated)
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
            problems.add(file, line, f"{what}: checkpoints are not supported; write the story out in full")
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
