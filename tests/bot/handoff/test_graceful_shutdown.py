"""`shoptalk serve` stops on SIGTERM while an agent console's event stream and a shopper's web chat socket are open:
the stream is told to reconnect and ends, the socket is closed as a service restart, and the process exits by itself
(no wall-clock limit asserted: a loaded machine is slower, not wrong; the server's own bound is
`timeout_graceful_shutdown`)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets

from api.demo.agents import DEMO_PASSWORD
from tests.bot.channels.served_shop import prepare_demo_database
from tests.conftest import run_in_thread

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(base_url=base) as client:
        while True:
            assert process.poll() is None, "shoptalk serve exited while starting"
            assert time.monotonic() < deadline, "shoptalk serve did not start"
            try:
                if (await client.get("/agent")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.25)


async def _drain(chat: websockets.ClientConnection) -> None:
    while True:
        await chat.recv()


async def test_sigterm_with_a_console_and_a_web_chat_open_tells_them_and_stops(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    run_in_thread(prepare_demo_database(url))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "SHOPTALK_DATA_DIR": str(tmp_path),
           "SHOPTALK_ENVIRONMENT": "test", "SHOPTALK_DATABASE__URL": url,
           "SHOPTALK_SECURITY__SECRET_KEY": "test-secret-key-0123456789"}
    process = subprocess.Popen([sys.executable, "-c", "from api.cli import main; main()", "serve", "--port",
                                str(port)], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        await _until_up(base, process)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            signed = await client.post("/api/v1/agent/session",
                                       json={"email": "agent@demo.shoptalk.dev", "password": DEMO_PASSWORD})
            assert signed.status_code == 200, signed.text
            async with client.stream("GET", "/api/v1/agent/events") as stream, \
                    websockets.connect(f"ws://127.0.0.1:{port}/ws/chat") as chat:
                frames = stream.aiter_lines()
                assert json.loads((await anext(frames)).removeprefix("data: "))["type"] == "hello"
                process.send_signal(signal.SIGTERM)
                told: list[str] = []
                async for line in frames:
                    if line.startswith("data: "):
                        told.append(json.loads(line.removeprefix("data: "))["type"])
                assert told[-1] == "reconnect"  # the console was told, then its stream ended
                with pytest.raises(websockets.ConnectionClosed) as closed:  # closed by the server, not by us
                    await asyncio.wait_for(_drain(chat), timeout=60)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code in (1001, 1012)  # going away / service restart: the widget reconnects
        # It ends by itself with both still open on our side (a deadline for a failing run, not a speed: the server's
        # own bound is uvicorn's timeout_graceful_shutdown).
        process.wait(timeout=60)
        # uvicorn re-raises the signal it caught once it has shut down cleanly, so the exit status names SIGTERM.
        assert process.returncode in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
