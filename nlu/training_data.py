"""Rasa 3.x NLU training data (YAML): intents with annotated examples, synonyms, regexes, lookups."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nlu.errors import TrainingDataError

SUPPORTED_MAJOR_VERSIONS = ("2", "3")
ITEM_KINDS = ("intent", "synonym", "regex", "lookup")

# Rasa's annotation grammar: [text](entity), [text](entity:value), [text]{"entity": ...}, [text][{...}, ...]
_ANNOTATION = re.compile(
    r"\[(?P<text>[^\]\[]+?)\]"
    r"(?:\((?P<entity>[^:)]+?)(?::(?P<value>[^)]+))?\)"
    r"|\{(?P<dict>[^}]+?)\}"
    r"|\[(?P<list>\{.*?\})\])"
)


@dataclass(frozen=True)
class EntityAnnotation:
    entity: str
    start: int
    end: int
    text: str
    value: str
    role: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    entities: tuple[EntityAnnotation, ...] = ()
    source: str = ""


@dataclass
class TrainingData:
    examples: list[Example] = field(default_factory=list)
    # lower-cased surface form -> canonical value
    synonyms: dict[str, str] = field(default_factory=dict)
    regexes: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    @property
    def intents(self) -> list[str]:
        return sorted({example.intent for example in self.examples})

    def merge(self, other: TrainingData) -> TrainingData:
        merged = TrainingData(
            examples=[*self.examples, *other.examples],
            synonyms={**self.synonyms, **other.synonyms},
            regexes={name: list(patterns) for name, patterns in self.regexes.items()},
            lookups={name: list(values) for name, values in self.lookups.items()},
            warnings=[*self.warnings, *other.warnings],
            sources=[*self.sources, *other.sources],
        )
        for name, patterns in other.regexes.items():
            merged.regexes.setdefault(name, []).extend(patterns)
        for name, values in other.lookups.items():
            merged.lookups.setdefault(name, []).extend(values)
        return merged

    def fingerprint(self) -> str:
        payload = json.dumps(
            {
                "examples": [[e.text, e.intent] for e in self.examples],
                "synonyms": sorted(self.synonyms.items()),
                "regexes": sorted((k, sorted(v)) for k, v in self.regexes.items()),
                "lookups": sorted((k, sorted(v)) for k, v in self.lookups.items()),
            },
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def entity_vocabulary(self) -> dict[str, set[str]]:
        """Surface forms of every annotated entity, by entity name (used as extra lookup entries)."""
        vocabulary: dict[str, set[str]] = {}
        for example in self.examples:
            for annotation in example.entities:
                vocabulary.setdefault(annotation.entity, set()).add(annotation.text)
        return vocabulary


def parse_annotated_text(raw: str, *, source: str, line: int | None) -> tuple[str, list[EntityAnnotation]]:
    """Strip Rasa entity markup from one example, returning plain text and entity spans on it."""
    plain: list[str] = []
    entities: list[EntityAnnotation] = []
    position = 0
    cursor = 0
    for match in _ANNOTATION.finditer(raw):
        plain.append(raw[cursor:match.start()])
        position += match.start() - cursor
        surface = match.group("text")
        start, end = position, position + len(surface)
        for spec in _annotation_specs(match, source=source, line=line):
            entity = spec.get("entity")
            if not isinstance(entity, str) or not entity.strip():
                raise TrainingDataError(f"entity annotation {match.group(0)!r} has no entity name",
                                        source=source, line=line)
            value = spec.get("value", surface)
            entities.append(
                EntityAnnotation(
                    entity=entity.strip(), start=start, end=end, text=surface, value=str(value),
                    role=_optional_str(spec.get("role")), group=_optional_str(spec.get("group")),
                )
            )
        plain.append(surface)
        position = end
        cursor = match.end()
    plain.append(raw[cursor:])
    text = "".join(plain)
    leftover = re.search(r"\[[^\]]*\]\s*[({]", text)
    if leftover:
        raise TrainingDataError(f"malformed entity annotation near {leftover.group(0)!r} in {raw!r}",
                                source=source, line=line)
    return text, entities


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _annotation_specs(match: re.Match[str], *, source: str, line: int | None) -> list[dict[str, Any]]:
    if match.group("entity") is not None:
        spec: dict[str, Any] = {"entity": match.group("entity")}
        if match.group("value") is not None:
            spec["value"] = match.group("value")
        return [spec]
    raw_json = "{" + match.group("dict") + "}" if match.group("dict") is not None else "[" + match.group("list") + "]"
    try:
        decoded = json.loads(raw_json)
    except json.JSONDecodeError as error:
        raise TrainingDataError(f"entity annotation {match.group(0)!r} is not valid JSON ({error.msg})",
                                source=source, line=line) from error
    specs = decoded if isinstance(decoded, list) else [decoded]
    if not all(isinstance(item, dict) for item in specs):
        raise TrainingDataError(f"entity annotation {match.group(0)!r} must be a JSON object",
                                source=source, line=line)
    return specs


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _mapping(node: yaml.Node) -> dict[str, yaml.Node]:
    assert isinstance(node, yaml.MappingNode)
    return {str(key.value): value for key, value in node.value}


def _example_lines(node: yaml.Node, *, source: str, what: str) -> list[tuple[str, int]]:
    """The `- item` entries of an `examples:` value with their file line numbers."""
    if isinstance(node, yaml.ScalarNode):
        if node.style in ("|", ">"):
            first_line = _line(node) + 1
        else:
            first_line = _line(node)
        items: list[tuple[str, int]] = []
        for offset, raw_line in enumerate(str(node.value).split("\n")):
            stripped = raw_line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if not stripped.startswith("-"):
                raise TrainingDataError(
                    f"{what}: example {stripped!r} must start with '- '", source=source, line=first_line + offset
                )
            item = stripped[1:].strip()
            if item:
                items.append((item, first_line + offset))
        return items
    if isinstance(node, yaml.SequenceNode):
        items = []
        for child in node.value:
            if isinstance(child, yaml.ScalarNode):
                items.append((str(child.value), _line(child)))
            elif isinstance(child, yaml.MappingNode) and "text" in _mapping(child):
                text_node = _mapping(child)["text"]
                if not isinstance(text_node, yaml.ScalarNode):
                    raise TrainingDataError(f"{what}: 'text' must be a string", source=source, line=_line(child))
                items.append((str(text_node.value).strip(), _line(text_node)))
            else:
                raise TrainingDataError(f"{what}: each example must be a string or have a 'text' key",
                                        source=source, line=_line(child))
        return items
    raise TrainingDataError(f"{what}: 'examples' must be a block of '- ' lines or a list",
                            source=source, line=_line(node))


def parse_training_data(content: str, *, source: str = "<string>") -> TrainingData:
    """Parse one Rasa NLU YAML document; errors name the source, the line and the problem."""
    try:
        root = yaml.compose(content, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        raise TrainingDataError(f"YAML syntax error: {error.problem or error.context}", source=source,
                                line=line) from error
    except yaml.YAMLError as error:
        raise TrainingDataError(f"YAML error: {error}", source=source) from error
    data = TrainingData(sources=[source])
    if root is None:
        data.warnings.append(f"{source}: file is empty")
        return data
    if not isinstance(root, yaml.MappingNode):
        raise TrainingDataError("top level must be a mapping with 'version' and 'nlu'", source=source, line=_line(root))
    top = _mapping(root)
    version_node = top.get("version")
    if version_node is not None:
        version = str(version_node.value) if isinstance(version_node, yaml.ScalarNode) else ""
        if version.split(".")[0] not in SUPPORTED_MAJOR_VERSIONS:
            raise TrainingDataError(f"unsupported training data version {version!r} (expected \"3.1\")",
                                    source=source, line=_line(version_node))
    else:
        data.warnings.append(f"{source}: no 'version' key; assuming \"3.1\"")
    nlu_node = top.get("nlu")
    if nlu_node is None:
        return data
    if not isinstance(nlu_node, yaml.SequenceNode):
        raise TrainingDataError("'nlu' must be a list of intent/synonym/regex/lookup items", source=source,
                                line=_line(nlu_node))
    seen_texts: dict[str, str] = {}
    for item in nlu_node.value:
        if not isinstance(item, yaml.MappingNode):
            raise TrainingDataError("each 'nlu' item must be a mapping such as '- intent: greet'", source=source,
                                    line=_line(item))
        fields = _mapping(item)
        kinds = [kind for kind in ITEM_KINDS if kind in fields]
        if len(kinds) != 1:
            raise TrainingDataError(
                "each 'nlu' item needs exactly one of intent, synonym, regex, lookup"
                + (f" (found {', '.join(kinds)})" if kinds else f" (found keys {', '.join(fields)})"),
                source=source, line=_line(item),
            )
        kind = kinds[0]
        name_node = fields[kind]
        name = str(name_node.value).strip() if isinstance(name_node, yaml.ScalarNode) else ""
        if not name:
            raise TrainingDataError(f"'{kind}' needs a non-empty name", source=source, line=_line(name_node))
        examples_node = fields.get("examples")
        if examples_node is None:
            raise TrainingDataError(f"{kind} {name!r} has no 'examples'", source=source, line=_line(item))
        what = f"{kind} {name!r}"
        lines = _example_lines(examples_node, source=source, what=what)
        if not lines:
            raise TrainingDataError(f"{what} has no examples", source=source, line=_line(examples_node))
        if kind == "intent":
            for raw, line in lines:
                text, entities = parse_annotated_text(raw, source=source, line=line)
                text = text.strip()
                if not text:
                    continue
                previous = seen_texts.get(text.lower())
                if previous is not None and previous != name:
                    data.warnings.append(f"{source}:{line}: {text!r} is an example of both {previous!r} and {name!r}")
                seen_texts[text.lower()] = name
                data.examples.append(Example(text=text, intent=name, entities=tuple(entities),
                                             source=f"{source}:{line}"))
                for annotation in entities:
                    if annotation.value != annotation.text:
                        data.synonyms[annotation.text.lower()] = annotation.value
        elif kind == "synonym":
            for raw, _ in lines:
                data.synonyms[raw.lower()] = name
        elif kind == "regex":
            for raw, line in lines:
                try:
                    re.compile(raw)
                except re.error as error:
                    raise TrainingDataError(f"regex {name!r}: {raw!r} does not compile ({error})", source=source,
                                            line=line) from error
                data.regexes.setdefault(name, []).append(raw)
        else:
            data.lookups.setdefault(name, []).extend(raw for raw, _ in lines)
    return data


def training_files(paths: Iterable[Path | str]) -> list[Path]:
    files: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise TrainingDataError("file or folder does not exist", source=str(path))
    return files


def load_training_data(paths: Sequence[Path | str]) -> TrainingData:
    """Read and merge every Rasa YAML file in paths (folders are searched recursively)."""
    data = TrainingData()
    for path in training_files(paths):
        try:
            content = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise TrainingDataError(f"not UTF-8 text ({error.reason})", source=str(path)) from error
        data = data.merge(parse_training_data(content, source=str(path)))
    return data
