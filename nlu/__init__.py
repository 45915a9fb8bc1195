"""NLU service API: `result = await nlu.parse(text)` (or `get_nlu_service().parse(text)`).

`result.intent`, `.confidence`, `.intent_ranking`, `.entities`, `.language`, `.embedding`, `.to_rasa()`.
Intent `nlu_fallback` (below the rejection threshold) and `out_of_scope` both set `result.out_of_scope`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from nlu.embedder import Embedder, get_embedder
from nlu.entities import Entity
from nlu.errors import NluModelInvalid, NluModelMissing, TrainingDataError
from nlu.model import NluModel
from nlu.service import IntentScore, NluService, ParseResult, TrainReport, get_nlu_service
from nlu.training_data import TrainingData, load_training_data, parse_training_data

__all__ = [
    "Embedder", "Entity", "IntentScore", "NluModel", "NluModelInvalid", "NluModelMissing", "NluService",
    "ParseResult", "TrainReport", "TrainingData", "TrainingDataError", "get_embedder", "get_nlu_service",
    "load", "load_training_data", "parse", "parse_training_data", "set_lookup", "train",
]


async def parse(text: str) -> ParseResult:
    """Parse one message with the process-wide service (loads or trains a model on first use)."""
    return await get_nlu_service().parse(text)


def train(*, data_paths: Sequence[Path] | None = None) -> TrainReport:
    """Train from Rasa YAML (default: the shipped shop data), save under <data_dir>/models and serve it."""
    return get_nlu_service().train(data_paths=data_paths)


def load(*, version: str | None = None) -> NluModel:
    """Serve the newest saved model (or `version`)."""
    return get_nlu_service().load(version=version)


def set_lookup(entity: str, values: Iterable[str] | Mapping[str, str]) -> None:
    """Replace a runtime lookup table, e.g. set_lookup("product", catalog_names)."""
    get_nlu_service().set_lookup(entity, values)
