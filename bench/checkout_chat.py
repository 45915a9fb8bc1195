"""Checkout THROUGH THE CHAT under load on PostgreSQL (bench/checkout.py --through chat).

The served app (uvicorn, its real NLU and Telegram runtime polling the project's Telegram Bot API double through
aiogram) and a worker process (`python -m api.workers`, outbox + expiry job) run against a scratch PostgreSQL
database; localstripe is Stripe. Each shopper, a Telegram chat, adds a tee to the cart, checks out (country, e-mail,
address fields, the summary's Place order button) and pays:
- Stripe (even shoppers): presses Pay with Stripe, opens the pay link (the page opens the payment at Stripe), pays
  at localstripe; the Stripe-signed webhook is delivered twice (a replay) and a stale payment_failed event after it
  (out of order);
- Telegram Payments (odd shoppers): presses Pay in Telegram, the invoice arrives, Telegram's pre_checkout_query is
  answered by the app, successful_payment is delivered twice.
The time measured runs from the Pay press to the "Payment received" message the shopper gets (sent by the worker).
Part way through, the worker is killed with SIGKILL and restarted (its outbox leases expire and are re-claimed).
A share of shoppers never pays: their orders expire and release stock.

`--channels telegram,web,rest` mixes the channels (shopper i takes the i-th in turn): `web` shoppers speak through
the web chat socket (/ws/chat: message and button frames, replies as frames; the worker's "Payment received"
reaches the socket through Redis pub/sub, db `--redis`), `rest` shoppers through the Rasa REST channel (signed
requests, replies inline; REST has no push, so their "Payment received" is the message the worker stores in the
conversation, polled from the database). Both pay with Stripe (Telegram Payments exist in Telegram only). Rate
limits are off (every shopper comes from 127.0.0.1: a capacity benchmark, not a throttle test).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import websockets
from _common import percentile
from checkout_integrity import integrity
from sqlalchemy import select

from api.app import create_app
from api.migrations import upgrade
from bot.channels.rest import sign
from bot.conversations.models import Conversation, ConversationMessage
from commerce.payments import service as payments
from commerce.payments.schemas import PaymentMethodIn
from kit.clock import clock
from kit.db import Database
from kit.settings import Settings
from tests.bot.channels.telegram_double import SentMessage, TelegramDouble
from tests.commerce.checkout.conftest import signed
from tests.commerce.checkout.test_payments import pay_at_stripe
from tests.http import served_in_thread

BOT_TOKEN = "123456:bench-checkout-chat-token-abcdefghijk"
SECRET = "whsec_bench_chat"
PAID_TEXT = "Payment received for order #"
REST_SECRET = "bench-rest-channel-secret-0123456789"


class WebShopper:
    """A web chat widget without the page: one socket, message and button frames, replies read as they come."""

    def __init__(self, base: str, timeout: float) -> None:
        self.url = base.replace("http://", "ws://") + "/ws/chat"
        self.timeout = timeout
        self.sent = 0
        self.socket: Any = None

    async def open(self) -> None:
        self.socket = await websockets.connect(self.url, max_size=2**22)
        while (await self._frame())["type"] != "history":
            pass

    async def _frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.socket.recv(), timeout=self.timeout))
        if frame["type"] == "error":
            raise AssertionError(f"web chat error: {frame}")
        return frame

    async def wait_for(self, expect: tuple[str, ...]) -> dict[str, Any]:
        """The next reply whose text has one of `expect` ("" : any reply)."""
        while True:
            frame = await self._frame()
            if frame["type"] == "reply" and any(e in (frame["message"].get("text") or "") for e in expect):
                return dict(frame["message"])

    async def turn(self, *, expect: tuple[str, ...], text: str | None = None, payload: str | None = None
                   ) -> dict[str, Any]:
        self.sent += 1
        frame = {"type": "button", "payload": payload} if payload else {"type": "message", "text": text}
        await self.socket.send(json.dumps({**frame, "id": f"m{self.sent}", "locale": "en"}))
        return await self.wait_for(expect)

    async def wait_paid(self, number: str) -> None:
        await self.wait_for((f"{PAID_TEXT}{number}",))

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()


class RestShopper:
    """A shop's server speaking for its shopper on the Rasa REST channel (signed); replies come back inline."""

    def __init__(self, http: httpx.AsyncClient, sender: str, database: Database, timeout: float) -> None:
        self.http, self.sender, self.database, self.timeout = http, sender, database, timeout

    async def open(self) -> None:
        pass

    async def turn(self, *, expect: tuple[str, ...], text: str | None = None, payload: str | None = None
                   ) -> dict[str, Any]:
        body = json.dumps({"sender": self.sender, "message": payload or text,
                           "metadata": {"payload": True, "locale": "en"} if payload else {"locale": "en"}}).encode()
        answer = await self.http.post("/webhooks/rest/webhook", content=body, headers={
            "Content-Type": "application/json", "X-ShopTalk-Signature": sign(REST_SECRET, body, int(time.time()))})
        assert answer.status_code == 200, answer.text[:300]
        replies: list[dict[str, Any]] = answer.json()
        found = next((r for r in replies if any(e in r.get("text", "") for e in expect)), None)
        assert found is not None, f"no reply with {expect}: {[r.get('text', '')[:80] for r in replies]}"
        return found

    async def wait_paid(self, number: str) -> None:
        """REST has no push: the worker stores the message in the conversation; polled every 50 ms."""
        query = (select(ConversationMessage.id)
                 .join(Conversation, Conversation.id == ConversationMessage.conversation_id)
                 .where(Conversation.channel == "rest", Conversation.sender_id == self.sender,
                        ConversationMessage.direction == "out",
                        ConversationMessage.text.startswith(f"{PAID_TEXT}{number}")).limit(1))
        deadline = time.monotonic() + self.timeout
        while True:
            async with self.database.sessions() as session:
                if await session.scalar(query) is not None:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {PAID_TEXT}{number} stored for {self.sender}")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        pass


