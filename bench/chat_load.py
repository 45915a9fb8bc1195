"""Chat load through the Rasa-compatible REST channel: messages/s and reply latency under concurrent shoppers.

    python bench/chat_load.py [--backend sqlite|postgres|both] [--duration 60] [--concurrency 50] [--rate 0]
                              [--warmup 10] [--workers 1] [--benchmarks ../shared/benchmarks]
                              [--postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

For each backend: a fresh database (migrated, demo shop loaded), the API started as a subprocess with uvicorn
(`--workers` processes on PostgreSQL, one on SQLite), then `concurrency` shoppers each send a message, wait
for the replies, and send the next, for `duration` seconds after a warm-up. With no pause between messages
(the default) 50 shoppers keep 50 messages in flight, so by Little's law the mean latency is 50 / throughput:
p99 <= 250 ms then needs well over 200 messages/s. `--rate 150`: each shopper's messages fall due as a Poisson
process (mean gap concurrency/rate s; a message due before the previous replies came is sent when they come),
so together they offer about 150 messages/s: the latency at that load. Messages mix shopping turns
(search, cart, menu buttons, commands; English and Chinese) with real customer-support utterances from Bitext
(order tracking, delivery, refunds, payment), seed 7. Every shopper starts a new conversation every 8
messages. Before the clock starts, one shopper sends 30 messages one at a time (lazy indexes get built; their
median is reported as the single-shopper latency), then the concurrent load runs `warmup` seconds unmeasured.
`cpu_ms_per_message` splits the measured window's CPU (from /proc) between the API's serving processes, their NLU
encoder workers (`nlu_encoders`), PostgreSQL's server processes, this load generator and anything else on the
machine ("other": on a quiet box, near zero); `cores_busy` is the same split as cores kept busy (the serving
process runs one event loop: near 1.0 it is the bottleneck). Requests are signed (X-ShopTalk-Signature,
HMAC-SHA256 with a secret made for the run): the REST channel's check costs the server a hash, no database read.
`--channel whatsapp|wechat` sends the same load through those channels and their wire-format doubles (the
tests' Graph API and WeChat platform doubles, run in this process on 127.0.0.1): WhatsApp webhooks signed with
X-Hub-Signature-256, the latency being from the webhook's POST until the first reply reaches the Graph API double
(replies go through the outbox); WeChat messages in safe mode (AES + msg_signature), the latency being the HTTP
round trip that returns the passive reply (`passive_replies`; `success_answers`: no passive reply, the bot being
silent while a person has the conversation or answering later, `customer_service_messages` counting what went
by the customer-service API: a reply's further parts and late answers). Those channels' shoppers use httpx
(more load-generator CPU than REST's raw keep-alive client; `cpu_ms_per_message.load_generator` shows it).
Compare with `--channel rest` on the same box. `--graph-limit N`: the Graph double enforces N messages/s for
the number (130429 over it) and ShopTalk's pacing is set to N; `graph_refused` counts Graph's refusals by code.
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast

import httpx
import uvloop
from _common import ROOT, percentile, scratch_postgres, start_api_server, wait_until_serving
from keepalive_http import HttpError, KeepAliveClient
from proc_cpu import descendants, machine_busy_seconds, processes

from bot.channels.rest import sign
from nlu._encoder_pool import WORKER_PROCESS_NAME

REST_SECRET = secrets.token_hex(32)  # the served shop's REST channel secret for this run
WHATSAPP_SECRET = secrets.token_hex(16)
WHATSAPP_TOKEN = "EAAbench" + secrets.token_hex(16)
WECHAT_APP_ID = "wx2c2769f8efd9abc2"
WECHAT_SECRET = secrets.token_hex(16)
WECHAT_TOKEN = secrets.token_hex(8)
WECHAT_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def signed(body: bytes) -> dict[str, str]:
    """The REST channel's signature header for `body` (docs/channels.md)."""
    return {"X-ShopTalk-Signature": sign(REST_SECRET, body, int(time.time()))}

SHOPPING_TURNS = [
    "hello", "I am looking for an electric kettle", "show me hoodies", "/cart", "cart:view", "menu:search",
    "do you have running shoes?", "what do you recommend for tea lovers?", "/help", "thanks",
    "你好", "有电水壶吗", "我的购物车", "推荐一些礼物", "谢谢",
]
BITEXT_INTENTS = {"track_order", "delivery_options", "delivery_period", "check_refund_policy",
                  "check_payment_methods", "check_invoice"}
