"""Encoder processes (SHOPTALK_NLU_PROCESSES): the same vectors as in-process, crashes restarted, never a hang."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from nlu._encoder_pool import EncoderPool, EncoderUnavailable
from nlu.embedder import Embedder, default_processes, get_embedder

TEXTS = ["where is my order #12345?", "我的订单什么时候到", "", "x" * 3000, "🙂🙂", "SAVE10 für 3 Stück?"]
# A guard against a hang, not a speed check: an answer normally takes well under a second.
HANG_GUARD_S = 240.0


@pytest.fixture
def pooled() -> Iterator[Embedder]:
    embedder = Embedder(processes=1, backend=get_embedder().backend)
    try:
        yield embedder
    finally:
        embedder.close()


def test_processes_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPTALK_NLU_PROCESSES", "two")
    with pytest.raises(ValueError, match="SHOPTALK_NLU_PROCESSES"):
        default_processes()
    monkeypatch.setenv("SHOPTALK_NLU_PROCESSES", "-1")
    with pytest.raises(ValueError, match="0 or more"):
        default_processes()
    monkeypatch.setenv("SHOPTALK_NLU_PROCESSES", "2")
    assert Embedder().processes == 2
    assert Embedder().workers == 2
    monkeypatch.setenv("SHOPTALK_NLU_PROCESSES", "0")
    assert Embedder().encoder_pool() is None
    monkeypatch.delenv("SHOPTALK_NLU_PROCESSES")
    assert Embedder().processes == (2 if (os.cpu_count() or 1) >= 2 else 0)


def test_a_pool_needs_a_process() -> None:
    with pytest.raises(ValueError, match="at least one process"):
        EncoderPool(0, backend="onnx")


@pytest.mark.slow
async def test_pooled_rows_equal_in_process_rows(pooled: Embedder) -> None:
    rows = await asyncio.wait_for(pooled.embed_many(TEXTS), HANG_GUARD_S)
    single = await asyncio.wait_for(asyncio.gather(*(pooled.embed(t) for t in TEXTS)), HANG_GUARD_S)
    reference = get_embedder().encode(TEXTS)
    assert rows.shape == (len(TEXTS), Embedder.dim)
    assert np.abs(rows - reference).max() < 1e-5
    assert np.abs(np.stack(single) - reference).max() < 1e-5
    pool = pooled.encoder_pool()
    assert pool is not None
    assert len(pool.pids()) == 1
    assert os.getpid() not in pool.pids()


@pytest.mark.slow
async def test_a_killed_worker_is_replaced_and_its_request_retried(pooled: Embedder) -> None:
    pool = pooled.encoder_pool()
    assert pool is not None
    (victim,) = await asyncio.to_thread(pool.start)
    texts = [f"do you ship order {i} to Germany in size XL?" for i in range(600)]
    pending = asyncio.ensure_future(pool.encode(texts))
    await asyncio.sleep(0.2)  # the request is with the worker (600 texts take over a second)
    os.kill(victim, signal.SIGKILL)
    rows = await asyncio.wait_for(pending, HANG_GUARD_S)
    assert pool.restarts == 1
    assert victim not in pool.pids()
    assert np.abs(rows[:3] - get_embedder().encode(texts[:3])).max() < 1e-5
    # The new worker keeps serving.
    again = await asyncio.wait_for(pool.encode(["where is my parcel"]), HANG_GUARD_S)
    assert np.abs(again - get_embedder().encode(["where is my parcel"])).max() < 1e-5


@pytest.mark.slow
async def test_workers_that_cannot_start_fail_the_request_cleanly() -> None:
    pool = EncoderPool(1, backend="no-such-backend")
    try:
        with pytest.raises(EncoderUnavailable, match="died twice"):
            await asyncio.wait_for(pool.encode(["hello"]), HANG_GUARD_S)
        assert pool.restarts == 2
    finally:
        pool.close()


@pytest.mark.slow
def test_sync_encode_through_the_pool(pooled: Embedder) -> None:
    pool = pooled.encoder_pool()
    assert pool is not None
    rows = pool.encode_sync(TEXTS)
    assert np.abs(rows - get_embedder().encode(TEXTS)).max() < 1e-5
    assert pool.worker_cpu_seconds > 0.0


@pytest.mark.slow
def test_a_script_without_a_main_guard_can_use_encoder_processes(tmp_path: pytest.TempPathFactory) -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(str(tmp_path)) / "unguarded.py"
    # Spawned workers must not re-run this script (it would start workers from inside a worker).
    script.write_text(
        "import asyncio, os\n"
        "from nlu.embedder import Embedder\n"
        "embedder = Embedder(processes=1)\n"
        "rows = asyncio.run(embedder.embed_many(['where is my order', 'hello', 'bye', 'thanks', 'ok']))\n"
        "print('rows', rows.shape[0], embedder.encoder_pool().restarts)\n"
        "embedder.close()\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(script)], cwd=root, capture_output=True, text=True,
                          timeout=HANG_GUARD_S, env={**os.environ, "PYTHONPATH": str(root)}, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["rows", "5", "0"]


@pytest.fixture
def pool() -> Iterator[EncoderPool]:
    started = EncoderPool(1, backend=get_embedder().backend, helper_threads=2)
    try:
        yield started
    finally:
        started.close()


def _same_rows(rows: np.ndarray, texts: list[str]) -> bool:
    return bool(np.abs(rows - get_embedder().encode(texts)).max() < 1e-5)


@pytest.mark.slow
async def test_a_silent_worker_is_killed_its_request_fails_and_the_others_on_it_run_again(pool: EncoderPool) -> None:
    (victim,) = await asyncio.to_thread(pool.start)
    os.kill(victim, signal.SIGSTOP)  # alive, never answers
    pool.timeout_s = 1.0
    late = asyncio.ensure_future(pool.encode(["where is my order"]))
    await asyncio.sleep(0)  # sent with a 1 s deadline
    pool.timeout_s = HANG_GUARD_S
    queued = asyncio.ensure_future(pool.encode(["do you ship to Germany"]))  # behind it on the same worker
    with pytest.raises(EncoderUnavailable, match="no answer"):
        await asyncio.wait_for(late, HANG_GUARD_S)
    rows = await asyncio.wait_for(queued, HANG_GUARD_S)  # retried on the new worker
    assert _same_rows(rows, ["do you ship to Germany"])
    assert pool.restarts == 1
    assert victim not in pool.pids()


@pytest.mark.slow
def test_a_silent_worker_fails_a_blocking_request_too(pool: EncoderPool) -> None:
    (victim,) = pool.start()
    os.kill(victim, signal.SIGSTOP)
    pool.timeout_s = 1.0
    with pytest.raises(EncoderUnavailable, match="no answer"):
        pool.encode_sync(["where is my order"])
    assert pool.restarts == 1
    assert victim not in pool.pids()


@pytest.mark.slow
def test_a_worker_killed_under_a_blocking_request_is_replaced_and_the_request_retried(pool: EncoderPool) -> None:
    (victim,) = pool.start()
    texts = [f"do you ship order {i} to Germany in size XL?" for i in range(600)]
    killer = threading.Timer(0.2, os.kill, (victim, signal.SIGKILL))
    killer.start()
    rows = pool.encode_sync(texts)
    killer.join()
    assert pool.restarts == 1
    assert rows.shape == (600, Embedder.dim)
    assert _same_rows(rows[:3], texts[:3])


@pytest.mark.slow
async def test_an_idle_worker_that_died_is_replaced_before_the_request_goes_out(pool: EncoderPool) -> None:
    (victim,) = await asyncio.to_thread(pool.start)
    os.kill(victim, signal.SIGKILL)
    await asyncio.sleep(0.5)
    rows = await asyncio.wait_for(pool.encode(["hello"]), HANG_GUARD_S)
    assert _same_rows(rows, ["hello"])
    assert pool.restarts == 1
    assert victim not in pool.pids()


@pytest.mark.slow
async def test_an_error_in_a_worker_reaches_its_caller_and_the_worker_keeps_serving(pool: EncoderPool) -> None:
    with pytest.raises(TypeError):
        await asyncio.wait_for(pool.encode([None]), HANG_GUARD_S)  # type: ignore[list-item]
    rows = await asyncio.wait_for(pool.encode(["where is my parcel"]), HANG_GUARD_S)
    assert _same_rows(rows, ["where is my parcel"])
    assert pool.restarts == 0


@pytest.mark.slow
async def test_a_cancelled_request_does_not_shift_the_answers(pool: EncoderPool) -> None:
    await asyncio.to_thread(pool.start)
    big = asyncio.ensure_future(pool.encode([f"order {i} to Germany in size XL?" for i in range(300)]))
    await asyncio.sleep(0.1)
    big.cancel()
    small = await asyncio.wait_for(pool.encode(["where is my parcel", "hello"]), HANG_GUARD_S)
    assert small.shape == (2, Embedder.dim)
    assert _same_rows(small, ["where is my parcel", "hello"])
    assert pool.restarts == 0


@pytest.mark.slow
def test_event_loops_in_several_threads_and_blocking_callers_share_the_workers() -> None:
    shared = EncoderPool(2, backend=get_embedder().backend, helper_threads=2)
    texts = [f"do you have red hoodies in size {i}" for i in range(40)]

    async def many(offset: int) -> list[np.ndarray]:
        return list(await asyncio.gather(*(shared.encode(texts[i:i + 3]) for i in range(offset, 30, 2))))

    try:
        shared.start()
        with ThreadPoolExecutor(4) as threads:
            loops = [threads.submit(asyncio.run, many(offset)) for offset in (0, 1)]
            blocking = [threads.submit(shared.encode_sync, texts[i:i + 5]) for i in range(0, 40, 10)]
            for offset, done in zip((0, 1), loops, strict=True):
                for i, rows in zip(range(offset, 30, 2), done.result(timeout=HANG_GUARD_S), strict=True):
                    assert _same_rows(rows, texts[i:i + 3])
            for i, answer in zip(range(0, 40, 10), blocking, strict=True):
                assert _same_rows(answer.result(timeout=HANG_GUARD_S), texts[i:i + 5])
        assert shared.restarts == 0
    finally:
        shared.close()


@pytest.mark.slow
async def test_close_lets_a_request_in_flight_finish_and_a_later_request_starts_new_workers(pool: EncoderPool) -> None:
    (first,) = await asyncio.to_thread(pool.start)
    texts = [f"where is order {i}" for i in range(40)]
    pending = asyncio.ensure_future(pool.encode(texts))
    await asyncio.sleep(0.05)
    await asyncio.to_thread(pool.close)
    assert _same_rows(await asyncio.wait_for(pending, HANG_GUARD_S), texts)
    assert pool.pids() == []
    rows = await asyncio.wait_for(pool.encode(["hello"]), HANG_GUARD_S)
    assert _same_rows(rows, ["hello"])
    assert first not in pool.pids()
    assert pool.restarts == 0


@pytest.mark.slow
def test_start_reports_workers_that_cannot_load_their_models() -> None:
    broken = EncoderPool(1, backend="no-such-backend")
    try:
        with pytest.raises(EncoderUnavailable, match="could not load"):
            broken.start()
        assert broken.pids() == []
    finally:
        broken.close()


@pytest.mark.slow
async def test_a_request_larger_than_the_socket_while_a_large_answer_waits(pool: EncoderPool) -> None:
    # The worker blocks sending a 2 MB answer; the next request does not fit in the socket: the sender
    # must read that answer while it waits for room, or both sides wait (and the worker is killed).
    await asyncio.to_thread(pool.start)
    many = [f"order {i} to Germany" for i in range(600)]
    first = asyncio.ensure_future(pool.encode(many))
    await asyncio.sleep(0)  # sent
    long = [f"{i} " + "where is my order, it was sent to Germany " * 24 for i in range(400)]  # ~400 KB
    rows = await asyncio.wait_for(pool.encode(long), HANG_GUARD_S)
    assert _same_rows(rows[:2], long[:2])
    assert _same_rows((await first)[:2], many[:2])
    assert pool.restarts == 0


@pytest.mark.slow
async def test_a_lone_message_is_encoded_in_the_pool_not_in_the_serving_process(pooled: Embedder) -> None:
    # In-process passes for lone messages took the serving process's GIL and core under a load whose messages
    # arrive one at a time (SQLite's single writer), so with a pool every pass goes there.
    vector = await asyncio.wait_for(pooled.embed("where is my order?"), HANG_GUARD_S)
    pool = pooled.encoder_pool()
    assert pool is not None
    assert len(pool.pids()) == 1
    assert not pooled.loaded  # this process never loaded the models
    assert np.abs(vector - get_embedder().encode(["where is my order?"])[0]).max() < 1e-5
