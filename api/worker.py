"""The worker process: delivers the outbox and runs periodic jobs (expired reservations, ...).

Packages contribute through modules listed in WORKER_MODULES, each optionally defining
`outbox_handlers(settings, database) -> dict[topic, handler]` and
`periodic_jobs(settings, database) -> list[PeriodicJob]`.
"""
from __future__ import annotations

import asyncio
import importlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from commerce.inventory.service import release_expired_reservations
from kit.db import Database, database_unavailable_cause
from kit.outbox import Handler, OutboxWorker
from kit.settings import Settings

log = logging.getLogger(__name__)

WORKER_MODULES: list[str] = ["api.worker", "api.channel_worker", "api.stock_sync_worker", "api.recommend_worker"]


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every_seconds: float
    run: Callable[[], Awaitable[object]]


def outbox_handlers(settings: Settings, database: Database) -> dict[str, Handler]:
    return {}


def periodic_jobs(settings: Settings, database: Database) -> list[PeriodicJob]:
    async def expire() -> int:
        async with database.unit_of_work() as session:
            return await release_expired_reservations(session)

    return [PeriodicJob("release_expired_reservations", 30.0, expire)]


def collect(settings: Settings, database: Database) -> tuple[dict[str, Handler], list[PeriodicJob]]:
    handlers: dict[str, Handler] = {}
    jobs: list[PeriodicJob] = []
    for name in WORKER_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "outbox_handlers"):
            handlers.update(module.outbox_handlers(settings, database))
        if hasattr(module, "periodic_jobs"):
            jobs.extend(module.periodic_jobs(settings, database))
    return handlers, jobs


async def _every(job: PeriodicJob, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await job.run()
        except Exception as exc:  # a failing job is logged and retried next round
            cause = database_unavailable_cause(exc)
            if cause is not None:  # an outage is one line per round, not a traceback
                log.warning("periodic job %s skipped: database unavailable (%s)", job.name, cause)
            else:
                log.exception("periodic job %s failed", job.name)
        try:
            await asyncio.wait_for(stop.wait(), timeout=job.every_seconds)
        except TimeoutError:
            pass


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    database = Database(settings.database.url, pool_size=settings.database.pool_size)
    handlers, jobs = collect(settings, database)
    worker = OutboxWorker(database.sessions, handlers, worker_id=f"{socket.gethostname()}:{os.getpid()}")
    log.info("worker started: %d outbox topics, %d periodic jobs", len(handlers), len(jobs))
    try:
        await asyncio.gather(worker.run_forever(stop=stop), *(_every(job, stop) for job in jobs))
    finally:
        await database.dispose()
