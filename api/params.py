"""Path and query parameter types shared by every router: ids within INTEGER, bounded offsets and limits."""
from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from kit.fields import MAX_ID

MAX_OFFSET = 1_000_000  # deeper pages are a scan of everything before them; nobody pages that far

# Out of range is 422 (the documented bounds), like any other malformed parameter.
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int, Query(ge=1, le=MAX_ID)]  # a row id in the query string
AfterId = Annotated[int, Query(ge=0, le=MAX_ID, description="Return rows with an id after this one")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