def _button(reply: dict[str, Any], title: str) -> str:
    return str(next(b["payload"] for b in reply.get("buttons") or [] if title in b["title"]))


def _env(url: str, stripe_base: str, telegram_base: str, redis: str) -> dict[str, str]:
    return {**os.environ, "SHOPTALK_ENVIRONMENT": "development", "SHOPTALK_DATABASE__URL": url,
            "SHOPTALK_SECURITY__SECRET_KEY": "bench-secret-key-0123456789",
            "SHOPTALK_SECURITY__TELEGRAM_BOT_TOKEN": BOT_TOKEN, "SHOPTALK_TELEGRAM__API_BASE": telegram_base,
            "SHOPTALK_TELEGRAM__MODE": "polling", "SHOPTALK_PAYMENTS__STRIPE_SECRET_KEY": "sk_test_bench",
            "SHOPTALK_PAYMENTS__STRIPE_WEBHOOK_SECRET": SECRET, "SHOPTALK_PAYMENTS__STRIPE_API_BASE": stripe_base,
            "SHOPTALK_PAYMENTS__STRIPE_PUBLISHABLE_KEY": "pk_test_bench", "SHOPTALK_REDIS__URL": redis,
            "SHOPTALK_RATE_LIMITS__ENABLED": "false"}


def _worker(env: dict[str, str], lease: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "api.workers", "--lease-seconds", str(lease)], env=env,
                            cwd=str(Path(__file__).resolve().parents[1]), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


async def _shop(url: str, stock: int) -> None:
    from commerce.cross_border import import_rates
    from commerce.inventory import service as inventory
    from kit.clock import utcnow
    from tests.commerce.checkout.conftest import make_checkout_shop

    database = Database(url)
    try:
        await upgrade(database.engine)
        await make_checkout_shop(database)
        async with database.unit_of_work() as session:
            await inventory.set_stock(session, sku="TEE-1", location="RTM", on_hand=stock)
            today = utcnow().date()
            await import_rates(session, content=f"date,base,currency,rate\n{today},EUR,USD,1.25\n")
            for provider, position in (("stripe", 1), ("telegram", 2)):
                await payments.set_method(session, data=PaymentMethodIn(country="*", channel="*", provider=provider,
                                                                        method_types=["card"], position=position))
    finally:
        await database.dispose()


