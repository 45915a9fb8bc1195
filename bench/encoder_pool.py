"""Serving-process CPU per round trip through the NLU encoder processes (nlu/_encoder_pool.py).

    python bench/encoder_pool.py [--module nlu._encoder_pool] [--processes 2] [--scale 1.0]

Starts an ``EncoderPool`` (2 processes, the backend and helper threads the embedder uses), then per phase
``callers`` coroutines call ``pool.encode`` back to back with batches of ``batch`` texts until ``requests``
have run (after 20 unmeasured ones): 64 callers (a queue at each worker) with batches of 1, 8 and 32 texts,
and 2 callers (what the micro-batcher keeps in flight) with 1 and 8. One JSON line per phase: this process's
CPU per request (user and system; everything the pool does here: sending, reading, waking the loop),
context switches per request, the workers' CPU per request (/proc), requests/s and wall latency p50/p99, and
the 1-minute load average. Wall figures move with the machine's load; the CPU figures much less.

``--module`` loads another implementation with the same API, e.g. the ProcessPoolExecutor one it replaced:
``git show ad1d283~1:nlu/_encoder_pool.py > /tmp/base/encoder_pool_base.py`` and
``PYTHONPATH=/tmp/base:. python bench/encoder_pool.py --module encoder_pool_base``.

Experiment log (variants tried and dropped, with their figures): docs/experiments.md.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import resource
import time
from typing import Any

from _common import percentile
from proc_cpu import cpu_seconds

TEXTS = [f"where is my order #{10000 + i}, it was {i} days ago" if i % 3 == 0 else
         f"do you have red hoodies in size {i % 5 + 38}" if i % 3 == 1 else
         f"我的订单{20000 + i}什么时候到" for i in range(600)]
# (callers, texts per request, requests)
PHASES = ((64, 1, 1000), (64, 8, 300), (64, 32, 100), (2, 1, 400), (2, 8, 200))


async def _phase(pool: Any, callers: int, batch: int, requests: int) -> dict[str, Any]:
    left = [20]
    latencies: list[float] = []

    async def caller(k: int) -> None:
        i = k
        while left[0] > 0:
            left[0] -= 1
            texts = [TEXTS[(i * batch + j) % len(TEXTS)] for j in range(batch)]
            i += callers
            started = time.perf_counter()
            rows = await pool.encode(texts)
            latencies.append((time.perf_counter() - started) * 1000)
            if rows.shape[0] != batch:
                raise RuntimeError(f"{rows.shape[0]} rows for {batch} texts")

    await asyncio.gather(*(caller(k) for k in range(min(callers, 8))))  # warm up
    latencies.clear()
    left[0] = requests
    pids = pool.pids()
    wall, usage, workers = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF), cpu_seconds(pids)
    await asyncio.gather(*(caller(k) for k in range(callers)))
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    workers = cpu_seconds(pids) - workers
    user, system = after.ru_utime - usage.ru_utime, after.ru_stime - usage.ru_stime
    switches = after.ru_nvcsw + after.ru_nivcsw - usage.ru_nvcsw - usage.ru_nivcsw
    return {"callers": callers, "batch": batch, "requests": requests, "seconds": round(wall, 2),
            "requests_per_s": round(requests / wall, 1),
            "serving_cpu_us_per_request": round((user + system) * 1e6 / requests, 1),
            "serving_user_us": round(user * 1e6 / requests, 1), "serving_system_us": round(system * 1e6 / requests, 1),
            "context_switches_per_request": round(switches / requests, 2),
            "worker_cpu_ms_per_request": round(workers * 1e3 / requests, 2),
            "latency_ms_p50": round(percentile(latencies, 0.5), 1),
            "latency_ms_p99": round(percentile(latencies, 0.99), 1),
            "restarts": pool.restarts, "load_1min": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", default="nlu._encoder_pool", help="module with the EncoderPool to measure")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every phase's request count")
    args = parser.parse_args()
    from nlu.embedder import default_backend

    module = importlib.import_module(args.module)
    pool = module.EncoderPool(args.processes, backend=default_backend(), threads=1, helper_threads=2)
    started = time.perf_counter()
    pool.start()
    print(json.dumps({"module": args.module, "processes": args.processes,
                      "start_seconds": round(time.perf_counter() - started, 2)}), flush=True)
    try:
        for callers, batch, requests in PHASES:
            print(json.dumps(asyncio.run(_phase(pool, callers, batch, max(1, int(requests * args.scale))))),
                  flush=True)
    finally:
        pool.close()


if __name__ == "__main__":
    main()
