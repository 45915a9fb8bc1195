"""CPU cost of one chat turn on the engine's own path, measured in-process so machine load barely moves it.

    python bench/turn_cost.py [--backend sqlite|postgres|both] [--turns 300] [--warmup 60] [--profile]
                              [--benchmarks ../shared/benchmarks]
                              [--postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

For each backend: a fresh database (migrated, demo shop loaded, as bench/chat_load.py), then the REST channel's
`ChannelRuntime.handle(..., delivered_inline=True)` (what `POST /webhooks/rest/webhook` calls) runs `turns`
messages of chat_load's mix (seed 7, a new conversation every 8 messages), one at a time after `warmup`
unmeasured ones. Turns run one after another, so the process CPU time between two points is this turn's work
(including aiosqlite's thread); the HTTP layer, the load generator and PostgreSQL's own server CPU are not in it.
Each measured turn includes the REST channel's credential check as chat_load's signed requests cost it (the
X-ShopTalk-Signature HMAC over the body; no statement), counted in `engine`.
Per message it reports CPU ms split into:
- nlu: `bot.understand` (the parse) in this process; CPU of child processes (the NLU's encoder workers, if
  it runs them) over the measured turns is reported apart,
- db_driver: between SQLAlchemy's before/after cursor execute (the DBAPI adapter and driver: asyncpg's protocol,
  aiosqlite's thread and SQLite itself),
- engine: the rest (engine, skills, SQLAlchemy ORM/Core compilation, pydantic),
plus statements per turn (all, and by kind). `--profile` adds cProfile's CPU self time by top-level package
and the top functions (cProfile inflates Python-heavy code: use it to rank, the figures above to size).
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from _common import ROOT, scratch_postgres
from chat_load import SHOPPING_TURNS, message_mix, prepare_database
from proc_cpu import descendants, processes


class StatementMeter:
    """Counts statements and the CPU spent inside the driver (before -> after cursor execute)."""

    def __init__(self) -> None:
        self.count = 0
        self.kinds: Counter[str] = Counter()
        self.driver_cpu = 0.0
        self._started: list[float] = []

    def before(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.count += 1
        self.kinds[statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"] += 1
        self._started.append(time.process_time())

    def after(self, *_args: Any) -> None:
        if self._started:
            self.driver_cpu += time.process_time() - self._started.pop()


def children_cpu_seconds() -> float:
    """CPU of this process's live descendants (the NLU's encoder workers, when it runs them), from /proc."""
    table = processes()
    return sum(table[pid].seconds for pid in descendants(table, os.getpid()))


def label_of(text: str, parsed: Any) -> str:
    if text in SHOPPING_TURNS:
        return text
    return f"bitext -> {parsed.intent}" if parsed is not None else "bitext"


def package_of(filename: str) -> str:
    path = filename.replace("\\", "/")
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in path:
            rest = path.split(marker, 1)[1]
            parts = rest.split("/")
            return parts[1] if marker == "/lib/python3" and len(parts) > 1 else parts[0]
    if path.startswith(str(ROOT)):
        rel = path[len(str(ROOT)) + 1:].split("/")
        return "/".join(rel[:2]) if rel[0] in ("bot", "commerce") and len(rel) > 2 else rel[0]
    return path.split("/")[0] or path


def profile_summary(profile: cProfile.Profile, turns: int, top: int = 25) -> dict[str, Any]:
    stats = pstats.Stats(profile)
    by_package: dict[str, float] = defaultdict(float)
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_package[package_of(filename)] += tottime
        rows.append((tottime, cumtime, calls, f"{package_of(filename)}:{Path(filename).name}:{line}:{name}"))
    rows.sort(reverse=True)
    return {
        "self_ms_per_msg_by_package": {k: round(v * 1000 / turns, 2) for k, v in
                                       sorted(by_package.items(), key=lambda kv: -kv[1])[:20]},
        "top_self_ms_per_msg": [{"function": f, "self_ms": round(t * 1000 / turns, 3),
                                 "cum_ms": round(c * 1000 / turns, 3), "calls_per_msg": round(n / turns, 1)}
                                for t, c, n, f in rows[:top]],
    }


_SECRET = "turn-cost-rest-channel-secret"


async def run_backend(url: str, args: argparse.Namespace, messages: list[str]) -> dict[str, Any]:
    from sqlalchemy import event

    from bot.channels.rest import RestMessageIn, check_signature, sign, to_inbound
    from bot.channels.runtime import ChannelRuntime
    from kit.db import Database
    from kit.settings import get_settings

    await prepare_database(url)
    database = Database(url, pool_size=5)
    meter = StatementMeter()
    event.listen(database.engine.sync_engine, "before_cursor_execute", meter.before)
    event.listen(database.engine.sync_engine, "after_cursor_execute", meter.after)
    runtime = ChannelRuntime(settings=get_settings(), database=database)
    rng = random.Random(7)
    sender = ""
    per_label: dict[str, list[tuple[float, int]]] = defaultdict(list)
    totals = {"cpu": 0.0, "nlu": 0.0, "driver": 0.0, "wall": 0.0, "statements": 0, "without_reply": 0}
    kinds: Counter[str] = Counter()
    profile = cProfile.Profile(time.process_time) if args.profile else None
    children_before = children_cpu_seconds()
    try:
        started = time.monotonic()
        await runtime.deps()
        startup_s = time.monotonic() - started
        for index in range(args.warmup + args.turns):
            if index % 8 == 0:
                sender = f"cost-{uuid.uuid4().hex[:10]}"
            text = rng.choice(messages)
            raw = json.dumps({"sender": sender, "message": text, "metadata": {"message_id": uuid.uuid4().hex}},
                             separators=(",", ":")).encode()
            signature = sign(_SECRET, raw, int(time.time()))
            measured = index >= args.warmup
            if index == args.warmup:
                children_before = children_cpu_seconds()
            if measured and profile is not None:
                profile.enable()
            statements, driver, kinds_before = meter.count, meter.driver_cpu, meter.kinds.copy()
            wall, cpu = time.perf_counter(), time.process_time()
            # What the REST route does before the engine: check the signature, parse the body.
            check_signature(_SECRET, signature, raw, now=time.time(), tolerance_seconds=300)
            inbound = to_inbound(RestMessageIn.model_validate_json(raw))
            nlu_cpu = await _timed_understand(runtime, inbound)
            result = await runtime.handle(inbound, delivered_inline=True)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if profile is not None:
                profile.disable()
            if measured:
                totals["without_reply"] += not result.replies  # a conversation handed to a person
                count = meter.count - statements
                totals["cpu"] += cpu
                totals["nlu"] += nlu_cpu
                totals["driver"] += meter.driver_cpu - driver
                totals["wall"] += wall
                totals["statements"] += count
                kinds.update(meter.kinds - kinds_before)
                per_label[label_of(text, _PARSED.get(inbound.message_id))].append((cpu - nlu_cpu, count))
        children_ms = (children_cpu_seconds() - children_before) * 1000
    finally:
        await database.dispose()
    n = args.turns
    engine_ms = (totals["cpu"] - totals["nlu"] - totals["driver"]) * 1000 / n
    result_json: dict[str, Any] = {
        "turns": n, "without_reply": totals["without_reply"], "deps_startup_s": round(startup_s, 1),
        "cpu_ms_per_msg": round(totals["cpu"] * 1000 / n, 2),
        "nlu_cpu_ms_per_msg": round(totals["nlu"] * 1000 / n, 2),
        # Not in cpu_ms_per_msg: the NLU's encoder worker processes (and any other child), over the same turns.
        "child_processes_cpu_ms_per_msg": round(children_ms / n, 2),
        "db_driver_cpu_ms_per_msg": round(totals["driver"] * 1000 / n, 2),
        "engine_cpu_ms_per_msg": round(engine_ms, 2),
        "non_nlu_cpu_ms_per_msg": round((totals["cpu"] - totals["nlu"]) * 1000 / n, 2),
        "wall_ms_per_msg": round(totals["wall"] * 1000 / n, 2),
        "statements_per_msg": round(totals["statements"] / n, 2),
        "statements_by_kind_per_msg": {k: round(v / n, 2) for k, v in kinds.most_common()},
        "by_message": {label: {"n": len(v), "non_nlu_cpu_ms": round(statistics.fmean(c for c, _ in v) * 1000, 2),
                               "statements": round(statistics.fmean(s for _, s in v), 1)}
                       for label, v in sorted(per_label.items())},
    }
    if profile is not None:
        result_json["profile"] = profile_summary(profile, n)
        if args.profile_out:
            profile.dump_stats(f"{args.profile_out}.{database.engine.dialect.name}")
    return result_json


async def _timed_understand(runtime: Any, inbound: Any) -> float:
    """The NLU's CPU for this message, parsed once here so `handle` finds it cached (see below)."""
    from bot import understand

    deps = await runtime.deps()
    cpu = time.process_time()
    parsed = await understand(inbound, deps=deps)
    spent = time.process_time() - cpu
    _PRIMED[inbound.message_id] = parsed
    _PARSED.clear()
    _PARSED[inbound.message_id] = parsed
    return spent


