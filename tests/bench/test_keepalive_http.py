"""The load generator's HTTP/1.1 client against a real socket server: bodies, idle closes, bad answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bench.keepalive_http import HttpError, KeepAliveClient

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
    return await reader.readexactly(length)


def json_answer(body: bytes, *, chunked: bool = False) -> bytes:
    payload = json.dumps([{"echo": json.loads(body)}]).encode()
    if chunked:
        half = len(payload) // 2
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (payload[:half], payload[half:]))
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(payload), payload)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def echo(answers: tuple[bool, ...], connections: list[int]) -> Handler:
    """Answers `len(answers)` requests on each connection (chunked where True), then closes it; counts
    connections in `connections`."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        for chunked in answers:
            writer.write(json_answer(await read_request(reader), chunked=chunked))
            await writer.drain()
        writer.close()

    return handler


async def test_content_length_and_chunked_bodies_on_one_connection(serve: Callable[[Handler], Awaitable[int]]) -> None:
    connections: list[int] = []
    client = KeepAliveClient("127.0.0.1", await serve(echo((False, True), connections)))
    assert await client.post_json("/x", {"n": 1}) == (200, [{"echo": {"n": 1}}])
    assert await client.post_json("/x", {"n": 2}) == (200, [{"echo": {"n": 2}}])
    assert len(connections) == 1
    await client.close()


async def test_a_connection_the_server_closed_is_opened_again(serve: Callable[[Handler], Awaitable[int]]) -> None:
    connections: list[int] = []
    # One request per connection, then the server closes it, like an idle keep-alive timeout.
    client = KeepAliveClient("127.0.0.1", await serve(echo((False,), connections)))
    for n in range(3):
        assert await client.post_json("/x", {"n": n}) == (200, [{"echo": {"n": n}}])
    assert len(connections) == 3
    await client.close()


async def test_an_answer_that_is_not_http_is_refused(serve: Callable[[Handler], Awaitable[int]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        writer.close()

    client = KeepAliveClient("127.0.0.1", await serve(handler))
    with pytest.raises(HttpError, match="bad status line"):
        await client.post_json("/x", {"n": 1})
    await client.close()


async def test_no_server_is_a_clear_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
    with pytest.raises(HttpError, match="ConnectionRefusedError"):
        await KeepAliveClient("127.0.0.1", port).post_json("/x", {})
