"""Throttles of the HTTP edge: chat messages per client and per shopper, agent sign-ins per client and per e-mail.

The limiter is one per app (`app.state.rate_limiter`, made on first use): Redis-backed when `redis.url` is set, so
every worker process shares the counts; in memory otherwise. Limits are `settings.rate_limits`.
"""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.requests import HTTPConnection

from kit.errors import RateLimited
from kit.ratelimit import Backoff, RateLimiter, RetryAfter
from kit.settings import RateLimitSettings, Settings

CLIENT_STATE = "rate_limit_client"


def limiter_of(app: FastAPI) -> RateLimiter:
    limiter: RateLimiter | None = getattr(app.state, "rate_limiter", None)
    if limiter is None:
        settings: Settings = app.state.settings
        limiter = app.state.rate_limiter = RateLimiter(settings.redis.url, prefix=settings.rate_limits.key_prefix)
    return limiter


async def close_limiter(app: FastAPI) -> None:
    """Release the limiter's Redis connections (app shutdown)."""
    limiter: RateLimiter | None = getattr(app.state, "rate_limiter", None)
    if limiter is not None:
        app.state.rate_limiter = None
        await limiter.close()


def _limits(app: FastAPI) -> RateLimitSettings:
    settings: Settings = app.state.settings
    return settings.rate_limits


def client_ip(connection: HTTPConnection) -> str:
    """The caller's address (a request or a web socket); behind a trusted proxy, the forwarded one (uvicorn
    runs with proxy_headers)."""
    return connection.client.host if connection.client is not None else "unknown"


def mark_client(request: Request, client_id: str) -> None:
    """Name the authenticated caller (e.g. 'token:12', 'hmac:acme') so throttles count it, not its IP."""
    setattr(request.state, CLIENT_STATE, client_id)


def client_of(request: Request) -> str:
    marked = getattr(request.state, CLIENT_STATE, None)
    return marked if isinstance(marked, str) and marked else f"ip:{client_ip(request)}"


def _refuse(decision: RetryAfter, detail: str, code: str) -> RateLimited:
    return RateLimited(detail, code=code, retry_after=decision.seconds)


# ---- chat -------------------------------------------------------------------------------------------------

async def _sender(request: Request) -> str | None:
    # FastAPI has parsed (and cached) the JSON body before dependencies run; a bad body never gets here.
    try:
        body: Any = await request.json()
    except ValueError:
        return None
    sender = body.get("sender") if isinstance(body, dict) else None
    return sender if isinstance(sender, str) and sender else None


async def throttle_rest_client(request: Request) -> None:
    """FastAPI dependency of the REST webhook: per client, then per sender; over it -> 429 with Retry-After,
    before the message is stored or understood. Declare it after the authentication dependency (which marks
    the client), so a credential is counted rather than its IP."""
    limits = _limits(request.app)
    if not limits.enabled:
        return
    limiter = limiter_of(request.app)
    client = client_of(request)
    limit = limits.rest_address if client.startswith("ip:") else limits.rest_client
    decision = await limiter.hit(limit, "rest.client", client)
    if isinstance(decision, RetryAfter):
        raise _refuse(decision, "Too many messages from this client; slow down.", "too_many_requests")
    sender = await _sender(request)
    if sender is not None:
        decision = await limiter.hit(limits.rest_sender, "rest.sender", sender)
        if isinstance(decision, RetryAfter):
            raise _refuse(decision, "Too many messages for this sender; slow down.", "too_many_messages")


async def webchat_frame_allowed(app: FastAPI, *, session: str, ip: str) -> RetryAfter | None:
    """For the web chat socket, once per shopper frame: None when it may be handled, else how long to wait
    (per IP first, then per chat session). Counts the frame."""
    limits = _limits(app)
    if not limits.enabled:
        return None
    limiter = limiter_of(app)
    decision = await limiter.hit(limits.webchat_ip, "webchat.ip", ip)
    if isinstance(decision, RetryAfter):
        return decision
    decision = await limiter.hit(limits.webchat_session, "webchat.session", session)
    return decision if isinstance(decision, RetryAfter) else None


# ---- agent sign-in ----------------------------------------------------------------------------------------

class SignInThrottle:
    """Wrong passwords per client (IP + e-mail: a hard limit, lifted by a success) and per e-mail from any client
    (exponential back-off, capped low so that an attacker can delay the owner by at most the cap)."""

    def __init__(self, app: FastAPI) -> None:
        self.limits = _limits(app)
        self.limiter = limiter_of(app)
        self.target = Backoff(self.limiter, "agent.sign_in.email", free_failures=self.limits.sign_in_free_failures,
                              base_seconds=self.limits.sign_in_backoff_base_seconds,
                              cap_seconds=self.limits.sign_in_backoff_cap_seconds,
                              window_seconds=self.limits.sign_in_window_seconds)

    @staticmethod
    def _email(email: str) -> str:
        return email.strip().lower()

    async def check(self, *, email: str, ip: str) -> None:
        """Before the password is checked (argon2 is not run for a refused attempt)."""
        if not self.limits.enabled:
            return
        decision = await self.limiter.peek(self.limits.sign_in_client_failures, "agent.sign_in.client", ip,
                                           self._email(email))
        if isinstance(decision, RetryAfter):
            raise _refuse(decision, "Too many failed sign-ins from here for this account; try again later.",
                          "too_many_sign_ins")
        decision = await self.target.check(self._email(email))
        if isinstance(decision, RetryAfter):
            raise _refuse(decision, "Several recent failed sign-ins for this account; try again in a moment.",
                          "sign_in_backoff")

    async def failed(self, *, email: str, ip: str) -> None:
        if not self.limits.enabled:
            return
        await self.limiter.hit(self.limits.sign_in_client_failures, "agent.sign_in.client", ip, self._email(email))
        await self.target.failed(self._email(email))

    async def succeeded(self, *, email: str, ip: str) -> None:
        if not self.limits.enabled:
            return
        await self.limiter.reset(self.limits.sign_in_client_failures, "agent.sign_in.client", ip,
                                 self._email(email))
        await self.target.succeeded(self._email(email))
