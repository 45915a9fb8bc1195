"""The embeddable web chat: snippet size, launcher time, reply time on screen and the memory of open widgets.

    python bench/widget.py [--messages 50] [--connections 200] [--chromium /usr/bin/chromium]

A fresh SQLite database (migrated, demo shop loaded, a web chat site whose allowed origin is a sample storefront),
the API started as a subprocess with uvicorn (the real engine, as `shoptalk serve` runs it), and the storefront
served on a second local origin with the one-line snippet. Measured:
- `snippet_gzip_bytes`: /widget.js (the loader a storefront adds) gzipped at level 9; `frame_gzip_bytes` what the
  chat frame then loads (page, script, style) gzipped;
- `launcher_visible_ms`: from the snippet's script starting to the launcher in the page (p50/p99 over 10 cold page
  loads in Chromium, each in a new browser context);
- `send_to_reply_ms`: from pressing Enter in the frame to the bot's reply drawn in the frame (p50/p99 over
  `--messages` messages, a mix of shopping turns, one at a time);
- `rss_mb_per_connection`: the server process's resident memory with `--connections` widget WebSockets open
  (each its own session, history sent) minus before, divided by the count; `rss_mb_idle` / `rss_mb_open`.
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import signal
import subprocess
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any, cast

import websockets
from _common import ROOT, percentile, start_api_server, wait_until_serving
from chat_load import free_port, prepare_database

from bot.channels import webchat_sites as sites
from kit.db import Database

SHOP = "bench-store"
TURNS = ["I am looking for an electric kettle", "/cart", "/help", "show me hoodies", "有电水壶吗",
         "what do you recommend for tea lovers?", "hello", "thanks"]


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve_storefront(shoptalk: str) -> tuple[ThreadingHTTPServer, int]:
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Bench store</title></head>'
            f'<body><h1>Bench store</h1><script src="{shoptalk}/widget.js" data-shop="{SHOP}" async></script>'
            f"</body></html>").encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def start_server(database_url: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    return cast("subprocess.Popen[bytes]", start_api_server(port, log_path, {
        "SHOPTALK_DATABASE__URL": database_url, "SHOPTALK_ENVIRONMENT": "development",
        "SHOPTALK_RATE_LIMITS__ENABLED": "false"}))


async def wait_ready(base_url: str, process: subprocess.Popen[bytes], timeout: float = 600.0) -> None:
    await wait_until_serving(base_url, process, "/widget.js", timeout)


async def set_up_site(database_url: str, origin: str) -> None:
    database = Database(database_url)
    try:
        async with database.unit_of_work() as session:
            await sites.save_site(session, shop=SHOP, allowed_origins=[origin])
    finally:
        await database.dispose()


async def in_browser(chromium: str, store: str, messages: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    launcher_ms: list[float] = []
    reply_ms: list[float] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=args)
        try:
            for _ in range(10):
                context = await browser.new_context()
                page = await context.new_page()
                await page.goto(store)
                await page.wait_for_selector("#shoptalk-widget .launcher", state="visible", timeout=30_000)
                launcher_ms.append(float(await page.evaluate("() => window.ShopTalk.launcherVisibleMs")))
                await context.close()
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(store)
            await page.click("#shoptalk-widget .launcher")
            frame = None
            while frame is None:  # the iframe is added with the launcher; its document may still be loading
                frame = next((f for f in page.frames if "/webchat/frame" in f.url), None)
                await page.wait_for_timeout(50)
            await frame.wait_for_selector("#status[data-state='online']", timeout=30_000)
            if await frame.locator("#prechat:not([hidden]) button[data-locale='en']").count():
                await frame.click("#prechat button[data-locale='en']")
            for n in range(messages):
                text = TURNS[n % len(TURNS)]
                took = await frame.evaluate("""(text) => new Promise((resolve, reject) => {
                    const log = document.getElementById('log');
                    const before = log.querySelectorAll('.msg.theirs').length;
                    const started = performance.now();
                    const seen = new MutationObserver(() => {
                        if (log.querySelectorAll('.msg.theirs').length > before) {
                            seen.disconnect(); resolve(performance.now() - started);
                        }
                    });
                    seen.observe(log, {childList: true, subtree: true});
                    setTimeout(() => { seen.disconnect(); reject(new Error('no reply in 60 s')); }, 60000);
                    const input = document.getElementById('text');
                    input.value = text;
                    input.form.requestSubmit();
                })""", text)
                reply_ms.append(float(took))
                await page.wait_for_timeout(100)  # the rest of a multi-part reply lands before the next message
            await context.close()
        finally:
            await browser.close()
    return {"launcher_ms": launcher_ms, "reply_ms": reply_ms}


async def open_widgets(base_url: str, count: int) -> list[Any]:
    socket_url = base_url.replace("http://", "ws://") + "/ws/chat"
    opened = []
    for _ in range(count):
        connection = await websockets.connect(socket_url, max_size=2**20)
        first = json.loads(await connection.recv())
        if first["type"] == "session":
            await connection.recv()  # the history frame
        opened.append(connection)
    return opened


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    pages = ROOT / "api" / "pages"
    snippet = (pages / "widget" / "loader.js").read_bytes()
    frame_files = [pages / "webchat" / name for name in ("chat.html", "widget.js", "widget.css")]
    result: dict[str, Any] = {"benchmark": "widget", "snippet_bytes": len(snippet),
                              "snippet_gzip_bytes": gzip_size(snippet),
                              "frame_gzip_bytes": sum(gzip_size(path.read_bytes()) for path in frame_files)}
    with tempfile.TemporaryDirectory(prefix="shoptalk-widget-bench-") as scratch:
        database_url = f"sqlite+aiosqlite:///{Path(scratch) / 'shop.db'}"
        await prepare_database(database_url)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        storefront, store_port = serve_storefront(base_url)
        store = f"http://localhost:{store_port}/"
        await set_up_site(database_url, store.rstrip("/"))
        started = time.monotonic()
        process = start_server(database_url, port, Path(scratch) / "server.log")
        try:
            await wait_ready(base_url, process)
            result["server_startup_s"] = round(time.monotonic() - started, 1)
            timings = await in_browser(args.chromium, store, args.messages)
            result["launcher_visible_ms"] = {"p50": round(percentile(timings["launcher_ms"], 0.5), 1),
                                             "p99": round(percentile(timings["launcher_ms"], 0.99), 1),
                                             "runs": len(timings["launcher_ms"])}
            warm = timings["reply_ms"][1:]  # the first message of a fresh server also builds lazy indexes
            result["send_to_reply_ms"] = {"p50": round(percentile(timings["reply_ms"], 0.5), 1),
                                          "p99": round(percentile(timings["reply_ms"], 0.99), 1),
                                          "first": round(timings["reply_ms"][0], 1),
                                          "p99_after_first": round(percentile(warm, 0.99), 1),
                                          "messages": len(timings["reply_ms"])}
            await asyncio.sleep(1.0)
            idle = rss_mb(process.pid)
            widgets = await open_widgets(base_url, args.connections)
            await asyncio.sleep(1.0)
            loaded = rss_mb(process.pid)
            result.update(connections=len(widgets), rss_mb_idle=round(idle, 1), rss_mb_open=round(loaded, 1),
                          rss_mb_per_connection=round((loaded - idle) / max(1, len(widgets)), 3))
            await asyncio.gather(*(w.close() for w in widgets))
        finally:
            storefront.shutdown()
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
