"""YAML read into plain dicts and lists that remember the line each mapping, list and item started on."""
from __future__ import annotations

import re
from typing import Any

import yaml


class LineDict(dict[str, Any]):
    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    line: int = 0
    item_lines: list[int]


class YamlSyntaxError(Exception):
    def __init__(self, problem: str, line: int | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


class _Loader(yaml.SafeLoader):
    pass


# YAML 1.2 as Rasa reads it (ruamel, version 1.2): only true/false are booleans; yes/no/on/off stay text
# (financial-demo's `value: no` of a from_intent mapping is the string "no" its validation action compares with)
_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
                                   for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[str(key)] = loader.construct_object(value_node, deep=True)
        out.key_lines[str(key)] = key_node.start_mark.line + 1
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load_yaml(text: str) -> Any:
    """Parse YAML; syntax errors carry the line number."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise YamlSyntaxError(f"YAML syntax error: {error.problem or error.context}",
                              mark.line + 1 if mark is not None else None) from error
    except yaml.YAMLError as error:
        raise YamlSyntaxError(f"YAML error: {error}", None) from error


def line_of(value: Any, key: str | None = None, default: int = 0) -> int:
    if isinstance(value, LineDict):
        return value.key_lines.get(key, value.line) if key is not None else value.line
    if isinstance(value, LineList):
        return value.line
    return default


def item_line(items: Any, index: int, default: int = 0) -> int:
    if isinstance(items, LineList) and index < len(items.item_lines):
        return items.item_lines[index]
    return default
