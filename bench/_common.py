"""What the benchmarks share: the project on the import path with models offline, scratch PostgreSQL databases,
embeddings cached on disk and one percentile rule. Every script imports it before the project's packages."""
from __future__ import annotations

import hashlib
import math
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "var" / "cache"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


async def postgres_admin(url: str, sql: str) -> None:
    """Run one statement (CREATE / DROP DATABASE) on the server of `url` (a SQLAlchemy asyncpg URL)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def scratch_postgres(url: str, prefix: str, *, keep: bool = False) -> AsyncIterator[str]:
    """A new database `<prefix>_<pid>_<random>` on the server of `url` (never `url`'s own database): yields its URL,
    then drops it (unless `keep`)."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await postgres_admin(url, f'CREATE DATABASE "{name}"')
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        if not keep:
            await postgres_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: Sequence[float], q: float) -> float:
    """The sorted values' element at rank int(q x n) (nearest rank, no interpolation; q = 1 is the largest); nan
    when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cached_embeddings(encode: Callable[[list[str]], Any], texts: list[str], prefix: str) -> Any:
    """`encode(texts)` (real embeddings), kept in var/cache/<prefix>_<hash of the texts>.npy so reruns skip the
    forward passes."""
    import numpy as np

    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:20]
    path = CACHE / f"{prefix}_{key}.npy"
    if path.exists():
        return np.load(path)
    rows = encode(texts)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, rows)
    return rows


def start_api_server(port: int, log_path: Path, env: dict[str, str], workers: int = 1) -> Any:
    """`uvicorn api.app:app_factory` on 127.0.0.1:`port` in its own session (a process group the caller can kill),
    its output in `log_path`; `env` adds to this process's environment (offline models and the project's path are
    always set). Returns the `subprocess.Popen`."""
    import subprocess

    full = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **env}
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:app_factory", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]
    if workers != 1:
        command += ["--workers", str(workers)]
    with log_path.open("wb") as log:
        return subprocess.Popen(command, cwd=ROOT, env=full, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


async def wait_until_serving(base_url: str, process: Any, path: str, timeout: float = 600.0) -> None:
    """Wait until GET `path` answers 200; fails at once when the server process has exited."""
    import asyncio
    import time

    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            try:
                if (await http.get(path)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError(f"the server did not answer {path} within {timeout:.0f} s")
