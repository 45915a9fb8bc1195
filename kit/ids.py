from __future__ import annotations

import secrets
import uuid


def new_uuid() -> str:
    return uuid.uuid4().hex


def new_token(prefix: str, nbytes: int = 32) -> str:
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"
