"""What the REST channel's throttle adds to every chat message: the two limiter hits (per client, per sender) that
`api.throttle.throttle_rest_client` makes, on process memory and on Redis, with the default limits.

    python bench/throttle_cost.py [--messages 3000] [--redis redis://127.0.0.1:6379/15]

Prints one JSON object: per store, median and p99 latency of a message's two hits and the CPU they cost."""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from typing import Any

from _common import percentile

from kit.ratelimit import RateLimiter
from kit.settings import RateLimitSettings


async def measure(redis_url: str | None, messages: int, senders: int) -> dict[str, Any]:
    limits = RateLimitSettings()
    limiter = RateLimiter(redis_url, prefix=f"bench:{uuid.uuid4().hex[:8]}")  # a fresh namespace each run
    latencies = []
    cpu_before = time.process_time()
    try:
        for n in range(messages):
            started = time.perf_counter()
            await limiter.hit(limits.rest_client, "rest.client", "token:1")
            await limiter.hit(limits.rest_sender, "rest.sender", f"shopper-{n % senders}")
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        await limiter.close()
    cpu_ms = (time.process_time() - cpu_before) * 1000 / messages
    return {"store": "redis" if redis_url else "memory", "messages": messages,
            "median_ms": round(statistics.median(latencies), 3),
            "p99_ms": round(percentile(latencies, 0.99), 3), "cpu_ms_per_message": round(cpu_ms, 3)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    results = [await measure(None, args.messages, args.senders)]
    if args.redis:
        results.append(await measure(args.redis, args.messages, args.senders))
    return {"benchmark": "throttle_cost", "limits": {"rest_client": RateLimitSettings().rest_client,
                                                     "rest_sender": RateLimitSettings().rest_sender},
            "stores": results}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--senders", type=int, default=50, help="shoppers the messages come from, in turn")
    parser.add_argument("--redis", default=None, help="a Redis URL to measure the shared store too")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))  # noqa: T201
