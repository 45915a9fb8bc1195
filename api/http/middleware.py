"""What every HTTP request passes before a route: the body size limit and the NUL refusal, both answering
problem+json."""
from __future__ import annotations

import json
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PROBLEM_JSON


class BodySizeLimit:
    """Refuses bodies over the limit with 413 problem+json, whether or not Content-Length is sent. `upload_paths`
    maps the few upload routes (exact paths) to their own, larger limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, upload_paths: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_paths = upload_paths or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_paths.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        body = json.dumps({"type": "https://shoptalk.dev/problems/payload_too_large",
                           "title": "Payload too large", "status": 413, "code": "payload_too_large",
                           "detail": f"The request body is larger than {limit} bytes.",
                           "instance": scope.get("path", "")}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", PROBLEM_JSON.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _body_has_nul(body: bytes) -> bool:
    """A raw NUL byte, or a JSON string holding U+0000 once decoded (an escaped backslash then "u0000" is text)."""
    if b"\x00" in body:
        return True
    if b"\\u0000" not in body:  # the only spelling of U+0000 inside JSON text (escapes are case-sensitive 'u')
        return False
    try:
        return _has_nul(json.loads(body))
    except (ValueError, RecursionError):  # not JSON: the route's own parser refuses it
        return False


class RefuseNul:
    """Refuses NUL (U+0000) anywhere in the path, the query or the body with 422 problem+json `invalid_characters`:
    PostgreSQL cannot store it in text, so it would otherwise fail deep inside a route as a 500. A multipart body
    sent to one of `upload_paths` is let through (files hold NUL bytes): that route checks its text fields."""

    def __init__(self, app: ASGIApp, upload_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", "") or b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
            await _refuse_nul(scope, send, "the URL")
            return
        messages: list[Message] = []
        more = True
        while more:  # the body is read whole here; BodySizeLimit (outside) bounds it
            message = await receive()
            messages.append(message)
            more = message["type"] == "http.request" and bool(message.get("more_body"))
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
        form = content_type.startswith(b"application/x-www-form-urlencoded")
        multipart = content_type.startswith(b"multipart/form-data") and scope.get("path") in self.upload_paths
        if not multipart and (_body_has_nul(body) or (form and b"\x00" in unquote_to_bytes(body))):
            await _refuse_nul(scope, send, "the request body")
            return
        replay = iter(messages)

        async def replayed() -> Message:
            for message in replay:
                return message
            return await receive()

        await self.app(scope, replayed, send)


async def _refuse_nul(scope: Scope, send: Send, where: str) -> None:
    body = json.dumps({"type": "https://shoptalk.dev/problems/invalid_characters", "title": "Invalid characters",
                       "status": 422, "code": "invalid_characters",
                       "detail": f"{where.capitalize()} contains the NUL character (U+0000), which is not accepted.",
                       "instance": scope.get("path", "").replace("\x00", "")}).encode()
    await send({"type": "http.response.start", "status": 422,
                "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
