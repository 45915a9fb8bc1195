from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Money:
    """An amount inside a Message: written the reader's way (symbol, separators, minor unit) where it is rendered."""

    amount: Decimal
    currency: str


@dataclass(frozen=True)
class Message:
    """Words for a person as a catalog key and its values (str, int, Money or another Message), so the edge that
    shows them (API, back office, console, chat) renders them in its reader's language (bot.i18n.render)."""

    key: str
    values: Mapping[str, Any] = field(default_factory=dict)


class ShopTalkError(Exception):
    """Base of every domain error: a stable code, an HTTP status and a human title; `detail` in English (logs, CLI)
    and, when `message` is given, the same words as a catalog key for readers of other languages."""

    code: str = "error"
    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str | None = None, *, code: str | None = None, status: int | None = None,
                 message: Message | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.message = message
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
