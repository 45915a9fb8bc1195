"""Worker contribution of inventory: cart holds past their expiry are released."""
from __future__ import annotations

from api.workers.jobs import PeriodicJob
from commerce.inventory.service import release_expired_reservations
from kit.db import Database
from kit.settings import Settings


def periodic_jobs(settings: Settings, database: Database) -> list[PeriodicJob]:
    async def expire() -> int:
        async with database.unit_of_work() as session:
            return await release_expired_reservations(session)

    return [PeriodicJob("release_expired_reservations", 30.0, expire)]
