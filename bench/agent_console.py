"""The agent console across two API processes: how fast a shopper's message reaches the consoles, and an agent's
reply reaches the shopper's web chat, with nothing lost or doubled.

    python bench/agent_console.py [--shoppers 50] [--consoles 10] [--messages 4] [--replies 4]
                                  [--postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]
                                  [--redis-url redis://127.0.0.1:6379/5]

A fresh PostgreSQL database (migrated, demo shop loaded) and two API processes (uvicorn, one worker each) on it,
sharing Redis. `consoles` agents sign in, half on each process, each with the console's event stream open
(SSE). `shoppers` web chat shoppers connect over WebSocket, half on each process, and ask for a person (`/human`);
each conversation is taken by one agent (round robin over the agents, through the console API of the agent's own
process). Then every shopper sends `messages` messages (a unique token each, 0.3-1.2 s apart, all shoppers at
once): the time from the send to the `shopper_message` event on each console's stream, per (message, console)
pair, split into the process that stored the message and the other one. Then every agent answers each of its
conversations `replies` times: the time from the POST to the reply frame on the shopper's socket (which sits
on either process: the outbox worker and the web chat hub carry it across). Lost = a message some console never
saw, or a reply the shopper never got, within 5 s after the last send; doubled = the same message id twice on one
console, or the same reply twice on one socket. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, cast

import httpx
import websockets
from _common import percentile, scratch_postgres, start_api_server, wait_until_serving
from chat_load import free_port, prepare_database
from proc_cpu import descendants, machine_busy_seconds, processes

PASSWORD = "bench-console-password-1"
SETTLE_SECONDS = 5.0


def start_api(database_url: str, redis_url: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    return cast("subprocess.Popen[bytes]", start_api_server(port, log_path, {
        "SHOPTALK_DATABASE__URL": database_url, "SHOPTALK_REDIS__URL": redis_url,
        "SHOPTALK_ENVIRONMENT": "development", "SHOPTALK_DATABASE__POOL_SIZE": "10",
        "SHOPTALK_RATE_LIMITS__ENABLED": "false"}))


async def wait_up(base: str, process: subprocess.Popen[bytes], timeout: float = 600.0) -> None:
    await wait_until_serving(base, process, "/agent", timeout)


async def make_agents(database_url: str, count: int) -> list[str]:
    from bot import handoff
    from kit.db import Database

    database = Database(database_url)
    emails = [f"bench-agent-{i}@shop.test" for i in range(count)]
    try:
        async with database.unit_of_work() as session:
            for email in emails:
                await handoff.agents.create_agent(session, email=email, name=email.split("@")[0], role="agent",
                                                  password=PASSWORD, capacity=100)
            # The bench assigns conversations itself; round-robin would race it.
            await handoff.rules.save_rules(session, shop_id=1, rules=handoff.rules.EscalationRules(auto_assign=False))
    finally:
        await database.dispose()
    return emails


class Console:
    """One signed-in agent with the event stream open; notes when each shopper message id first arrives."""

    def __init__(self, index: int, base: str, process: int) -> None:
        self.index, self.base, self.process = index, base, process
        self.http = httpx.AsyncClient(base_url=base, timeout=30)
        self.csrf = ""
        self.seen: dict[str, float] = {}  # token -> arrival
        self.seen_wall: dict[int, float] = {}  # message id -> arrival (wall clock, to compare with created_at)
        self.seen_ids: defaultdict[int, int] = defaultdict(int)
        self.token_ids: dict[str, int] = {}
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.kinds: defaultdict[str, int] = defaultdict(int)  # events received, by type

    async def sign_in(self, email: str) -> None:
        response = await self.http.post("/api/v1/agent/session", json={"email": email, "password": PASSWORD})
        response.raise_for_status()
        self.csrf = response.json()["csrf_token"]
        self.task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self.ready.wait(), timeout=30)

    async def _listen(self) -> None:
        async with self.http.stream("GET", "/api/v1/agent/events", timeout=None) as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                self.kinds[event["type"]] += 1
                if event["type"] == "hello":
                    self.ready.set()
                elif event["type"] == "shopper_message":
                    self.seen_ids[int(event["message_id"])] += 1
                    self.seen_wall.setdefault(int(event["message_id"]), time.time())
                    token = (event.get("preview") or "").split(" ")[-1]
                    self.seen.setdefault(token, time.monotonic())
                    self.token_ids.setdefault(token, int(event["message_id"]))

    async def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.http.post("/api/v1/agent" + path, json=body, headers={"X-CSRF-Token": self.csrf})

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        await self.http.aclose()


class Shopper:
    """A web chat shopper: their socket, the replies that reached it (by stored message id and token)."""

    def __init__(self, index: int, port: int, process: int) -> None:
        self.index, self.port, self.process = index, port, process
        self.socket: Any = None
        self.session = ""
        self.replies: dict[str, float] = {}
        self.reply_ids: defaultdict[int, int] = defaultdict(int)
        self.acked: set[str] = set()
        self.ack = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.socket = await websockets.connect(f"ws://127.0.0.1:{self.port}/ws/chat", max_size=2**22)
        first = json.loads(await self.socket.recv())
        assert first["type"] == "session", first
        self.session = first["token"].split(".")[0]
        self.task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        async for raw in self.socket:
            frame = json.loads(raw)
            if frame.get("type") == "ack":
                self.acked.add(frame["id"])
                self.ack.set()
            if frame.get("type") != "reply":
                continue
            message = frame.get("message") or {}
            if message.get("author") == "agent":
                self.reply_ids[int(message.get("message_id") or 0)] += 1
                self.replies.setdefault((message.get("text") or "").split(" ")[-1], time.monotonic())

    async def say(self, text: str) -> str:
        frame_id = uuid.uuid4().hex
        await self.socket.send(json.dumps({"type": "message", "id": frame_id, "text": text}))
        return frame_id

    async def say_and_wait(self, text: str, timeout: float) -> None:
        frame_id = await self.say(text)
        deadline = time.monotonic() + timeout
        while frame_id not in self.acked:
            self.ack.clear()
            await asyncio.wait_for(self.ack.wait(), timeout=max(0.01, deadline - time.monotonic()))

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.socket is not None:
            await self.socket.close()


async def conversation_ids(database_url: str, sessions: list[str]) -> dict[str, int]:
    from sqlalchemy import select

    from bot.conversations.models import Conversation
    from kit.db import Database

    database = Database(database_url)
    try:
        async with database.unit_of_work() as session:
            rows = (await session.execute(select(Conversation.sender_id, Conversation.id)
                                          .where(Conversation.channel == "webchat",
                                                 Conversation.sender_id.in_(sessions)))).all()
            return {str(sender): int(cid) for sender, cid in rows}
    finally:
        await database.dispose()


async def stored_at(database_url: str, message_ids: list[int]) -> dict[int, float]:
    from sqlalchemy import select

    from bot.conversations.models import ConversationMessage
    from kit.db import Database

    database = Database(database_url)
    try:
        async with database.unit_of_work() as session:
            rows = (await session.execute(select(ConversationMessage.id, ConversationMessage.created_at)
                                          .where(ConversationMessage.id.in_(message_ids)))).all()
            return {int(i): at.timestamp() for i, at in rows}
    finally:
        await database.dispose()


def api_cpu_seconds(roots: list[int]) -> float:
    """CPU seconds so far of the API processes and their children (NLU encoder workers)."""
    table = processes()
    pids = set(roots).union(*(descendants(table, root) for root in roots))
    return sum(table[pid].seconds for pid in pids if pid in table)


def summary(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {"count": len(ms), "p50_ms": round(percentile(ms, 0.5), 1), "p99_ms": round(percentile(ms, 0.99), 1),
            "max_ms": round(max(ms), 1) if ms else float("nan")}


async def run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    await prepare_database(database_url)
    emails = await make_agents(database_url, args.consoles)
    ports = [free_port(), free_port()]
    logs = Path(tempfile.mkdtemp(prefix="bench-console-"))
    processes = [start_api(database_url, args.redis_url, port, logs / f"api-{i}.log") for i, port in enumerate(ports)]
    consoles: list[Console] = []
    shoppers: list[Shopper] = []
    try:
        await asyncio.gather(*(wait_up(f"http://127.0.0.1:{port}", process)
                               for port, process in zip(ports, processes, strict=True)))
        consoles = [Console(i, f"http://127.0.0.1:{ports[i % 2]}", i % 2) for i in range(args.consoles)]
        for console, email in zip(consoles, emails, strict=True):
            await console.sign_in(email)
        shoppers = [Shopper(i, ports[i % 2], i % 2) for i in range(args.shoppers)]
        await asyncio.gather(*(s.connect() for s in shoppers))
        await asyncio.gather(*(s.say("/human") for s in shoppers))
        # Every shopper's conversation stored (on a loaded box the first turns take a while: wait, up to 5 minutes).
        setup_deadline = time.monotonic() + 300
        while True:
            await asyncio.sleep(1.0)
            ids = await conversation_ids(database_url, [s.session for s in shoppers])
            missing = [s.index for s in shoppers if s.session not in ids]
            if not missing:
                break
            if time.monotonic() > setup_deadline:
                raise RuntimeError(f"shoppers without a conversation: {missing}")
        owner: dict[int, Console] = {}
        for shopper in shoppers:
            # Half the conversations are owned by an agent on the shopper's process, half on the other one.
            console = consoles[(shopper.index // 2) % len(consoles)]
            taken = await console.post(f"/conversations/{ids[shopper.session]}/take")
            taken.raise_for_status()
            owner[shopper.index] = console

        # Warm-up (unmeasured): the first message each process parses loads its NLU encoder.
        for process in (0, 1):
            first = next(s for s in shoppers if s.process == process)
            await first.say_and_wait("hello, is anyone there?", timeout=600)
        await asyncio.gather(*(s.say_and_wait("one more question", timeout=120) for s in shoppers))
        await asyncio.sleep(1.0)

        # Shopper -> consoles.
        sent: dict[str, tuple[float, int]] = {}
        roots = [api.pid for api in processes]
        cpu_before, machine_before, wall_before = api_cpu_seconds(roots), machine_busy_seconds(), time.monotonic()

        async def chat(shopper: Shopper) -> None:
            for n in range(args.messages):
                await asyncio.sleep(random.uniform(0.3, 1.2))
                token = f"m{shopper.index}x{n}x{uuid.uuid4().hex[:8]}"
                sent[token] = (time.monotonic(), shopper.process)
                await shopper.say(f"question about my order {token}")

        await asyncio.gather(*(chat(s) for s in shoppers))
        await asyncio.sleep(SETTLE_SECONDS)
        # The API processes' CPU for the phase (the shoppers' messages, the consoles' refetches, the later parses),
        # and what the whole box was busy with meanwhile (other work on the machine shows up as the difference).
        cpu_phase, wall_phase = api_cpu_seconds(roots) - cpu_before, time.monotonic() - wall_before
        machine_phase = machine_busy_seconds() - machine_before
        same: list[float] = []
        other: list[float] = []
        lost_in = 0
        settled = time.monotonic()
        for token, (at, process) in sent.items():
            for console in consoles:
                arrived = console.seen.get(token)
                if arrived is None or arrived > settled:
                    lost_in += 1
                else:
                    (same if console.process == process else other).append(arrived - at)
        doubled_in = sum(n - 1 for c in consoles for n in c.seen_ids.values() if n > 1)
        # The console's part alone: from the row's created_at (stamped in the turn, before its NLU work commits)
        # to the event on the stream, for the messages of the measured window.
        measured_ids = {i for c in consoles for token, i in c.token_ids.items() if token in sent}
        created = await stored_at(database_url, sorted(measured_ids))
        stored_to_console = [c.seen_wall[i] - created[i] for c in consoles for i in c.seen_wall
                             if i in measured_ids and i in created]

        # Agent -> shopper.
        posted: dict[str, tuple[float, Shopper]] = {}

        async def answer(shopper: Shopper) -> None:
            console = owner[shopper.index]
            for n in range(args.replies):
                await asyncio.sleep(random.uniform(0.3, 1.2))
                token = f"r{shopper.index}x{n}x{uuid.uuid4().hex[:8]}"
                posted[token] = (time.monotonic(), shopper)
                response = await console.post(f"/conversations/{ids[shopper.session]}/replies",
                                              {"text": f"Here is the answer {token}"})
                response.raise_for_status()

        await asyncio.gather(*(answer(s) for s in shoppers))
        await asyncio.sleep(SETTLE_SECONDS)
        replies: list[float] = []
        cross: list[float] = []
        lost_out = 0
        for token, (at, shopper) in posted.items():
            arrived = shopper.replies.get(token)
            if arrived is None:
                lost_out += 1
                continue
            replies.append(arrived - at)
            if owner[shopper.index].process != shopper.process:
                cross.append(arrived - at)
        # Late rather than lost: what reached a console after the settle time (while the replies were measured).
        late_in = sum(1 for token in sent for c in consoles if c.seen.get(token, 0) > settled)
        never_in = sum(1 for token in sent for c in consoles if token not in c.seen)
        doubled_out = sum(n - 1 for s in shoppers for n in s.reply_ids.values() if n > 1)
        return {
            "benchmark": "agent_console", "backend": "postgresql+redis", "api_processes": 2,
            "shoppers": args.shoppers, "consoles": args.consoles,
            "shopper_to_console": {**summary(same + other), "same_process": summary(same),
                                   "other_process": summary(other),
                                   "within_1s": round(sum(v <= 1.0 for v in same + other) / max(1, len(same + other)),
                                                      4),
                                   "stored_to_console": summary(stored_to_console)},
            "agent_to_shopper": {**summary(replies), "other_process": summary(cross)},
            "messages_sent": len(sent), "replies_sent": len(posted),
            "cpu": {"api_ms_per_message": round(cpu_phase * 1000 / max(1, len(sent)), 1),
                    "api_cores_busy": round(cpu_phase / wall_phase, 2),
                    "machine_cores_busy": round(machine_phase / wall_phase, 2), "cores": os.cpu_count()},
            "lost": {"shopper_to_console": lost_in, "agent_to_shopper": lost_out,
                     "shopper_to_console_late": late_in, "shopper_to_console_never": never_in},
            "console_events": {kind: sum(c.kinds[kind] for c in consoles)
                               for kind in sorted({k for c in consoles for k in c.kinds})},
            "doubled": {"shopper_to_console": doubled_in, "agent_to_shopper": doubled_out},
            "logs": str(logs),
        }
    finally:
        await asyncio.gather(*(s.close() for s in shoppers), return_exceptions=True)
        await asyncio.gather(*(c.close() for c in consoles), return_exceptions=True)
        for api in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(api.pid, 15)
        for api in processes:
            try:
                api.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(api.pid, 9)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=50)
    parser.add_argument("--consoles", type=int, default=10)
    parser.add_argument("--messages", type=int, default=4)
    parser.add_argument("--replies", type=int, default=4)
    parser.add_argument("--postgres-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    args = parser.parse_args()
    random.seed(7)
    async with scratch_postgres(args.postgres_url, "bench_console") as url:
        result = await run(args, url)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
