"""What the handoff's conditional UPDATE and DELETE statements report back."""
from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult


def rowcount(result: Any) -> int:
    """Rows a Core UPDATE/DELETE matched (typed `Result` hides `rowcount`; the statement gives a cursor result)."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
