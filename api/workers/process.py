"""The worker process: delivers the outbox (channel messages, stock pushes) and runs the periodic jobs.

`shoptalk worker` runs it. `python -m api.workers --lease-seconds 5` runs the same worker with a shorter outbox
lease (for tests and benchmarks that kill workers) and, optionally, several delivery loops in one process.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket

from api.workers import channels, payments, recommend, reservations, stock_sync
from api.workers.jobs import PeriodicJob, run_every
from commerce.channels import register_stock_listener
from kit.db import Database
from kit.logging import configure_logging
from kit.outbox import Handler, OutboxWorker
from kit.settings import Settings, get_settings

log = logging.getLogger(__name__)


def collect(settings: Settings, database: Database) -> tuple[dict[str, Handler], list[PeriodicJob]]:
    """Every part's outbox handlers (by topic) and periodic jobs."""
    handlers = {**channels.outbox_handlers(settings, database), **stock_sync.outbox_handlers(settings, database),
                **payments.outbox_handlers(settings, database)}
    jobs = [*reservations.periodic_jobs(settings, database), *stock_sync.periodic_jobs(settings, database),
            *recommend.periodic_jobs(settings, database), *payments.periodic_jobs(settings, database)]
    return handlers, jobs


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    register_stock_listener()  # stock the jobs change (expired holds released) queues its channel pushes
    database = Database(settings.database.url, pool_size=settings.database.pool_size)
    handlers, jobs = collect(settings, database)
    worker = OutboxWorker(database.sessions, handlers, worker_id=f"{socket.gethostname()}:{os.getpid()}")
    log.info("worker started: %d outbox topics, %d periodic jobs", len(handlers), len(jobs))
    try:
        await asyncio.gather(worker.run_forever(stop=stop), *(run_every(job, stop) for job in jobs))
    finally:
        await database.dispose()


async def run_with_lease(settings: Settings, *, lease_seconds: float, batch_size: int, concurrency: int) -> None:
    """The same worker with a chosen lease and batch, and `concurrency` delivery loops in this process."""
    register_stock_listener()
    database = Database(settings.database.url, pool_size=settings.database.pool_size)
    handlers, jobs = collect(settings, database)
    # Several delivery loops in one process overlap their waits on the channels and the database.
    workers = [OutboxWorker(database.sessions, handlers, lease_seconds=lease_seconds, batch_size=batch_size,
                            worker_id=f"{socket.gethostname()}:{os.getpid()}:{n}") for n in range(concurrency)]
    stop = asyncio.Event()
    try:
        await asyncio.gather(*(worker.run_forever(stop=stop, idle_sleep=0.05) for worker in workers),
                             *(run_every(job, stop) for job in jobs))
    finally:
        await stock_sync.close_syncs()
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description="ShopTalk worker with a chosen outbox lease.")
    parser.add_argument("--lease-seconds", type=float, default=60.0)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=1, help="delivery loops in this process")
    args = parser.parse_args()
    configure_logging()
    asyncio.run(run_with_lease(get_settings(), lease_seconds=args.lease_seconds, batch_size=args.batch_size,
                               concurrency=args.concurrency))
