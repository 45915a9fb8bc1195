"""Worker contribution of payments: unpaid orders past their expiry give their stock back, and every order status
change is told to the shopper on the chat where the order was placed."""
from __future__ import annotations

from api.workers.jobs import PeriodicJob
from bot.skills.order_status import notify_status_change
from commerce.orders.service import STATUS_CHANGED_TOPIC
from commerce.payments.service import REFUNDED_TOPIC, expire_orders
from kit.db import Database
from kit.outbox import Handler, OutboxEvent
from kit.settings import Settings


def periodic_jobs(settings: Settings, database: Database) -> list[PeriodicJob]:
    async def expire() -> int:
        async with database.unit_of_work() as session:
            return await expire_orders(session,
                                       default_expiry_minutes=settings.payments.order_expiry_minutes)

    return [PeriodicJob("expire_unpaid_orders", 30.0, expire)]


def outbox_handlers(settings: Settings, database: Database) -> dict[str, Handler]:
    async def notify(event: OutboxEvent) -> None:
        async with database.unit_of_work() as session:
            await notify_status_change(session, payload=dict(event.payload))

    return {STATUS_CHANGED_TOPIC: notify, REFUNDED_TOPIC: notify}
