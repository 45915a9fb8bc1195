"""Chaos under load: kill -9 of the API and of the worker, the database cut, a sales channel down for minutes.

    python bench/chaos.py [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test] [--quick]
                          [--channel-outage 180] [--db-cut 10] [--shoppers 6] [--skus 40]

A fresh PostgreSQL database with a small generated shop (SKUs with stock) and one push sales channel (a generic
webhook double on 127.0.0.1, reconciled every `--reconcile-every` seconds). The API (`shoptalk serve`) and a worker
(`python -m api.workers`, 5 s lease) run as subprocesses and reach the database only through a local TCP
proxy (tests/api/db_proxy.py) that the benchmark can cut. Shoppers send chat messages through the REST channel
(`Authorization: Bearer` admin token), each with a unique message_id, resent on any failure until acknowledged;
a stock task reserves, releases and restocks directly in the database. Faults, in order: the channel answers 503
(for `--channel-outage` s), the API is killed -9 and restarted, the worker is killed -9 and restarted, the database
is cut for `--db-cut` s. Then the load stops and the channel must come right by reconciliation alone.

Prints one JSON object: messages lost (acknowledged but not stored, or stored without its replies), duplicate
replies (stored replies beyond those acknowledged), channels and SKUs whose stock differs from ours at the end,
oversold units, plus counts and timings.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from _common import ROOT, scratch_postgres
from sqlalchemy import func, select

from api.migrations import upgrade
from bot.conversations.models import ConversationMessage
from commerce.catalog import service as catalog
from commerce.catalog.schemas import ProductIn, VariantIn
from commerce.channels import register_stock_listener
from commerce.channels import service as channels
from commerce.channels.repository import PUSH_TOPIC, ChannelRepository
from commerce.inventory import service as inventory
from commerce.inventory.errors import InsufficientStock
from kit.db import Database
from kit.outbox import SUPERSEDED, OutboxEvent
from tests.api.db_proxy import CuttableProxy
from tests.commerce.channels.doubles import WebhookDouble
from tests.factories import make_shop

CHANNEL = "chaos-web"
MESSAGES = ["/cart", "/orders", "/start", "/help", "/cart", "/orders"]
RETRY_PAUSE = 0.3


async def prepare(url: str, skus: list[str], stock: int, webhook: WebhookDouble, reconcile_every: float) -> None:
    database = Database(url)
    try:
        await upgrade(database.engine)
        async with database.unit_of_work() as session:
            await make_shop(session)
            for start in range(0, len(skus), 10):
                await catalog.create_product(session, data=ProductIn(
                    slug=f"item-{start}", category="home-kitchen", title={"en": f"Item {start}"},
                    description={"en": "chaos"}, base_price=Decimal("19.90"), currency="EUR",
                    variants=[VariantIn(sku=sku) for sku in skus[start:start + 10]]))
            await channels.create_channel(session, code=CHANNEL, name="Web shop", kind="web", sync_mode="push",
                                          connector="webhook",
                                          config={"base_url": webhook.base_url, "secret": webhook.secret,
                                                  "reconcile_every_seconds": reconcile_every})
        async with database.unit_of_work() as session:
            for sku in skus:
                await inventory.set_stock(session, sku=sku, location="RTM", on_hand=stock)
    finally:
        await database.dispose()


def environment(database_url: str, data_dir: Path) -> dict[str, str]:
    return {**os.environ, "SHOPTALK_DATABASE__URL": database_url, "SHOPTALK_ENVIRONMENT": "development",
            "SHOPTALK_DATA_DIR": str(data_dir), "SHOPTALK_DATABASE__POOL_SIZE": "10", "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(ROOT)}


def create_token(database_url: str, data_dir: Path) -> str:
    done = subprocess.run([sys.executable, "-c", "from api.cli import main; main()", "token", "create",
                           "--name", "chaos", "--role", "admin"], env=environment(database_url, data_dir),
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.strip().splitlines()[-1]


@dataclass
class Managed:
    """A subprocess we kill -9 and start again."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1

    def kill9(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


async def wait_ready(base_url: str, api: Managed, timeout: float = 300.0) -> float:
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        while time.monotonic() - started < timeout:
            assert api.process is not None
            if api.process.poll() is not None:
                raise RuntimeError(f"the API exited with {api.process.returncode}; see {api.log}")
            try:
                if (await http.get("/health/ready")).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the API did not become ready")


@dataclass
class Chat:
    acked: dict[str, tuple[str, int]] = field(default_factory=dict)  # message_id -> (sender, replies acked)
    sent: int = 0
    attempts: int = 0
    answers: dict[str, int] = field(default_factory=dict)  # status or error kind -> count
    unacknowledged: int = 0


async def shopper(index: int, base_url: str, token: str, chat: Chat, stop: asyncio.Event, give_up_at: list[float],
                  ) -> None:
    rng = random.Random(index)
    sender = f"chaos-{index}"
    async with httpx.AsyncClient(base_url=base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        while not stop.is_set():
            message_id = uuid.uuid4().hex
            body = {"sender": sender, "message": rng.choice(MESSAGES), "metadata": {"message_id": message_id}}
            chat.sent += 1
            while True:  # resent until acknowledged: the REST channel answers a repeat with the stored replies
                chat.attempts += 1
                try:
                    response = await http.post("/webhooks/rest/webhook", json=body)
                    kind = str(response.status_code)
                except httpx.HTTPError as exc:
                    response, kind = None, type(exc).__name__
                chat.answers[kind] = chat.answers.get(kind, 0) + 1
                if response is not None and response.status_code == 200:
                    chat.acked[message_id] = (sender, len(response.json()))
                    break
                if give_up_at and time.monotonic() > give_up_at[0]:
                    chat.unacknowledged += 1
                    return
                await asyncio.sleep(RETRY_PAUSE)
            await asyncio.sleep(rng.uniform(0.05, 0.3))


@dataclass
class Stock:
    reserved: int = 0
    released: int = 0
    restocked: int = 0
    refused: int = 0
    errors: int = 0


async def stock_moves(database: Database, skus: list[str], stock: Stock, stop: asyncio.Event) -> None:
    rng = random.Random(99)
    held: list[int] = []
    while not stop.is_set():
        sku = rng.choice(skus[: max(1, len(skus) // 4)]) if rng.random() < 0.7 else rng.choice(skus)
        try:
            async with database.unit_of_work() as session:
                if held and rng.random() < 0.3:
                    await inventory.release_reservation(session, reservation_id=held.pop(rng.randrange(len(held))))
                    stock.released += 1
                else:
                    reservation = await inventory.reserve_stock(session, sku=sku, quantity=rng.randint(1, 2))
                    held.append(reservation.id)
                    stock.reserved += 1
        except InsufficientStock:
            stock.refused += 1
            async with database.unit_of_work() as session:
                await inventory.adjust_stock(session, sku=sku, location="RTM", delta=5)
            stock.restocked += 1
        except Exception:  # noqa: BLE001 - counted; the load goes on
            stock.errors += 1
        await asyncio.sleep(rng.uniform(0.02, 0.1))


async def wrong_skus(database: Database, skus: list[str], webhook: WebhookDouble) -> list[str]:
    async with database.sessions() as session:
        ours = await channels.channel_stock(session, code=CHANNEL, skus=skus)
    return [sku for sku in skus if webhook.quantity(sku) != ours[sku]]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with scratch_postgres(args.postgres, "shoptalk_chaos", keep=args.keep) as url:
        return await _run(args, url)


async def _run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    skus = [f"CH-{n:04d}" for n in range(args.skus)]
    webhook = WebhookDouble()
    webhook.start()
    proxy = CuttableProxy.for_url(url).start()
    work = Path(tempfile.mkdtemp(prefix="shoptalk-chaos-"))
    database = Database(url)  # the benchmark's own view: direct, never cut
    api = worker = None
    try:
        await prepare(url, skus, args.stock, webhook, args.reconcile_every)
        token = create_token(url, work)
        through = proxy.url_through(url)
        port = args.port
        base_url = f"http://127.0.0.1:{port}"
        api = Managed("api", [sys.executable, "-c", "from api.cli import main; main()", "serve", "--port", str(port)],
                      environment(through, work), work / "api.log")
        worker = Managed("worker", [sys.executable, "-m", "api.workers", "--lease-seconds", "5"],
                         environment(through, work), work / "worker.log")
        api.start()
        worker.start()
        timings: dict[str, float] = {"api_first_start_s": round(await wait_ready(base_url, api), 2)}

        chat, stock, stop = Chat(), Stock(), asyncio.Event()
        give_up_at: list[float] = []  # set when the load stops: a message still unacknowledged then is counted
        load = [asyncio.create_task(shopper(i, base_url, token, chat, stop, give_up_at))
                for i in range(args.shoppers)]
        # Half the SKUs keep moving; the other half move once as the channel goes down and then stay quiet, so
        # their pushes run out of tries (dead-lettered after about 2 minutes) and only reconciliation repairs them.
        busy, quiet = skus[: len(skus) // 2], skus[len(skus) // 2:]
        load.append(asyncio.create_task(stock_moves(database, busy, stock, stop)))
        began = time.monotonic()

        async def at(seconds: float) -> None:
            await asyncio.sleep(max(0.0, began + seconds - time.monotonic()))

        step = args.step
        webhook.fail_next(10**9, status=503)  # the sales channel goes down for the whole outage
        async with database.unit_of_work() as session:
            for sku in quiet:
                await inventory.reserve_stock(session, sku=sku, quantity=1)
        channel_back_at = began + args.channel_outage

        alert_before_recovery: dict[str, Any] = {}

        async def channel_recovers() -> None:
            await at(args.channel_outage - 1)
            # What the merchant sees just before the channel answers again.
            async with httpx.AsyncClient(base_url=base_url, timeout=10,
                                         headers={"Authorization": f"Bearer {token}"}) as http:
                try:
                    alert_before_recovery["alert"] = (await http.get(f"/api/v1/channels/{CHANNEL}")).json()["alert"]
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    alert_before_recovery["error"] = repr(exc)
            await at(args.channel_outage)
            webhook.fail_next(0)

        recovery = asyncio.create_task(channel_recovers())
        await at(step)
        api.kill9()
        killed = time.monotonic()
        api.start()
        timings["api_restart_to_ready_s"] = round(await wait_ready(base_url, api), 2)
        timings["api_down_s"] = round(time.monotonic() - killed, 2)
        await at(2 * step + timings["api_down_s"])
        worker.kill9()
        worker.start()
        await at(3 * step + timings["api_down_s"])
        proxy.cut()
        cut_at = time.monotonic()
        await asyncio.sleep(args.db_cut)
        proxy.restore()
        timings["db_cut_s"] = round(time.monotonic() - cut_at, 2)
        restored = time.monotonic()
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
            while (await http.get("/health/ready")).status_code != 200:
                await asyncio.sleep(0.1)
        timings["db_restore_to_ready_s"] = round(time.monotonic() - restored, 2)
        await recovery
        await at(max(args.channel_outage + step, 4 * step + timings["api_down_s"] + args.db_cut))
        stop.set()
        give_up_at.append(time.monotonic() + 120)
        await asyncio.gather(*load)
        load_s = time.monotonic() - began

        # The channel comes right only through the worker: pushes of later changes and the scheduled reconciliation.
        load_ended = time.monotonic()
        settle_deadline = load_ended + args.settle_timeout
        wrong = await wrong_skus(database, skus, webhook)
        while wrong and time.monotonic() < settle_deadline:
            await asyncio.sleep(1)
            wrong = await wrong_skus(database, skus, webhook)
        timings["channel_right_after_load_s"] = round(time.monotonic() - load_ended, 1)
        timings["channel_up_before_load_end_s"] = round(load_ended - channel_back_at, 1)
        async with httpx.AsyncClient(base_url=base_url, timeout=10,
                                     headers={"Authorization": f"Bearer {token}"}) as http:
            status = (await http.get(f"/api/v1/channels/{CHANNEL}")).json()

        async with database.sessions() as session:
            inbound = dict((await session.execute(
                select(ConversationMessage.external_id, ConversationMessage.id).where(
                    ConversationMessage.channel == "rest", ConversationMessage.direction == "in"))).all())
            replies = dict((await session.execute(
                select(ConversationMessage.in_reply_to, func.count()).where(
                    ConversationMessage.channel == "rest", ConversationMessage.direction == "out")
                .group_by(ConversationMessage.in_reply_to))).all())
            levels = await inventory.stock_levels(session, skus=skus)
            dead, _, _ = await ChannelRepository(session).unsettled_dead_summary(CHANNEL)
            # Dead-lettered during the outage, then made good by a reconciliation (superseded after every try).
            settled_dead = await session.scalar(select(func.count()).select_from(OutboxEvent).where(
                OutboxEvent.topic == PUSH_TOPIC, OutboxEvent.coalesce_key.like(f"{CHANNEL}:%"),
                OutboxEvent.status == SUPERSEDED, OutboxEvent.attempts >= OutboxEvent.max_attempts))
            all_dead = await ChannelRepository(session).push_counts(CHANNEL)
        lost = sum(1 for mid, (_, count) in chat.acked.items()
                   if mid not in inbound or (count > 0 and replies.get(inbound[mid], 0) == 0))
        duplicates = sum(max(0, replies.get(inbound[mid], 0) - count) for mid, (_, count) in chat.acked.items()
                         if mid in inbound)
        oversold = sum(max(0, level.reserved - level.on_hand) for level in levels)
        return {
            "backend": "postgresql", "quick": args.quick, "shoppers": args.shoppers, "skus": args.skus,
            "quiet_skus": len(quiet),
            "channel_outage_s": args.channel_outage, "reconcile_every_s": args.reconcile_every,
            "load_s": round(load_s, 1),
            "messages_lost": lost, "duplicate_replies": duplicates, "channels_wrong": int(bool(wrong)),
            "skus_wrong": len(wrong), "oversold_units": oversold,
            "messages": {"sent": chat.sent, "acknowledged": len(chat.acked), "unacknowledged": chat.unacknowledged,
                         "stored": len(inbound), "attempts": chat.attempts, "answers": chat.answers},
            "stock": {"reservations": stock.reserved, "releases": stock.released, "refused": stock.refused,
                      "restocks": stock.restocked, "errors": stock.errors},
            "channel": {"pushes_received": len(webhook.received), "requests": webhook.requests,
                        "dead_lettered_then_made_good": settled_dead, "dead_at_end": all_dead.get("dead", 0),
                        "dead_not_made_good": dead, "alert_before_recovery": alert_before_recovery,
                        "alert_at_end": status.get("alert"),
                        "last_reconciliation": {k: status["last_reconciliation"][k]
                                                for k in ("drifted", "repaired", "error")}
                        if status.get("last_reconciliation") else None},
            "timings": timings, "restarts": {"api": api.starts - 1, "worker": worker.starts - 1},
            "logs": str(work),
        }
    finally:
        for managed in (api, worker):
            if managed is not None:
                managed.stop()
        proxy.stop()
        webhook.stop()
        await database.dispose()


def main() -> None:
    register_stock_listener()  # our stock changes queue pushes
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("SHOPTALK_BENCH_POSTGRES_URL",
                                                             "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--quick", action="store_true", help="short outage and steps (about a minute)")
    parser.add_argument("--channel-outage", type=float, default=None, help="seconds the channel answers 503 (180)")
    parser.add_argument("--db-cut", type=float, default=None, help="seconds the database is cut (10)")
    parser.add_argument("--step", type=float, default=None, help="seconds between faults (15)")
    parser.add_argument("--reconcile-every", type=float, default=None, help="channel reconcile interval (20)")
    parser.add_argument("--shoppers", type=int, default=6)
    parser.add_argument("--skus", type=int, default=40)
    parser.add_argument("--stock", type=int, default=8)
    parser.add_argument("--settle-timeout", type=float, default=300.0)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    quick = {"channel_outage": 20.0, "db_cut": 5.0, "step": 6.0, "reconcile_every": 5.0}
    full = {"channel_outage": 180.0, "db_cut": 10.0, "step": 15.0, "reconcile_every": 20.0}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
