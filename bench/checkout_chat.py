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
"""
from __future__ import annotations

import argparse
import asyncio
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
from _common import percentile
from sqlalchemy import func, select

from api.app import create_app
from api.migrations import upgrade
from commerce.inventory.models import Reservation, StockLevel
from commerce.orders.models import Order, OrderLine, OrderStatusChange
from commerce.payments import service as payments
from commerce.payments.models import PaymentEvent
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


def _env(url: str, stripe_base: str, telegram_base: str) -> dict[str, str]:
    return {**os.environ, "SHOPTALK_ENVIRONMENT": "development", "SHOPTALK_DATABASE__URL": url,
            "SHOPTALK_SECURITY__SECRET_KEY": "bench-secret-key-0123456789",
            "SHOPTALK_SECURITY__TELEGRAM_BOT_TOKEN": BOT_TOKEN, "SHOPTALK_TELEGRAM__API_BASE": telegram_base,
            "SHOPTALK_TELEGRAM__MODE": "polling", "SHOPTALK_PAYMENTS__STRIPE_SECRET_KEY": "sk_test_bench",
            "SHOPTALK_PAYMENTS__STRIPE_WEBHOOK_SECRET": SECRET, "SHOPTALK_PAYMENTS__STRIPE_API_BASE": stripe_base,
            "SHOPTALK_PAYMENTS__STRIPE_PUBLISHABLE_KEY": "pk_test_bench"}


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
    env = _env(url, stripe_base, double.base_url)
    settings = Settings(environment="development", database={"url": url, "pool_size": args.concurrency + 5},
                        security={"secret_key": "bench-secret-key-0123456789", "telegram_bot_token": BOT_TOKEN},
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

    async def shopper(index: int) -> None:
        nonlocal finished
        chat = 900_000 + index
        async with gate:
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
                if index % 2 == 0:
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
        async with database.sessions() as session:
            paid_twice = await session.scalar(select(func.count()).select_from(
                select(OrderStatusChange.order_id).where(OrderStatusChange.to_status == "paid")
                .group_by(OrderStatusChange.order_id).having(func.count() > 1).subquery()))
            overpaid = await session.scalar(select(func.count()).where(Order.amount_paid > Order.total))
            level = await session.scalar(select(StockLevel).where(StockLevel.sku == "TEE-1"))
            leaked = await session.scalar(select(func.count()).select_from(Reservation)
                                          .join(OrderLine, OrderLine.reservation_id == Reservation.id)
                                          .join(Order, Order.id == OrderLine.order_id)
                                          .where(Order.status == "expired", Reservation.status == "active"))
            mismatches = await session.scalar(select(func.count()).where(PaymentEvent.outcome == "mismatch"))
            paid = await session.scalar(select(func.count()).where(Order.status == "paid"))
            sold = await session.scalar(select(func.coalesce(func.sum(Reservation.quantity), 0))
                                        .where(Reservation.status == "committed"))
    finally:
        await database.dispose()
    assert level is not None
    return {
        "benchmark": "checkout", "through": "chat (Telegram double + aiogram, pay page, localstripe, worker)",
        "backend": "postgresql", "shoppers": args.shoppers, "concurrency": args.concurrency, "stock": args.stock,
        "orders_placed": counts["placed"], "sold_out": counts["sold_out"], "orders_paid": paid,
        "paid_with": {"stripe": counts["stripe"], "telegram": counts["telegram"]}, "unpaid": counts["unpaid"],
        "shoppers_failed": counts["failed"], "orders_expired": expired,
        "orders_per_second": round(counts["placed"] / elapsed, 3),
        "pay_to_paid_message_p50_s": round(percentile(latencies, 0.5), 3),
        "pay_to_paid_message_p99_s": round(percentile(latencies, 0.99), 3),
        "stripe_webhook_outcomes": outcomes,
        "worker_killed_after_s": round(killed_at - began, 1) if killed_at else None,
        "orders_paid_twice": int(paid_twice or 0) + int(overpaid or 0),
        "units_oversold": max(0, int(sold or 0) - args.stock) + (1 if level.on_hand < 0 else 0),
        "reservations_leaked_after_expiry": int(leaked or 0),
        "amount_mismatches": int(mismatches or 0),
        "elapsed_s": round(elapsed, 1),
    }
