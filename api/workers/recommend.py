"""Worker contribution of recommendations: retrain from the orders on a schedule.

Gathered by api.workers.process.collect.
"""
from __future__ import annotations

import logging

from api.workers.jobs import PeriodicJob
from commerce.recommend.service import train
from kit.db import Database
from kit.settings import Settings

log = logging.getLogger(__name__)

RETRAIN_EVERY_SECONDS = 6 * 3600.0


def periodic_jobs(settings: Settings, database: Database) -> list[PeriodicJob]:
    async def retrain() -> None:
        async with database.unit_of_work() as session:
            report = await train(session, settings=settings)
        log.info("recommendations retrained: %d orders, %d items in %.1fs", report.orders, report.items,
                 report.seconds)

    return [PeriodicJob("retrain_recommendations", RETRAIN_EVERY_SECONDS, retrain)]
