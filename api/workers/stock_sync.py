"""Worker contribution of stock sync: the channel push handler and the pull/reconcile scheduler."""
from __future__ import annotations

import weakref

from api.workers.jobs import PeriodicJob
from commerce.channels import PUSH_TOPIC
from commerce.channels.sync import StockSync
from kit.db import Database
from kit.outbox import Handler
from kit.settings import Settings

SCHEDULER_TICK_SECONDS = 5.0
_syncs: weakref.WeakKeyDictionary[Database, StockSync] = weakref.WeakKeyDictionary()


def _sync(database: Database) -> StockSync:
    # One StockSync (and HTTP connection pool) per database per process.
    if database not in _syncs:
        _syncs[database] = StockSync(database)
    return _syncs[database]


def outbox_handlers(settings: Settings, database: Database) -> dict[str, Handler]:
    return {PUSH_TOPIC: _sync(database).push}


def periodic_jobs(settings: Settings, database: Database) -> list[PeriodicJob]:
    return [PeriodicJob("channel_pull_and_reconcile", SCHEDULER_TICK_SECONDS, _sync(database).run_due)]


async def close_syncs() -> None:
    """Close every StockSync this process opened (their HTTP connection pools)."""
    for sync in list(_syncs.values()):
        await sync.aclose()
