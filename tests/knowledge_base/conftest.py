from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pytest

from nlu.embedder import Embedder, FloatMatrix, get_embedder

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class RememberingEmbedder(Embedder):
    """The real process embedder, remembering rows per text so tests embed the demo FAQ only once."""

    def __init__(self, real: Embedder) -> None:
        # In-process passes: every pass, the micro-batcher's too, then goes through `encode` below (encoder
        # processes would run the real encoder and skip it).
        super().__init__(processes=0)
        self.real = real
        self.rows: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        missing = [t for t in dict.fromkeys(texts) if t not in self.rows]
        if missing:
            for text, row in zip(missing, self.real.encode(missing), strict=True):
                self.rows[text] = row
        return np.vstack([self.rows[t] for t in texts]).astype(np.float32)


@pytest.fixture(scope="session")
def embedder() -> RememberingEmbedder:
    return RememberingEmbedder(get_embedder())
