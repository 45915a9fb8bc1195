from __future__ import annotations

from kit.errors import InvalidInput, NotFound


class ImpressionNotFound(NotFound):
    code = "impression_not_found"
    title = "Recommendation impression not found"


class UnknownOutcome(InvalidInput):
    code = "unknown_outcome"
    title = "Unknown recommendation outcome"
