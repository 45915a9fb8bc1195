"""Entity roles and groups as DIET reports them: learned from the project's annotated training examples.

DIET tags each token with role and group labels learnt from annotations such as
`from [Berlin]{"entity": "city", "role": "departure"}`. Here, per entity type whose annotations carry a role or a
group, a logistic regression learns the (role, group) label of an occurrence from what DIET's token features see
around it: the words before and after (two each side, sentence edges marked), the entity's own words, and its
place among the same entity's occurrences in the message (first, second, ...: what makes groups "1" and "2"). An
entity type annotated with a single label always gets it; one never annotated with roles or groups gets none.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nlu.training_data import Example

_WORD = re.compile(r"\w+", re.UNICODE)
_NONE = "\x00"


def _label(role: str | None, group: str | None) -> str:
    return f"{role or _NONE}\x1f{group or _NONE}"


def _unlabel(label: str) -> tuple[str | None, str | None]:
    role, group = label.split("\x1f")
    return (None if role == _NONE else role), (None if group == _NONE else group)


def features(text: str, start: int, end: int, index: int, count: int) -> dict[str, float]:
    """What the model sees of one occurrence (index: its place among the same entity's occurrences)."""
    before = [w.lower() for w in _WORD.findall(text[:start])]
    after = [w.lower() for w in _WORD.findall(text[end:])]
    out: dict[str, float] = {"bias": 1.0, f"index={min(index, 3)}": 1.0,
                             f"last={index == count - 1}": 1.0}
    for offset in (1, 2):
        out[f"prev{offset}={before[-offset] if len(before) >= offset else '<s>'}"] = 1.0
        out[f"next{offset}={after[offset - 1] if len(after) >= offset else '</s>'}"] = 1.0
    for word in _WORD.findall(text[start:end].lower()):
        out[f"self={word}"] = 0.5
    return out


@dataclass
class _EntityModel:
    constant: str | None = None
    model: Any = None
    vectorizer: Any = None

    def predict(self, rows: list[dict[str, float]]) -> list[str]:
        if self.constant is not None:
            return [self.constant] * len(rows)
        return [str(label) for label in self.model.predict(self.vectorizer.transform(rows))]


class RoleModel:
    """Per entity type: (role, group) of each occurrence, learnt from the annotations."""

    def __init__(self, examples: Iterable[Example]) -> None:
        rows: dict[str, list[dict[str, float]]] = {}
        labels: dict[str, list[str]] = {}
        annotated: set[str] = set()
        for example in examples:
            by_entity: dict[str, list[Any]] = {}
            for annotation in sorted(example.entities, key=lambda a: a.start):
                by_entity.setdefault(annotation.entity, []).append(annotation)
                if annotation.role or annotation.group:
                    annotated.add(annotation.entity)
            for entity, found in by_entity.items():
                for index, annotation in enumerate(found):
                    rows.setdefault(entity, []).append(features(example.text, annotation.start, annotation.end,
                                                                index, len(found)))
                    labels.setdefault(entity, []).append(_label(annotation.role, annotation.group))
        self.models: dict[str, _EntityModel] = {}
        for entity in annotated:
            distinct = sorted(set(labels[entity]))
            if len(distinct) == 1:
                self.models[entity] = _EntityModel(constant=distinct[0])
                continue
            from sklearn.feature_extraction import DictVectorizer
            from sklearn.linear_model import LogisticRegression

            vectorizer = DictVectorizer()
            matrix = vectorizer.fit_transform(rows[entity])
            model = LogisticRegression(C=10.0, max_iter=2000)
            model.fit(matrix, labels[entity])
            self.models[entity] = _EntityModel(model=model, vectorizer=vectorizer)

    def __bool__(self) -> bool:
        return bool(self.models)

    def label(self, text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The entities with `role` / `group` set as learnt (entities without offsets are left as they are)."""
        out = [dict(e) for e in entities]
        by_entity: dict[str, list[int]] = {}
        for position, entity in enumerate(out):
            if entity.get("entity") in self.models and isinstance(entity.get("start"), int) and \
                    isinstance(entity.get("end"), int):
                by_entity.setdefault(str(entity["entity"]), []).append(position)
        for name, positions in by_entity.items():
            positions.sort(key=lambda p: int(out[p]["start"]))
            rows = [features(text, int(out[p]["start"]), int(out[p]["end"]), index, len(positions))
                    for index, p in enumerate(positions)]
            for p, label in zip(positions, self.models[name].predict(rows), strict=True):
                role, group = _unlabel(label)
                out[p].pop("role", None)
                out[p].pop("group", None)
                if role:
                    out[p]["role"] = role
                if group:
                    out[p]["group"] = group
        return out
