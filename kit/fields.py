"""Pydantic field types that match the columns they are stored in, so the edge refuses what the database would
refuse or silently change (an id past INTEGER, a decimal with more places than its column's scale)."""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, PlainSerializer

MAX_ID = 2**31 - 1  # INTEGER primary keys on PostgreSQL (and what SQLite ids stay within)


def plain_decimal(value: Decimal) -> str:
    """A decimal in plain notation ("0.000001", never "1E-6"): what the OpenAPI string schema promises."""
    return format(value, "f")


# Every decimal the API sends is one of these (JSON: a string in plain notation).
PlainDecimal = Annotated[Decimal, PlainSerializer(plain_decimal, return_type=str, when_used="json")]
# Numeric(24, 6) (money, percentages): 18 digits before the point, 6 after; more places is refused, not rounded.
Money = Annotated[PlainDecimal, Field(max_digits=24, decimal_places=6)]
# An id in a body: a positive INTEGER.
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
