from __future__ import annotations

from typing import Any


class ShopTalkError(Exception):
    """Base of every domain error: a stable code, an HTTP status and a human title."""

    code: str = "error"
    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str | None = None, *, code: str | None = None, status: int | None = None,
                 **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        problem: dict[str, Any] = {
            "type": f"https://shoptalk.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            problem["instance"] = instance
        problem.update(self.extra)
        return problem


class NotFound(ShopTalkError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(ShopTalkError):
    code = "conflict"
    status = 409
    title = "Conflict"


class InvalidInput(ShopTalkError):
    code = "invalid_input"
    status = 422
    title = "Invalid input"


class Unauthorized(ShopTalkError):
    code = "unauthorized"
    status = 401
    title = "Authentication required"


class Forbidden(ShopTalkError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class RateLimited(ShopTalkError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"


class Unavailable(ShopTalkError):
    code = "unavailable"
    status = 503
    title = "Service unavailable"
