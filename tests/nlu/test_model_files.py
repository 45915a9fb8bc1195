"""Model files written by several processes at once (two API processes starting on one models folder)."""
from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nlu.embedder import Embedder
from nlu.model import EmbeddingCache


class CountingEmbedder:
    """Stands in for the encoders only: these tests are about the cache file, not the vectors."""

    encoder_id = "test"

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        return np.stack([np.full(Embedder.dim, float(len(text)), dtype=np.float32) for text in texts])


def _fill(path: str, worker: int, rounds: int) -> None:
    cache = EmbeddingCache(Path(path))
    for round_ in range(rounds):
        texts = [f"worker {worker} round {round_} text {i}" for i in range(20)]
        rows = cache.encode(texts, CountingEmbedder())  # type: ignore[arg-type]
        assert rows.shape == (20, Embedder.dim)


def test_two_processes_filling_one_embedding_cache_both_finish_and_leave_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "models" / "embedding-cache.npz"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_fill, args=(str(path), worker, 15)) for worker in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
    assert [process.exitcode for process in workers] == [0, 0, 0]
    # The file left behind is whole and readable, and no staging file is left over.
    with np.load(path, allow_pickle=False) as stored:
        assert stored["rows"].shape[1] == Embedder.dim
        assert len(stored["keys"]) == len(stored["rows"]) >= 20
    assert [p.name for p in path.parent.iterdir()] == ["embedding-cache.npz"]
