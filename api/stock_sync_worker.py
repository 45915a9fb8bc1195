"""Worker contributions of stock sync: the channel push handler and the pull/reconcile scheduler.

Listed in api.worker.WORKER_MODULES. `python -m api.stock_sync_worker --lease-seconds 5` runs the same worker
(every module's handlers and jobs) with a shorter outbox lease (for tests and benchmarks that kill workers) and,
optionally, several delivery loops in one process.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import weakref

from api.worker import PeriodicJob, collect
from commerce.channels.repository import PUSH_TOPIC
from commerce.channels.sync import StockSync, register_stock_listener
from kit.db import Database
from kit.logging import configure_logging
from kit.outbox import Handler, OutboxWorker
from kit.settings import Settings, get_settings

SCHEDULER_TICK_SECONDS = 5.0
_syncs: weakref.WeakKeyDictionary[Database, StockSync] = weakref.WeakKeyDictionary()


def _sync(database: Database) -> StockSync:
    # One StockSync (and HTTP connection pool) per database per process.
    register_stock_listener()
    if database not in _syncs:
        _syncs[database] = StockSync(database)
    return _syncs[database]


def outbox_handlers(settings: Settings, database: Database) -> dict[str, Handler]:
    return {PUSH_TOPIC: _sync(database).push}


def periodic_jobs(settings: Settings, database: Database) -> list[PeriodicJob]:
    return [PeriodicJob("channel_pull_and_reconcile", SCHEDULER_TICK_SECONDS, _sync(database).run_due)]


async def _run(settings: Settings, *, lease_seconds: float, batch_size: int, concurrency: int) -> None:
    from api.worker import _every

    database = Database(settings.database.url, pool_size=settings.database.pool_size)
    handlers, jobs = collect(settings, database)
    # Several delivery loops in one process overlap their waits on the channels and the database.
    workers = [OutboxWorker(database.sessions, handlers, lease_seconds=lease_seconds, batch_size=batch_size,
                            worker_id=f"{socket.gethostname()}:{os.getpid()}:{n}") for n in range(concurrency)]
    stop = asyncio.Event()
    try:
        await asyncio.gather(*(worker.run_forever(stop=stop, idle_sleep=0.05) for worker in workers),
                             *(_every(job, stop) for job in jobs))
    finally:
        for sync in list(_syncs.values()):
            await sync.aclose()
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description="ShopTalk worker with a chosen outbox lease.")
    parser.add_argument("--lease-seconds", type=float, default=60.0)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=1, help="delivery loops in this process")
    args = parser.parse_args()
    configure_logging()
    asyncio.run(_run(get_settings(), lease_seconds=args.lease_seconds, batch_size=args.batch_size,
                     concurrency=args.concurrency))


if __name__ == "__main__":
    main()
