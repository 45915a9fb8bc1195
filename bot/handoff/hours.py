"""The team's opening hours: whether a person can answer now, and when the team is back."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kit.clock import as_utc


class OpeningHours(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    always_open: bool = True
    timezone: str = "Europe/Berlin"
    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], description="0 = Monday")
    # Wall-clock times in `timezone`, without an offset: RFC 3339 "partial-time", not "time" (which needs one).
    opens: time = Field(default=time(9, 0), json_schema_extra={"format": "partial-time"})
    closes: time = Field(default=time(18, 0), json_schema_extra={"format": "partial-time"})

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if any(d < 0 or d > 6 for d in value):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return sorted(set(value))

    @model_validator(mode="after")
    def _a_real_window(self) -> OpeningHours:
        if not self.always_open:
            if not self.days:
                raise ValueError("pick at least one opening day (or always open)")
            if self.opens >= self.closes:
                raise ValueError("the team must open before it closes (opens < closes, same day)")
        return self

    def is_open(self, when: datetime) -> bool:
        if self.always_open:
            return True
        local = as_utc(when).astimezone(ZoneInfo(self.timezone))
        return local.weekday() in self.days and self.opens <= local.time().replace(tzinfo=None) < self.closes

    def next_opening(self, when: datetime) -> datetime | None:
        if self.always_open or not self.days:
            return None
        zone = ZoneInfo(self.timezone)
        local = as_utc(when).astimezone(zone)
        for ahead in range(8):
            day = (local + timedelta(days=ahead)).date()
            start = datetime.combine(day, self.opens, tzinfo=zone)
            if day.weekday() in self.days and start > local:
                return start
        return None
