"""A lean HTTP/1.1 keep-alive client for load generators: one connection, one request at a time.

httpx costs about 1.4 ms of CPU per request, which on a 2-core box is CPU the server under test does not get;
this client writes the request and reads a Content-Length or chunked response straight from asyncio streams
(about a fifth of that). It is enough for JSON APIs on 127.0.0.1, not a general HTTP client: no TLS, no
redirects, no compression. A broken connection is re-opened on the next request.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any


class HttpError(Exception):
    """The connection failed or the server's answer was not HTTP/1.1 this client can read."""


class KeepAliveClient:
    def __init__(self, host: str, port: int, *, timeout: float = 60.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, payload: Any,
                        headers_for: Callable[[bytes], dict[str, str]] | None = None) -> tuple[int, Any]:
        """POST `payload` as JSON; the status and the decoded JSON body (None when the body is empty).
        `headers_for(body)`: extra headers made from the exact bytes sent (a request signature)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers_for(body) if headers_for else {}).items())
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"{extra}Content-Length: {len(body)}\r\n\r\n").encode()
        # A connection the server closed while idle (uvicorn's keep-alive timeout is 5 s, longer than some
        # Poisson gaps) is opened again; the one request that met a close in flight is sent once more (the
        # REST channel ignores a message_id it has seen, so a repeat cannot double a turn).
        for attempt in (1, 2):
            reused = self._writer is not None
            try:
                status, raw = await asyncio.wait_for(self._exchange(head + body), self.timeout)
                break
            except asyncio.IncompleteReadError as exc:
                await self.close()
                if not (reused and attempt == 1 and not exc.partial):
                    raise HttpError(f"connection closed: {exc}") from exc
            except (TimeoutError, OSError, asyncio.LimitOverrunError, ValueError) as exc:
                await self.close()
                raise HttpError(f"{type(exc).__name__}: {exc}") from exc
        try:
            return status, (json.loads(raw) if raw else None)
        except ValueError as exc:
            raise HttpError(f"not JSON: {raw[:80]!r}") from exc

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self._reader is not None and self._reader.at_eof():
            await self.close()  # the server closed it while it was idle
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(request)
        status_line = await self._reader.readuntil(b"\r\n")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError(f"bad status line {status_line[:80]!r}")
        status = int(parts[1])
        length, chunked, close = None, False, False
        while (line := await self._reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif key == b"connection":
                close = b"close" in value.lower()
        if chunked:
            body = await self._read_chunked()
        elif length is not None:
            body = await self._reader.readexactly(length)
        else:
            raise ValueError("a response without Content-Length or chunked encoding")
        if close:
            await self.close()
        return status, body

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                while await self._reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