TARGET = {"messages_per_s": 150.0, "p99_ms": 250.0}


def load_utterances(benchmarks: Path, *, limit: int = 400, seed: int = 7) -> list[str]:
    path = benchmarks / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    if not path.exists():
        # Only the shopping turns then: a different mix, not comparable with runs that had the utterances.
        print(f"warning: {path} not found, so no Bitext utterances; pass --benchmarks", file=sys.stderr)
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [row["instruction"] for row in csv.DictReader(handle) if row["intent"] in BITEXT_INTENTS]
    random.Random(seed).shuffle(rows)
    return rows[:limit]


def message_mix(benchmarks: Path) -> tuple[list[str], int]:
    """The load's messages (60 shopping turns + 400 Bitext: about 6 in 7 are support questions), and how many
    of them are Bitext utterances (none when `benchmarks` is wrong)."""
    utterances = load_utterances(benchmarks)
    return SHOPPING_TURNS * 4 + utterances, len(utterances)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def prepare_database(url: str) -> None:
    from api.demo.loader import load_demo
    from api.migrations import upgrade
    from commerce.cross_border import load_cross_border_defaults
    from kit.db import Database

    database = Database(url)
    try:
        await upgrade(database.engine)
        async with database.unit_of_work() as session:
            await load_demo(session)
            await load_cross_border_defaults(session)
    finally:
        await database.dispose()