async def run_chat(args: argparse.Namespace, stripe_base: str, url: str) -> dict[str, Any]:
    await _shop(url, args.stock)
    double = await TelegramDouble(token=BOT_TOKEN).start()
    env = _env(url, stripe_base, double.base_url, args.redis)
    settings = Settings(environment="development", database={"url": url, "pool_size": args.concurrency + 5},
                        security={"secret_key": "bench-secret-key-0123456789", "telegram_bot_token": BOT_TOKEN,
                                  "rest_channel_secret": REST_SECRET},
                        redis={"url": args.redis}, rate_limits={"enabled": False},
                        telegram={"api_base": double.base_url, "mode": "polling"},
                        payments={"stripe_secret_key": "sk_test_bench", "stripe_webhook_secret": SECRET,
                                  "stripe_api_base": stripe_base, "stripe_publishable_key": "pk_test_bench",
                                  "public_url": "http://127.0.0.1"})
    worker = _worker(env, args.lease_seconds)
    served = served_in_thread(create_app(settings), name="bench-checkout-chat", start_timeout=300)
    try:
        # Started from a thread: this loop keeps serving the Telegram double while the app starts and polls it.
        base = await asyncio.to_thread(served.__enter__)
        try:
            return await _load(args, double, base, stripe_base, url, env, [worker])
        finally:
            await asyncio.to_thread(served.__exit__, None, None, None)
    finally:
        if worker.poll() is None:
            worker.kill()
        await double.stop()


