"""Worker contribution of payments: unpaid orders past their expiry give their stock back, every order status
change is told to the shopper on the chat where the order was placed, and the open payments of cancelled or expired
orders are closed at their provider (a Stripe intent cancelled)."""
from __future__ import annotations

from api.workers.jobs import PeriodicJob
from bot.skills.order_status import notify_status_change
from commerce.orders.service import STATUS_CHANGED_TOPIC
from commerce.payments.providers import provider_for
from commerce.payments.service import CANCEL_INTENT_TOPIC, REFUNDED_TOPIC, close_at_provider, expire_orders
from kit.db import Database
from kit.outbox import DeliveryError, Handler, OutboxEvent
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

    async def close(event: OutboxEvent) -> None:
        provider = provider_for(str(event.payload["provider"]), settings.payments)
        outcome = await close_at_provider(database, payment_id=int(event.payload["payment_id"]),
                                          opened=bool(event.payload.get("opened", True)), provider=provider,
                                          reference=str(event.payload.get("reference") or "") or None)
        if outcome == "processing":  # neither paid nor cancellable yet: ask again in a minute
            raise DeliveryError("the payment is still processing at the provider", retry_after=60.0)

    return {STATUS_CHANGED_TOPIC: notify, REFUNDED_TOPIC: notify, CANCEL_INTENT_TOPIC: close}
