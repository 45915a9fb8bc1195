"""Policy thresholds."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from bot.policy import PolicyThresholds, decide


@dataclass
class Parsed:
    intent: str
    confidence: float
    text: str = "text"
    language: str = "en"
    entities: tuple[Any, ...] = ()
    embedding: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))

    def entity_values(self, entity: str) -> list[Any]:
        return []

    def to_rasa(self, *, include_embedding: bool = False) -> dict[str, Any]:
        return {}


@pytest.mark.parametrize(("intent", "confidence", "before", "action"), [
    ("order_status", 0.9, 0, "answer"),
    ("order_status", 0.5, 0, "confirm"),
    ("order_status", 0.2, 0, "clarify"),
    ("nlu_fallback", 0.3, 0, "clarify"),
    ("nlu_fallback", 0.3, 1, "handoff"),  # the second unclear message in a row goes to a person
    ("human_handoff", 0.9, 0, "handoff"),
    ("complaint", 0.7, 0, "handoff"),
    ("out_of_scope", 0.8, 0, "answer"),
])
def test_policy_by_confidence(intent: str, confidence: float, before: int, action: str) -> None:
    decision = decide(Parsed(intent, confidence), thresholds=PolicyThresholds(), misunderstood_before=before)
    assert decision.action == action

