"""Pydantic field types that match the columns they are stored in, so the edge refuses what the database would
refuse or silently change (a NUL, an id past INTEGER, a decimal with more places than its scale)."""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, PlainSerializer, StringConstraints

MAX_ID = 2**31 - 1  # INTEGER primary keys on PostgreSQL (and what SQLite ids stay within)


def plain_decimal(value: Decimal) -> str:
    """A decimal in plain notation ("0.000001", never "1E-6"): what the OpenAPI string schema promises."""
    return format(value, "f")


def _no_nul(value: str) -> str:
    # PostgreSQL refuses NUL in text; caught here it is a 422, not a 500 from the driver.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


PlainDecimal = Annotated[Decimal, PlainSerializer(plain_decimal, return_type=str, when_used="json")]
# Numeric(24, 6): 18 digits before the point, 6 after; a value with more places is refused, not rounded.
Money = Annotated[PlainDecimal, Field(max_digits=24, decimal_places=6)]
# A percentage stored as Numeric(24, 6).
Percent = Annotated[PlainDecimal, Field(ge=0, le=100, max_digits=24, decimal_places=6)]
# Exchange rates: Numeric(24, 10).
Rate = Annotated[PlainDecimal, Field(max_digits=24, decimal_places=10)]
# An id in a body: a positive INTEGER.
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
Text = Annotated[str, AfterValidator(_no_nul)]


def trimmed(min_length: int, max_length: int) -> object:
    """Constraints for a text column of `max_length` characters that must keep `min_length` once trimmed."""
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)
