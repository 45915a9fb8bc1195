"""Checkout and payment under load on PostgreSQL. `--through chat` (default): see bench/checkout_chat.py (served
app, worker killed mid-way; shoppers on the Telegram double, the web chat socket and the REST channel, mixed by
`--channels telegram,web,rest`). `--through services`: shoppers check out concurrently (commerce checkout service),
pay through Stripe's API (localstripe, started here) and Stripe-signed webhooks are delivered twice each plus a
second event per payment, racing; a share of shoppers never pay and the expiry job releases their stock.

    python bench/checkout.py [--through chat|services] [--channels telegram,web,rest] [--shoppers 200]
                             [--concurrency 20] [--stock 150] [--unpaid 0.2] [--kill-after 0.4]
                             [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Prints one JSON object: orders/s (placed), p50/p99 seconds from "Pay" to the order paid (services) or to the
"Payment received" message (chat), and the same integrity counts in both modes (bench/checkout_integrity.py):
orders paid twice (must be 0), units oversold (0), reservations leaked after expiry (0), amount mismatches (0).
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import random
import socket
import subprocess
import time
from datetime import timedelta
from typing import Any

import stripe
from _common import percentile, scratch_postgres
from checkout_integrity import integrity

from api.migrations import upgrade
from commerce.checkout import service as checkout
from commerce.checkout.errors import SummaryChanged
from commerce.checkout.schemas import Address, CartLineIn
from commerce.inventory.errors import InsufficientStock
from commerce.payments import service as payments
from commerce.payments.providers import StripeProvider
from kit.clock import utcnow
from kit.db import Database
from tests.localstripe_server import command as localstripe_command

SECRET = "whsec_bench"
ADDRESS = Address(country="DE", recipient="Bench Shopper", street=["Unter den Linden 1"], city="BERLIN",
                  postcode="10115", phone="+49301234567")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signed(event: dict[str, Any]) -> tuple[bytes, str]:
    body = json.dumps(event).encode()
    stamp = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={stamp},v1={mac}"


async def _shop(database: Database, stock: int) -> None:
    from commerce.cross_border import import_rates
    from tests.commerce.checkout.conftest import make_checkout_shop  # the test shop: rules, rates, stock

    await make_checkout_shop(database)
    async with database.unit_of_work() as session:
        from commerce.inventory import service as inventory

        await inventory.set_stock(session, sku="TEE-1", location="RTM", on_hand=stock)
        today = utcnow().date()
        await import_rates(session, content=f"date,base,currency,rate\n{today},EUR,USD,1.25\n")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    port = _free_port()
    server = subprocess.Popen(localstripe_command(port),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        await asyncio.sleep(0.1)
    try:
        async with scratch_postgres(args.postgres, "bench_checkout") as url:
            if args.through == "chat":
                from checkout_chat import run_chat

                return await run_chat(args, base, url)
            database = Database(url, pool_size=args.concurrency + 5)
            await upgrade(database.engine)
            await _shop(database, args.stock)
            return await _load(database, base, args)
    finally:
        server.terminate()
        server.wait(timeout=10)


async def _load(database: Database, base: str, args: argparse.Namespace) -> dict[str, Any]:
    provider = StripeProvider(secret_key="sk_test_bench", pay_page_url="https://shop.example", api_base=base)
    client = stripe.StripeClient("sk_test_bench", base_addresses={"api": base}, http_client=stripe.HTTPXClient())
    rng = random.Random(7)
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    counts = {"placed": 0, "sold_out": 0, "changed": 0, "unpaid": 0}
    gate = asyncio.Semaphore(args.concurrency)

    async def deliver(event: dict[str, Any]) -> str:
        body, signature = _signed(event)
        async with database.unit_of_work() as session:
            return await payments.handle_stripe_webhook(session, payload=body, signature=signature, secret=SECRET)

    async def shopper(index: int) -> None:
        async with gate:
            lines = [CartLineIn(sku="TEE-1", quantity=rng.choice((1, 1, 2)))]
            async with database.sessions() as session:
                summary = await checkout.summarize(session, lines=lines, country="DE", currency="EUR",
                                                   address=ADDRESS, email=f"s{index}@example.com")
            try:
                async with database.unit_of_work() as session:
                    order, _ = await checkout.place_order(
                        session, digest=summary.digest, lines=lines, country="DE", currency="EUR", channel="web",
                        external_id=f"bench:{index}", address=ADDRESS, email=f"s{index}@example.com",
                        expires_in_minutes=30)
            except InsufficientStock:
                counts["sold_out"] += 1
                return
            except SummaryChanged:
                counts["changed"] += 1
                return
            counts["placed"] += 1
            if rng.random() < args.unpaid:
                counts["unpaid"] += 1
                return
            started = time.perf_counter()
            # A double click on Pay: two concurrent presses, one payment.
            async def press() -> int:
                async with database.unit_of_work() as session:
                    return (await payments.start_payment(session, order_id=order.id, provider=provider)).id
            opened = set(await asyncio.gather(press(), press()))
            assert len(opened) == 1, opened
            # The pay page opens it at Stripe, outside any transaction.
            reference = (await payments.complete_payment(database, payment_id=opened.pop(),
                                                         provider=provider)).reference
            card = await client.v1.payment_methods.create_async(params={
                "type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030,
                                         "cvc": "123"}})
            await client.v1.payment_intents.update_async(reference, params={"payment_method": card.id})
            await client.v1.payment_intents.confirm_async(reference)
            intent = (await client.v1.payment_intents.retrieve_async(reference)).to_dict()
            event = {"id": f"evt_{index}", "object": "event", "type": "payment_intent.succeeded",
                     "api_version": "2024-06-20", "created": int(time.time()), "data": {"object": intent}}
            twin = {**event, "id": f"evt_{index}_b"}
            # The event twice (Stripe's retry) and a second event for the same payment, all racing.
            for outcome in await asyncio.gather(deliver(event), deliver(event), deliver(twin)):
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(shopper(i) for i in range(args.shoppers)))
    elapsed = time.perf_counter() - began

    # Every unpaid order expires (the clock moved past its expiry) and gives its stock back.
    from kit.clock import clock

    real_now = clock.now
    clock.now = lambda: real_now() + timedelta(minutes=31)  # type: ignore[method-assign]
    try:
        async with database.unit_of_work() as session:
            expired = await payments.expire_orders(session, limit=10_000)
    finally:
        clock.now = real_now  # type: ignore[method-assign]

    checks = await integrity(database, stock=args.stock)
    await database.dispose()
    return {
        "benchmark": "checkout", "backend": "postgresql", "shoppers": args.shoppers,
        "concurrency": args.concurrency, "stock": args.stock,
        "orders_placed": counts["placed"], "sold_out": counts["sold_out"], "orders_paid": checks["orders_paid"],
        "orders_expired": expired, "orders_per_second": round(counts["placed"] / elapsed, 2),
        "pay_to_paid_p50_s": round(percentile(latencies, 0.5), 4),
        "pay_to_paid_p99_s": round(percentile(latencies, 0.99), 4),
        "webhook_outcomes": outcomes,
        **{name: value for name, value in checks.items() if name != "orders_paid"},
        "elapsed_s": round(elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shoppers", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--stock", type=int, default=150)
    parser.add_argument("--unpaid", type=float, default=0.2)
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--through", choices=("chat", "services"), default="chat",
                        help="chat: Telegram double + served app + worker process (bench/checkout_chat.py); "
                             "services: the checkout and payment services called directly")
    parser.add_argument("--channels", default="telegram",
                        help="chat: the shoppers' channels, taken in turn (telegram, web = the web chat socket, "
                             "rest = the Rasa REST channel), e.g. telegram,web,rest")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/2",
                        help="chat: Redis for the web chat's cross-process delivery (worker -> socket)")
    parser.add_argument("--kill-after", type=float, default=0.4, help="chat: SIGKILL the worker after this share")
    parser.add_argument("--lease-seconds", type=float, default=5.0, help="chat: the worker's outbox lease")
    parser.add_argument("--timeout", type=float, default=180.0, help="chat: seconds to wait for one reply")
    args = parser.parse_args()
    args.channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    if not args.channels or set(args.channels) - {"telegram", "web", "rest"}:
        parser.error("--channels: a comma-separated list of telegram, web, rest")
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