async def _load(args: argparse.Namespace, double: TelegramDouble, base: str, stripe_base: str, url: str,
                env: dict[str, str], workers: list[subprocess.Popen[bytes]]) -> dict[str, Any]:
    http = httpx.AsyncClient(base_url=base, timeout=60)
    rng = random.Random(7)
    gate = asyncio.Semaphore(args.concurrency)
    latencies: list[float] = []
    counts = {"placed": 0, "sold_out": 0, "unpaid": 0, "stripe": 0, "telegram": 0, "failed": 0}
    outcomes: dict[str, int] = {}
    finished = 0
    killed_at: float | None = None
    kill_lock = asyncio.Lock()

    async def turn(chat: int, text: str | None, expect: str, *, press: tuple[SentMessage, str] | None = None
                   ) -> SentMessage:
        before = len(double.to(chat))
        if press is not None:
            await double.user_presses(chat, press[0], press[1])
        else:
            assert text is not None
            await double.user_sends(chat, text)
        return await double.wait_for_text(chat, expect, after=before, timeout=args.timeout)

    async def webhook(event: dict[str, Any]) -> None:
        body, signature = signed(event, secret=SECRET)
        answer = await http.post("/webhooks/stripe", content=body,
                                 headers={"Stripe-Signature": signature, "Content-Type": "application/json"})
        outcome = str(answer.json().get("outcome", answer.status_code))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    async def maybe_kill() -> None:
        nonlocal killed_at
        async with kill_lock:
            if killed_at is None and finished >= args.shoppers * args.kill_after:
                killed_at = time.perf_counter()
                workers[-1].send_signal(signal.SIGKILL)  # mid-way: claimed events keep their lease
                workers[-1].wait()
                await asyncio.sleep(1.0)
                workers.append(_worker(env, args.lease_seconds))

    channels: list[str] = list(getattr(args, "channels", None) or ["telegram"])
    by_channel = dict.fromkeys(channels, 0)
    reader = Database(url)

    async def chat_shopper(index: int, client: WebShopper | RestShopper) -> None:
        """A web chat or REST shopper: the same steps as a Telegram one, paying with Stripe."""
        await client.open()
        try:
            quantity = rng.choice((1, 1, 2))
            added = await client.turn(payload=f"cart:add:TEE-1:{quantity}", expect=("Added", "Sorry"))
            if "Added" not in added["text"]:
                counts["sold_out"] += 1
                return
            await client.turn(payload="checkout:start", expect=("Which country",))
            for text, expect in (("Germany", "e-mail"), (f"s{index}@example.com", "full name"),
                                 ("Bench Shopper", "street address"), ("Unter den Linden 1", "city"),
                                 ("Berlin", "postcode"), ("10115", "phone number")):
                await client.turn(text=text, expect=(expect,))
            summary = await client.turn(text="030 1234567", expect=("Please check your order",))
            placed = await client.turn(payload=_button(summary, "Place order"),
                                       expect=("is placed", "Sorry", "changed"))
            if "is placed" not in placed["text"]:
                counts["sold_out"] += 1
                return
            counts["placed"] += 1
            number = re.search(r"#(\d+)", placed["text"])
            assert number is not None, placed["text"]
            if rng.random() < args.unpaid:
                counts["unpaid"] += 1
                return
            started = time.perf_counter()
            link = await client.turn(payload=f"pay:stripe:{number.group(1)}", expect=("here:",))
            page = await http.get(link["text"].rsplit("here:", 1)[1].strip().replace("http://127.0.0.1", base))
            found = re.search(r'"(pi_[A-Za-z0-9]+)_secret_', page.text)
            assert page.status_code == 200, page.text[:300]
            assert found is not None, page.text[:300]
            intent = await pay_at_stripe(stripe_base, found.group(1))
            event = {"id": f"evt_{index}", "object": "event", "type": "payment_intent.succeeded",
                     "api_version": "2024-06-20", "created": int(time.time()), "data": {"object": intent}}
            stale = {**event, "id": f"evt_{index}_failed", "type": "payment_intent.payment_failed",
                     "created": int(time.time()) - 30}
            await asyncio.gather(webhook(event), webhook(event))  # Stripe's retry, racing
            await webhook(stale)  # an older event arriving last
            await client.wait_paid(number.group(1))
            counts["stripe"] += 1
            latencies.append(time.perf_counter() - started)
            by_latency.setdefault(channel_of(index), []).append(time.perf_counter() - started)
        finally:
            await client.close()

    def channel_of(index: int) -> str:
        return channels[index % len(channels)]

    by_latency: dict[str, list[float]] = {}

    async def shopper(index: int) -> None:
        nonlocal finished
        chat = 900_000 + index
        channel = channel_of(index)
        async with gate:
            by_channel[channel] += 1
            if channel != "telegram":
                try:
                    client: WebShopper | RestShopper = (WebShopper(base, args.timeout) if channel == "web" else
                                                        RestShopper(http, f"bench-rest-{index}", reader, args.timeout))
                    await chat_shopper(index, client)
                except (AssertionError, TimeoutError, OSError, websockets.WebSocketException) as error:
                    counts["failed"] += 1
                    print(f"shopper {index} ({channel}): {error!r}"[:300], file=sys.stderr)
                finally:
                    finished += 1
                    await maybe_kill()
                return
            try:
                menu = await turn(chat, "/start", "")
                quantity = rng.choice((1, 1, 2))
                added = await turn(chat, None, "", press=(menu, f"cart:add:TEE-1:{quantity}"))
                if "Added" not in added.text:  # "Sorry, only 0 of Tee in stock.": sold out before checkout
                    counts["sold_out"] += 1
                    return
                await turn(chat, None, "Which country", press=(added, "checkout:start"))
                await turn(chat, "Germany", "e-mail")
                await turn(chat, f"s{index}@example.com", "full name")
                await turn(chat, "Bench Shopper", "street address")
                await turn(chat, "Unter den Linden 1", "city")
                await turn(chat, "Berlin", "postcode")
                await turn(chat, "10115", "phone number")
                summary = await turn(chat, "030 1234567", "Please check your order")
                place = summary.button("Place order")["callback_data"]
                placed = await turn(chat, None, "", press=(summary, place))
                if "is placed" not in placed.text:
                    counts["sold_out"] += 1  # not enough stock left: the chat said so
                    return
                counts["placed"] += 1
                number = re.search(r"#(\d+)", placed.text)
                assert number is not None, placed.text
                if rng.random() < args.unpaid:
                    counts["unpaid"] += 1
                    return
                if (index // len(channels)) % 2 == 0:
                    started = time.perf_counter()
                    link = await turn(chat, None, "here:", press=(placed, f"pay:stripe:{number.group(1)}"))
                    page_url = link.text.rsplit("here:", 1)[1].strip()
                    page = await http.get(page_url.replace("http://127.0.0.1", base))
                    found = re.search(r'"(pi_[A-Za-z0-9]+)_secret_', page.text)
                    assert page.status_code == 200, page.text[:300]
                    assert found is not None, page.text[:300]
                    intent_id = found.group(1)
                    intent = await pay_at_stripe(stripe_base, intent_id)  # the shopper's card, at localstripe
                    event = {"id": f"evt_{index}", "object": "event", "type": "payment_intent.succeeded",
                             "api_version": "2024-06-20", "created": int(time.time()), "data": {"object": intent}}
                    stale = {**event, "id": f"evt_{index}_failed", "type": "payment_intent.payment_failed",
                             "created": int(time.time()) - 30}
                    before = len(double.to(chat))
                    await asyncio.gather(webhook(event), webhook(event))  # Stripe's retry, racing
                    await webhook(stale)  # an older event arriving last
                    await double.wait_for_text(chat, PAID_TEXT, after=before, timeout=args.timeout)
                    counts["stripe"] += 1
                else:
                    started = time.perf_counter()
                    invoices = len(double.invoices)
                    await double.user_presses(chat, placed, f"pay:telegram:{number.group(1)}")
                    deadline = time.monotonic() + args.timeout
                    while not any(i["chat_id"] == chat for i in double.invoices[invoices:]):
                        assert time.monotonic() < deadline, "no invoice"
                        await asyncio.sleep(0.05)
                    invoice = next(i for i in double.invoices[invoices:] if i["chat_id"] == chat)
                    answers = len(double.pre_checkout_answers)
                    await double.push_update(double.pre_checkout_update(chat, invoice))
                    while len(double.pre_checkout_answers) == answers:
                        assert time.monotonic() < deadline, "no pre-checkout answer"
                        await asyncio.sleep(0.05)
                    before = len(double.to(chat))
                    paid = double.successful_payment_update(chat, invoice, charge_id=f"tg_{index}")
                    await double.push_update(paid)
                    await double.push_update(paid)  # Telegram re-delivering the same update
                    await double.wait_for_text(chat, PAID_TEXT, after=before, timeout=args.timeout)
                    counts["telegram"] += 1
                latencies.append(time.perf_counter() - started)
                by_latency.setdefault("telegram", []).append(time.perf_counter() - started)
            except (AssertionError, TimeoutError) as error:
                counts["failed"] += 1
                print(f"shopper {index}: {error}"[:300], file=sys.stderr)
            finally:
                finished += 1
                await maybe_kill()

    began = time.perf_counter()
    await asyncio.gather(*(shopper(i) for i in range(args.shoppers)))
    elapsed = time.perf_counter() - began
    await http.aclose()
    await reader.dispose()
    for process in workers:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)

    database = Database(url)
    try:
        real_now = clock.now
        clock.now = lambda: real_now() + timedelta(hours=3)  # type: ignore[method-assign]
        try:
            async with database.unit_of_work() as session:
                expired = await payments.expire_orders(session, limit=10_000)
        finally:
            clock.now = real_now  # type: ignore[method-assign]
        checks = await integrity(database, stock=args.stock)
    finally:
        await database.dispose()
    return {
        "benchmark": "checkout", "through": "chat (Telegram double + aiogram, web chat socket, REST channel, pay "
                                            "page, localstripe, worker)",
        "backend": "postgresql", "shoppers": args.shoppers, "concurrency": args.concurrency, "stock": args.stock,
        "channels": by_channel,
        "orders_placed": counts["placed"], "sold_out": counts["sold_out"], "orders_paid": checks["orders_paid"],
        "paid_with": {"stripe": counts["stripe"], "telegram": counts["telegram"]}, "unpaid": counts["unpaid"],
        "shoppers_failed": counts["failed"], "orders_expired": expired,
        "orders_per_second": round(counts["placed"] / elapsed, 3),
        "pay_to_paid_message_p50_s": round(percentile(latencies, 0.5), 3),
        "pay_to_paid_message_p99_s": round(percentile(latencies, 0.99), 3),
        "pay_to_paid_message_p50_s_by_channel": {name: round(percentile(values, 0.5), 3)
                                                 for name, values in sorted(by_latency.items())},
        "stripe_webhook_outcomes": outcomes,
        "worker_killed_after_s": round(killed_at - began, 1) if killed_at else None,
        **{name: value for name, value in checks.items() if name != "orders_paid"},
        "elapsed_s": round(elapsed, 1),
    }
