"""Encoder processes: MiniLM + USE forward passes outside the serving process's GIL.

One ``EncoderPool`` holds ``processes`` worker processes (spawned, not forked: the serving process
has threads and an event loop), each with its own single-threaded ``Embedder``. The pool starts on
first use (or ``start()``), so tests and scripts that never parse concurrently pay nothing.

A worker that dies (killed, out of memory, a crash in native code) breaks the executor: every
request in flight fails with ``BrokenProcessPool``; the pool is then replaced and each failed
request is retried once on the new workers. A request that still fails raises
``EncoderUnavailable``, and so does one that gets no answer within ``timeout_s`` plus 50 ms per
text (its workers are killed and replaced), so a caller never waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import sys
import threading
import time
import types
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np
import numpy.typing as npt

FloatMatrix = npt.NDArray[np.float32]

# The embedder of a worker process (set by `_init_worker`).
_worker_embedder: Any = None


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Spawned workers re-run the parent's ``__main__`` script unless it is hidden while they start
    (a script without ``if __name__ == "__main__"`` would start the server again in each worker);
    they need nothing from it. Workers start inside ``submit`` (ProcessPoolExecutor spawns on demand)."""
    real = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if real is not None:
            sys.modules["__main__"] = real


class EncoderUnavailable(RuntimeError):
    """The encoder processes could not answer (crashed twice, or timed out)."""


def _init_worker(backend: str, threads: int, helper_threads: int) -> None:
    global _worker_embedder
    # Imported here: the module is imported by the serving process too, which must not load models.
    from nlu.embedder import Embedder

    _worker_embedder = Embedder(threads=threads, workers=helper_threads, backend=backend, processes=0)
    _worker_embedder.load()


def _encode_in_worker(texts: list[str]) -> tuple[FloatMatrix, float]:
    """Rows for texts and this call's CPU seconds in the worker (for the benchmark's CPU figures)."""
    started = time.process_time()
    rows: FloatMatrix = _worker_embedder.encode(texts)
    return rows, time.process_time() - started


def _worker_pid() -> int:
    time.sleep(0.2)  # keep this worker busy so concurrent warm-up calls reach the other workers
    return os.getpid()


class EncoderPool:
    """``processes`` encoder processes behind an async ``encode`` (thread-safe; any event loop)."""

    def __init__(self, processes: int, *, backend: str, threads: int = 1, helper_threads: int = 1,
                 timeout_s: float = 120.0) -> None:
        if processes < 1:
            raise ValueError(f"an encoder pool needs at least one process, got {processes}")
        self.processes = processes
        self.backend = backend
        self.threads = threads
        self.helper_threads = helper_threads
        self.timeout_s = timeout_s
        self.restarts = 0
        # CPU seconds the workers spent in encode calls (summed from their answers).
        self.worker_cpu_seconds = 0.0
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    # ---------- lifecycle ----------
    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.processes, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(self.backend, self.threads, self.helper_threads),
        )

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = self._new_executor()
            return self._executor

    def start(self) -> list[int]:
        """Spawn every worker and load its models now; returns the worker pids."""
        executor = self._current()
        seen: set[int] = set()
        # A worker that loads its models first takes every waiting call; each round waits for it.
        for _ in range(20):
            with self._lock, _main_module_hidden():
                futures = [executor.submit(_worker_pid) for _ in range(self.processes)]
            seen.update(future.result(timeout=max(self.timeout_s, 300.0)) for future in futures)
            if len(seen) >= self.processes:
                break
        return self.pids()

    def _replace(self, broken: ProcessPoolExecutor, *, kill: bool) -> None:
        with self._lock:
            if self._executor is not broken:
                return  # another request already replaced it
            self._executor = None
            self.restarts += 1
        if kill:
            for process in list(getattr(broken, "_processes", {}).values()):
                process.kill()
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def pids(self) -> list[int]:
        """Pids of the running workers (empty before the first use)."""
        executor = self._executor
        return sorted(getattr(executor, "_processes", {}) or {}) if executor is not None else []

    # ---------- encoding ----------
    def _submit(self, texts: list[str]) -> tuple[ProcessPoolExecutor, Future[tuple[FloatMatrix, float]]]:
        executor = self._current()
        try:
            with self._lock, _main_module_hidden():
                return executor, executor.submit(_encode_in_worker, texts)
        except BrokenProcessPool:
            self._replace(executor, kill=False)
            executor = self._current()
            with self._lock, _main_module_hidden():
                return executor, executor.submit(_encode_in_worker, texts)

    def _timeout(self, batch: list[str]) -> float:
        return self.timeout_s + 0.05 * len(batch)

    def _accept(self, answer: tuple[FloatMatrix, float]) -> FloatMatrix:
        rows, cpu = answer
        self.worker_cpu_seconds += cpu
        return rows

    async def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Rows of ``Embedder.encode(texts)`` computed in a worker process."""
        batch = list(texts)
        for attempt in (1, 2):
            executor, future = self._submit(batch)
            try:
                answer = await asyncio.wait_for(asyncio.wrap_future(future), timeout=self._timeout(batch))
            except (BrokenProcessPool, TimeoutError) as error:
                self._after_failure(executor, batch, error, last_attempt=attempt == 2)
                continue
            return self._accept(answer)
        raise AssertionError("unreachable")

    def encode_sync(self, texts: Sequence[str]) -> FloatMatrix:
        """Blocking variant of ``encode`` (same retry and timeout rules)."""
        batch = list(texts)
        for attempt in (1, 2):
            executor, future = self._submit(batch)
            try:
                answer = future.result(timeout=self._timeout(batch))
            except (BrokenProcessPool, TimeoutError) as error:
                self._after_failure(executor, batch, error, last_attempt=attempt == 2)
                continue
            return self._accept(answer)
        raise AssertionError("unreachable")

    def _after_failure(self, executor: ProcessPoolExecutor, batch: list[str], error: Exception, *,
                       last_attempt: bool) -> None:
        """A pass failed: replace the workers, then raise EncoderUnavailable unless the pass may run once more.

        A dead worker (BrokenProcessPool) gets one retry; a worker that gave no answer is killed, not retried."""
        if isinstance(error, TimeoutError):
            self._replace(executor, kill=True)
            raise EncoderUnavailable(
                f"encoder process gave no answer for {len(batch)} texts in {self._timeout(batch):.0f} s; "
                "workers restarted") from error
        self._replace(executor, kill=False)
        if last_attempt:
            raise EncoderUnavailable(f"encoder process died twice while encoding {len(batch)} texts") from error
