"""A Rasa 3.x domain: intents, entities, slots with mappings, responses, forms, actions, session config."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.rasa.yaml_source import item_line, line_of

SLOT_TYPES = ("text", "bool", "categorical", "float", "list", "any")
MAPPING_TYPES = ("from_entity", "from_text", "from_intent", "from_trigger_intent", "custom")
REQUESTED_SLOT = "requested_slot"
DEFAULT_ACTIONS = (
    "action_listen", "action_restart", "action_session_start", "action_default_fallback",
    "action_deactivate_loop", "action_revert_fallback_events", "action_default_ask_affirmation",
    "action_default_ask_rephrase", "action_two_stage_fallback", "action_back", "action_unlikely_intent",
    "action_extract_slots",
)


@dataclass
class Problems:
    """Everything wrong with a project, each with file and line."""

    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, file: str, line: int | None, problem: str) -> None:
        self.items.append({"file": file, "line": line or None, "problem": problem})

    def __bool__(self) -> bool:
        return bool(self.items)


@dataclass
class Slot:
    name: str
    type: str
    initial_value: Any = None
    influence_conversation: bool = True
    mappings: list[dict[str, Any]] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    min_value: float = 0.0
    max_value: float = 1.0
    source: str = ""
    line: int = 0

    def feature(self, value: Any) -> Any:
        """What the dialogue policies see of this slot (Rasa's featurisation, as a hashable value)."""
        if not self.influence_conversation:
            return None
        if self.type == "bool":
            return None if value is None else bool(value)
        if self.type == "categorical":
            if value is None:
                return None
            known = {str(v).lower(): v for v in self.values}
            return str(known.get(str(value).lower(), "__other__"))
        if self.type == "float":
            if value is None:
                return None
            try:
                number = float(value)
            except (TypeError, ValueError):
                return None
            return round(min(max(number, self.min_value), self.max_value), 2)
        if self.type == "list":
            return bool(value)
        return value is not None

    def to_rasa(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "initial_value": self.initial_value,
                               "influence_conversation": self.influence_conversation, "mappings": self.mappings}
        if self.type == "categorical":
            out["values"] = self.values
        if self.type == "float":
            out["min_value"], out["max_value"] = self.min_value, self.max_value
        return out


@dataclass
class Form:
    name: str
    required_slots: list[str]
    ignored_intents: list[str] = field(default_factory=list)


@dataclass
class Domain:
    intents: list[str] = field(default_factory=list)
    intent_properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    entities: list[str] = field(default_factory=list)
    roles: dict[str, list[str]] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    slots: dict[str, Slot] = field(default_factory=dict)
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    forms: dict[str, Form] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    session_expiration_minutes: float = 60.0
    carry_over_slots: bool = True
    # where each name was declared: (file, line)
    where: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def action_names(self) -> set[str]:
        return {*DEFAULT_ACTIONS, *self.actions, *self.forms, *(r for r in self.responses if "/" not in r),
                *(f"utter_{r.split('/')[0].removeprefix('utter_')}" for r in self.responses if "/" in r)}

    def to_rasa(self) -> dict[str, Any]:
        """The domain as Rasa sends it to the action server."""
        return {
            "version": "3.1",
            "intents": [{name: props} if props else name
                        for name, props in ((i, self.intent_properties.get(i, {})) for i in self.intents)],
            "entities": [{e: {"roles": self.roles.get(e, []), "groups": self.groups.get(e, [])}}
                         if self.roles.get(e) or self.groups.get(e) else e for e in self.entities],
            "slots": {name: slot.to_rasa() for name, slot in self.slots.items()},
            "responses": self.responses,
            "actions": self.actions,
            "forms": {name: {"required_slots": form.required_slots, "ignored_intents": form.ignored_intents}
                      for name, form in self.forms.items()},
            "session_config": {"session_expiration_time": self.session_expiration_minutes,
                               "carry_over_slots_to_new_session": self.carry_over_slots},
            "config": {"store_entities_as_slots": True},
        }


def _names(value: Any, *, file: str, what: str, problems: Problems) -> list[tuple[str, Any, int]]:
    """A Rasa name list: items are `name` or `{name: {properties}}`."""
    out: list[tuple[str, Any, int]] = []
    if value is None:
        return out
    if not isinstance(value, list):
        problems.add(file, line_of(value), f"'{what}' must be a list")
        return out
    for index, item in enumerate(value):
        line = item_line(value, index)
        if isinstance(item, str):
            out.append((item, {}, line))
        elif isinstance(item, dict) and len(item) == 1:
            name, props = next(iter(item.items()))
            out.append((str(name), props or {}, line))
        else:
            problems.add(file, line, f"'{what}' items must be names or one-key mappings, got {item!r}")
    return out


def merge_domain(parts: list[tuple[str, Any]], problems: Problems) -> Domain:
    """Read one or more domain files (a domain/ folder is merged as Rasa does)."""
    domain = Domain()
    for file, raw in parts:
        if raw is None:
            continue
        if not isinstance(raw, dict):
            problems.add(file, line_of(raw), "a domain file must be a mapping")
            continue
        for name, props, line in _names(raw.get("intents"), file=file, what="intents", problems=problems):
            if name not in domain.intents:
                domain.intents.append(name)
            if isinstance(props, dict) and props:
                domain.intent_properties[name] = dict(props)
            domain.where.setdefault(f"intent:{name}", (file, line))
        for name, props, line in _names(raw.get("entities"), file=file, what="entities", problems=problems):
            if name not in domain.entities:
                domain.entities.append(name)
            if isinstance(props, dict):
                domain.roles[name] = [str(r) for r in props.get("roles") or []]
                domain.groups[name] = [str(g) for g in props.get("groups") or []]
            domain.where.setdefault(f"entity:{name}", (file, line))
        _read_slots(raw.get("slots"), file, domain, problems)
        _read_responses(raw.get("responses"), file, domain, problems)
        _read_forms(raw.get("forms"), file, domain, problems)
        for name, _, line in _names(raw.get("actions"), file=file, what="actions", problems=problems):
            if name not in domain.actions:
                domain.actions.append(name)
            domain.where.setdefault(f"action:{name}", (file, line))
        session = raw.get("session_config")
        if isinstance(session, dict):
            try:
                domain.session_expiration_minutes = float(session.get("session_expiration_time", 60))
            except (TypeError, ValueError):
                problems.add(file, line_of(session, "session_expiration_time"),
                             "session_expiration_time must be a number of minutes")
            domain.carry_over_slots = bool(session.get("carry_over_slots_to_new_session", True))
        unknown = set(raw) - {"version", "intents", "entities", "slots", "responses", "forms", "actions",
                              "session_config", "config", "e2e_actions"}
        for key in sorted(unknown):
            problems.add(file, line_of(raw, key), f"unknown domain key '{key}'")
    if REQUESTED_SLOT not in domain.slots and domain.forms:
        domain.slots[REQUESTED_SLOT] = Slot(name=REQUESTED_SLOT, type="any", influence_conversation=False)
    return domain


def _read_slots(raw: Any, file: str, domain: Domain, problems: Problems) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        problems.add(file, line_of(raw), "'slots' must be a mapping of slot names")
        return
    for name, spec in raw.items():
        line = line_of(raw, name)
        if not isinstance(spec, dict):
            problems.add(file, line, f"slot '{name}' must be a mapping with 'type' and 'mappings'")
            continue
        slot_type = str(spec.get("type", ""))
        if slot_type not in SLOT_TYPES:
            problems.add(file, line_of(spec, "type") or line,
                         f"slot '{name}' has type {slot_type!r}; expected one of {', '.join(SLOT_TYPES)}")
            continue
        mappings = spec.get("mappings")
        if mappings is None:
            problems.add(file, line, f"slot '{name}' has no 'mappings' (Rasa 3 needs them; use type: custom)")
            mappings = []
        if not isinstance(mappings, list):
            problems.add(file, line_of(mappings) or line, f"slot '{name}': 'mappings' must be a list")
            mappings = []
        clean: list[dict[str, Any]] = []
        for index, mapping in enumerate(mappings):
            mline = item_line(mappings, index, line)
            if not isinstance(mapping, dict) or mapping.get("type") not in MAPPING_TYPES:
                kind = mapping.get("type") if isinstance(mapping, dict) else mapping
                problems.add(file, mline, f"slot '{name}': mapping type {kind!r} is not one of "
                                          f"{', '.join(MAPPING_TYPES)}")
                continue
            if mapping["type"] == "from_entity" and not mapping.get("entity"):
                problems.add(file, mline, f"slot '{name}': from_entity mapping needs 'entity'")
                continue
            if mapping["type"] in ("from_intent", "from_trigger_intent") and "value" not in mapping:
                problems.add(file, mline, f"slot '{name}': {mapping['type']} mapping needs 'value'")
                continue
            entry = dict(mapping.items())
            entry["_line"] = mline
            clean.append(entry)
        influence = spec.get("influence_conversation", slot_type != "any")
        slot = Slot(name=str(name), type=slot_type, initial_value=spec.get("initial_value"),
                    influence_conversation=bool(influence), mappings=clean,
                    values=list(spec.get("values") or []), source=file, line=line)
        if slot_type == "categorical" and not slot.values:
            problems.add(file, line, f"categorical slot '{name}' needs 'values'")
        if slot_type == "float":
            slot.min_value = float(spec.get("min_value", 0.0))
            slot.max_value = float(spec.get("max_value", 1.0))
        domain.slots[str(name)] = slot


def _read_responses(raw: Any, file: str, domain: Domain, problems: Problems) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        problems.add(file, line_of(raw), "'responses' must be a mapping of utter_ names")
        return
    for name, variations in raw.items():
        line = line_of(raw, name)
        if not str(name).startswith("utter_"):
            problems.add(file, line, f"response '{name}' must start with 'utter_'")
            continue
        if not isinstance(variations, list) or not variations:
            problems.add(file, line, f"response '{name}' must be a non-empty list of variations")
            continue
        clean = []
        for index, variation in enumerate(variations):
            if not isinstance(variation, dict) or not (
                    {"text", "image", "custom", "buttons", "attachment", "elements"} & set(variation)):
                problems.add(file, item_line(variations, index, line),
                             f"response '{name}': each variation needs text, image, buttons or custom")
                continue
            clean.append(dict(variation))
        domain.responses[str(name)] = clean
        domain.where.setdefault(f"response:{name}", (file, line))


def _read_forms(raw: Any, file: str, domain: Domain, problems: Problems) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        problems.add(file, line_of(raw), "'forms' must be a mapping of form names")
        return
    for name, spec in raw.items():
        line = line_of(raw, name)
        spec = spec or {}
        required = spec.get("required_slots") if isinstance(spec, dict) else None
        if not isinstance(required, list) or not all(isinstance(s, str) for s in required):
            problems.add(file, line, f"form '{name}' needs 'required_slots' as a list of slot names")
            continue
        ignored = spec.get("ignored_intents") or []
        domain.forms[str(name)] = Form(name=str(name), required_slots=list(required),
                                       ignored_intents=[ignored] if isinstance(ignored, str) else list(ignored))
        domain.where.setdefault(f"form:{name}", (file, line))
