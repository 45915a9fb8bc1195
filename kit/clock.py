from __future__ import annotations

from datetime import UTC, datetime


class Clock:
    """Source of the current time; tests replace `now` to move time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


clock = Clock()


def utcnow() -> datetime:
    return clock.now()


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