def start_server(database_url: str, port: int, log_path: Path, workers: int = 1,
                 channel_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {**(channel_env or {}), "SHOPTALK_DATABASE__URL": database_url, "SHOPTALK_ENVIRONMENT": "development",
           "SHOPTALK_DATABASE__POOL_SIZE": "20", "SHOPTALK_SECURITY__REST_CHANNEL_SECRET": REST_SECRET,
           # a capacity benchmark: the per-client throttle (100 messages/s sustained) would cap it first
           "SHOPTALK_RATE_LIMITS__ENABLED": "false"}
    return cast("subprocess.Popen[bytes]", start_api_server(port, log_path, env, workers))


async def wait_ready(base_url: str, process: subprocess.Popen[bytes], timeout: float = 600.0) -> None:
    await wait_until_serving(base_url, process, "/webhooks/rest/", timeout)


async def shopper(http: KeepAliveClient, index: int, messages: list[str], *, warmup_until: float,
                  deadline: float, latencies: list[float], counters: dict[str, int], think_s: float = 0.0) -> None:
    """One shopper: send, wait for the replies, send the next. `think_s` > 0: messages are due at the times of a
    Poisson process with that mean gap (sent when due, or when the previous replies arrive if later); 0: at once."""
    rng = random.Random(index)
    sent = 0
    sender = f"bench-{index}-{uuid.uuid4().hex[:8]}"
    due = time.monotonic()
    while True:
        if think_s > 0:
            due += rng.expovariate(1.0 / think_s)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        now = time.monotonic()
        if now >= deadline:
            return
        if sent and sent % 8 == 0:
            sender = f"bench-{index}-{uuid.uuid4().hex[:8]}"
        text = rng.choice(messages)
        body = {"sender": sender, "message": text, "metadata": {"message_id": uuid.uuid4().hex}}
        started = time.monotonic()
        try:
            status, replies = await http.post_json("/webhooks/rest/webhook", body, signed)
            ok = status == 200
        except HttpError:
            ok, replies = False, []
        finished = time.monotonic()
        elapsed = finished - started
        sent += 1
        # Counted when the reply arrives inside the measured window (throughput = completions / window).
        if warmup_until <= finished <= deadline:
            counters["messages"] += 1
            if not ok:
                counters["errors"] += 1
            elif not replies:
                counters["no_reply"] += 1
            latencies.append(elapsed)


class ChannelLoad:
    """The WhatsApp or WeChat double this run talks through, and how one shopper's turn goes over it."""

    def __init__(self, channel: str, graph_limit: float = 0.0) -> None:
        self.channel = channel
        self.graph_limit = graph_limit  # > 0: the Graph double enforces this many messages/s for the number
        self.arrivals: dict[str, asyncio.Event] = {}
        # "success" answers: no passive reply (the bot stayed silent: a person has the conversation; or its
        # answer missed the window and went by the customer-service API, counted in customer_service_messages).
        self.counters = {"passive_replies": 0, "success_answers": 0, "customer_service_messages": 0}
        self.double: Any = None
        self.last_error = ""

    async def start(self) -> dict[str, str]:
        from tests.bot.channels.graph_double import GraphDouble
        from tests.bot.channels.wechat_double import WeChatDouble

        if self.channel == "whatsapp":
            self.double = await GraphDouble(access_token=WHATSAPP_TOKEN, app_secret=WHATSAPP_SECRET).start()
            self.double.on_sent = lambda sent: self._arrived(sent.to)
            pace: dict[str, str] = {}
            if self.graph_limit > 0:  # Graph refuses over it (130429); ShopTalk is told the number's rate
                self.double.throughput = self.graph_limit
                pace = {"SHOPTALK_WHATSAPP__MESSAGES_PER_SECOND": str(self.graph_limit)}
            return {**pace, "SHOPTALK_WHATSAPP__PHONE_NUMBER_ID": self.double.phone_number_id,
                    "SHOPTALK_WHATSAPP__ACCESS_TOKEN": WHATSAPP_TOKEN, "SHOPTALK_WHATSAPP__APP_SECRET": WHATSAPP_SECRET,
                    "SHOPTALK_WHATSAPP__VERIFY_TOKEN": secrets.token_hex(8),
                    "SHOPTALK_WHATSAPP__API_BASE": self.double.base_url}
        self.double = await WeChatDouble(app_id=WECHAT_APP_ID, app_secret=WECHAT_SECRET, token=WECHAT_TOKEN,
                                         encoding_aes_key=WECHAT_AES_KEY).start()
        self.double.on_sent = lambda _to, _text: self._count("customer_service_messages")
        return {"SHOPTALK_WECHAT__APP_ID": WECHAT_APP_ID, "SHOPTALK_WECHAT__APP_SECRET": WECHAT_SECRET,
                "SHOPTALK_WECHAT__TOKEN": WECHAT_TOKEN, "SHOPTALK_WECHAT__ENCODING_AES_KEY": WECHAT_AES_KEY,
                "SHOPTALK_WECHAT__API_BASE": self.double.base_url}

    def _count(self, key: str) -> None:
        self.counters[key] += 1

    def _arrived(self, to: str) -> None:
        event = self.arrivals.get(to)
        if event is not None:
            event.set()

    async def stop(self) -> None:
        if self.double is not None:
            await self.double.stop()

    async def turn(self, http: httpx.AsyncClient, sender: str, text: str) -> tuple[bool, bool]:
        """One message and its first reply: (the channel accepted it, a reply came)."""
        if self.channel == "whatsapp":
            arrived = self.arrivals.setdefault(sender, asyncio.Event())
            arrived.clear()
            raw = json.dumps(self.double.text(sender, text)).encode()
            answer = await http.post("/webhooks/whatsapp", content=raw, headers={
                "content-type": "application/json", "X-Hub-Signature-256": self.double.sign(raw)})
            if answer.status_code != 200:
                self.last_error = f"HTTP {answer.status_code} {answer.text[:80]}"
                return False, False
            try:
                # The webhook answers once the turn is stored and its replies queued: a reply not sent within
                # 3 s after that is none (a person has the conversation and the bot is silent).
                await asyncio.wait_for(arrived.wait(), 3)
            except TimeoutError:
                return True, False
            await asyncio.sleep(0.02)  # the rest of this reply's parts arrive before the next message
            return True, True
        params, body = self.double.message_request(self.double.message_xml(sender, Content=text), encrypted=True)
        answer = await http.post("/webhooks/wechat", params=params, content=body,
                                 headers={"content-type": "text/xml"})
        if answer.status_code != 200:
            self.last_error = f"HTTP {answer.status_code} {answer.text[:80]}"
            return False, False
        passive = bool(self.double.read_reply(answer.text).get("Content"))
        self._count("passive_replies" if passive else "success_answers")
        return True, passive


async def channel_shopper(load: ChannelLoad, http: httpx.AsyncClient, index: int, messages: list[str], *,
                          warmup_until: float, deadline: float, latencies: list[float],
                          counters: dict[str, int]) -> None:
    """A WhatsApp or WeChat shopper: send, wait for the first reply, send the next (no pause)."""
    rng = random.Random(index)
    sent = 0
    sender = f"49{index:04d}{random.Random(index).randrange(10**7):07d}"
    while time.monotonic() < deadline:
        if sent and sent % 8 == 0:  # a new conversation every 8 messages, as the REST shoppers do
            sender = str(int(sender) + 10**9)
        started = time.monotonic()
        try:
            ok, replied = await load.turn(http, sender if load.channel == "whatsapp" else f"o{sender}",
                                          rng.choice(messages))
        except httpx.HTTPError as error:
            ok, replied = False, False
            load.last_error = type(error).__name__
        if ok and not replied and load.channel == "whatsapp":
            sent = 7  # a silent conversation (handed to a person) would stall this shopper: start a new one
        finished = time.monotonic()
        sent += 1
        if warmup_until <= finished <= deadline:
            counters["messages"] += 1
            if not ok:
                counters["errors"] += 1
                counters[f"error:{load.last_error}"] = counters.get(f"error:{load.last_error}", 0) + 1
            elif not replied:
                counters["no_reply"] += 1
            else:
                latencies.append(finished - started)


async def warm_up(base_url: str, messages: list[str]) -> list[float]:
    """One shopper, one message at a time, through every kind of turn: builds lazy indexes, gives a baseline."""
    latencies = []
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as http:
        for text in list(dict.fromkeys(messages))[:len(SHOPPING_TURNS) + 15]:
            started = time.monotonic()
            raw = json.dumps({"sender": "bench-warmup", "message": text}).encode()
            answer = await http.post("/webhooks/rest/webhook", content=raw,
                                     headers={"content-type": "application/json", **signed(raw)})
            if answer.status_code != 200:  # a refused credential would make the whole run measure 401s
                raise RuntimeError(f"the REST channel answered {answer.status_code}: {answer.text[:200]}")
            latencies.append(time.monotonic() - started)
    return latencies


class CpuSplit:
    """CPU seconds over the measured window by who spent them: the API's serving processes, their NLU encoder
    workers, PostgreSQL's server processes, this load generator, and whatever else ran on the machine."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        table = processes()
        server = descendants(table, self.server_pid) | {self.server_pid}
        encoders = {pid for pid in server if table[pid].name == WORKER_PROCESS_NAME}
        return {"api": sum(table[pid].seconds for pid in server - encoders),
                "nlu_encoders": sum(table[pid].seconds for pid in encoders),
                "postgres": sum(row.seconds for row in table.values() if row.name in ("postgres", "postmaster")),
                "load_generator": time.process_time(), "machine": machine_busy_seconds()}

    def spent(self) -> dict[str, float]:
        """CPU seconds since the start, by who spent them."""
        end = self._read()
        spent = {key: end[key] - self.start[key] for key in end}
        spent["other"] = spent.pop("machine") - sum(spent.values())
        return spent


async def run_backend(name: str, database_url: str, args: argparse.Namespace, messages: list[str],
                      workdir: Path) -> dict[str, Any]:
    await prepare_database(database_url)
    port = free_port()
    workers = args.workers if name == "postgres" else 1
    load = ChannelLoad(args.channel, getattr(args, "graph_limit", 0.0)) if args.channel != "rest" else None
    channel_env = await load.start() if load is not None else None
    process = start_server(database_url, port, workdir / f"server-{name}.log", workers, channel_env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        await wait_ready(base_url, process)
        startup_s = time.monotonic() - started
        sequential = await warm_up(base_url, messages)
        latencies: list[float] = []
        counters = {"messages": 0, "errors": 0, "no_reply": 0}
        # One keep-alive connection per shopper; --rate R: each shopper's messages fall due at Poisson times,
        # together about R messages/s.
        clients = [KeepAliveClient("127.0.0.1", port) for _ in range(args.concurrency)]
        think_s = args.concurrency / args.rate if args.rate else 0.0
        begin = time.monotonic()
        warmup_until = begin + args.warmup
        deadline = warmup_until + args.duration
        channel_http = httpx.AsyncClient(base_url=base_url, timeout=60,
                                         limits=httpx.Limits(max_connections=args.concurrency))
        if load is None:
            shoppers = [asyncio.ensure_future(shopper(http, i, messages, warmup_until=warmup_until,
                                                      deadline=deadline, latencies=latencies, counters=counters,
                                                      think_s=think_s)) for i, http in enumerate(clients)]
        else:
            shoppers = [asyncio.ensure_future(channel_shopper(load, channel_http, i, messages,
                                                              warmup_until=warmup_until, deadline=deadline,
                                                              latencies=latencies, counters=counters))
                        for i in range(args.concurrency)]
        await asyncio.sleep(max(0.0, warmup_until - time.monotonic()))
        cpu = CpuSplit(process.pid)
        await asyncio.gather(*shoppers)
        spent = cpu.spent()
        measured = deadline - warmup_until
        await asyncio.gather(*(http.close() for http in clients))
        await channel_http.aclose()
        extra: dict[str, Any] = {}
        if load is not None and args.channel == "whatsapp":
            refused: dict[str, int] = {}
            for code, _ in load.double.refused:
                refused[str(code)] = refused.get(str(code), 0) + 1
            extra = {"graph_limit_per_s": load.graph_limit or None, "graph_refused": refused,
                     "graph_messages_sent": len(load.double.sent)}
        if load is not None and args.channel == "wechat":
            extra = {**load.counters, "passive_reply_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
                     "passive_within_5s_at_p99": percentile(latencies, 0.99) < 5.0}
        return {**extra,
            "api_processes": workers,
            "offered_rate": args.rate or "as fast as replies come",
            "messages": counters["messages"], "errors": counters["errors"],
            "error_kinds": {k[6:]: v for k, v in counters.items() if k.startswith("error:")},
            "without_reply": counters["no_reply"],
            "messages_per_s": round(counters["messages"] / measured, 1),
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
            "cpu_ms_per_message": {key: round(value * 1000 / max(counters["messages"], 1), 2)
                                   for key, value in spent.items()},
            # Cores kept busy: the serving process runs one event loop, so near 1.0 it is the bottleneck.
            "cores_busy": {key: round(value / measured, 2) for key, value in spent.items()},
            "server_startup_s": round(startup_s, 1),
            "single_shopper_p50_ms": round(percentile(sequential, 0.5) * 1000, 1),
            "first_message_ms": round(sequential[0] * 1000, 1),
            "meets_target": (counters["messages"] / measured >= TARGET["messages_per_s"]
                             and percentile(latencies, 0.99) * 1000 <= TARGET["p99_ms"]),
        }
    finally:
        if load is not None:
            await load.stop()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--channel", choices=["rest", "whatsapp", "wechat"], default="rest",
                        help="the chat channel the shoppers talk through (whatsapp, wechat: via their doubles)")
    parser.add_argument("--graph-limit", type=float, default=0.0,
                        help="whatsapp: the Graph double refuses over this many messages/s (130429) and ShopTalk "
                             "is configured with it; graph_refused counts the refusals by code")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per backend")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of load before measuring")
    parser.add_argument("--concurrency", type=int, default=50, help="shoppers talking at once")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="messages/s the shoppers offer together (Poisson, mean gap concurrency/rate s per "
                             "shopper); 0: each sends as soon as its replies arrive")
    parser.add_argument("--workers", type=int, default=1,
                        help="API processes on PostgreSQL (SQLite has one writer: always 1)")
    parser.add_argument("--benchmarks", type=Path, default=ROOT.parent / "shared" / "benchmarks")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "SHOPTALK_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()

    messages, utterances = message_mix(args.benchmarks)
    result: dict[str, Any] = {
        "benchmark": "chat_load", "channel": args.channel, "concurrency": args.concurrency,
        "duration_s": args.duration, "warmup_s": args.warmup,
        "message_mix": {"shopping_turns": len(SHOPPING_TURNS), "bitext_utterances": utterances,
                        "bitext_intents": sorted(BITEXT_INTENTS), "seed": 7},
        "target": TARGET, "cpu_count": os.cpu_count(), "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="chat-load-") as tmp:
        workdir = Path(tmp)
        if args.backend in ("sqlite", "both"):
            url = f"sqlite+aiosqlite:///{workdir / 'shop.db'}"
            result["backends"]["sqlite"] = await run_backend("sqlite", url, args, messages, workdir)
        if args.backend in ("postgres", "both"):
            async with scratch_postgres(args.postgres_url, "shoptalk_bench") as url:
                result["backends"]["postgres"] = await run_backend("postgres", url, args, messages, workdir)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    uvloop.run(main())  # the load generator's own event loop costs less CPU on uvloop