_PRIMED: dict[str, Any] = {}
_PARSED: dict[str, Any] = {}


def _prime_understand() -> None:
    """Make the runtime's own `understand` call return the parse measured above (not parse twice)."""
    import bot.channels.runtime as runtime_module

    async def primed(inbound: Any, *, deps: Any) -> Any:
        return _PRIMED.pop(inbound.message_id)

    runtime_module.understand = primed  # type: ignore[attr-defined]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--turns", type=int, default=300, help="measured messages per backend")
    parser.add_argument("--warmup", type=int, default=60, help="unmeasured messages first (lazy indexes)")
    parser.add_argument("--profile", action="store_true", help="add cProfile's self time by package")
    parser.add_argument("--profile-out", help="also write the cProfile stats to this path (+ .<dialect>)")
    parser.add_argument("--benchmarks", type=Path, default=ROOT.parent / "shared" / "benchmarks")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "SHOPTALK_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    _prime_understand()
    messages, utterances = message_mix(args.benchmarks)
    result: dict[str, Any] = {"benchmark": "turn_cost", "channel": "rest (in-process, ChannelRuntime.handle)",
                              "message_mix": {"source": "bench/chat_load.py, seed 7",
                                              "shopping_turns": len(SHOPPING_TURNS), "bitext_utterances": utterances},
                              "cpu_count": os.cpu_count(),
                              "loadavg_1m_at_start": round(os.getloadavg()[0], 2), "backends": {}}
    with tempfile.TemporaryDirectory(prefix="turn-cost-") as tmp:
        if args.backend in ("sqlite", "both"):
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'shop.db'}"
            result["backends"]["sqlite"] = await run_backend(url, args, messages)
        if args.backend in ("postgres", "both"):
            async with scratch_postgres(args.postgres_url, "shoptalk_cost") as url:
                result["backends"]["postgres"] = await run_backend(url, args, messages)
    result["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
