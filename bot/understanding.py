"""What the engine needs from the NLU: a parse with intent, confidence, entities, language and embedding.

`nlu.service.NluService` satisfies `MessageParser`; tests may use a smaller trained parser.
"""
from __future__ import annotations

import re
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

FALLBACK_INTENT = "nlu_fallback"
OUT_OF_SCOPE_INTENT = "out_of_scope"
_HAS_LETTERS = re.compile(r"[A-Za-z\u00c0-\u024f\u3400-\u4dbf\u4e00-\u9fff\u3040-\u30ff\uac00-\ud7af]")


class ParsedEntity(Protocol):
    @property
    def entity(self) -> str: ...
    @property
    def value(self) -> Any: ...
    def to_rasa(self) -> dict[str, Any]: ...


class ParsedMessage(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def intent(self) -> str: ...
    @property
    def confidence(self) -> float: ...
    @property
    def entities(self) -> tuple[ParsedEntity, ...]: ...
    @property
    def language(self) -> str: ...
    @property
    def embedding(self) -> npt.NDArray[np.float32]: ...
    def entity_values(self, entity: str) -> list[Any]: ...
    def to_rasa(self, *, include_embedding: bool = False) -> dict[str, Any]: ...


class MessageParser(Protocol):
    async def parse(self, text: str) -> ParsedMessage: ...


def has_letters(text: str) -> bool:
    """Whether the text carries language at all (an order number or a postcode does not)."""
    return bool(_HAS_LETTERS.search(text))


def usable_embedding(parsed: ParsedMessage | None) -> npt.NDArray[np.float32] | None:
    if parsed is None:
        return None
    embedding = parsed.embedding
    return embedding if embedding is not None and embedding.size > 0 and bool(np.any(embedding)) else None
