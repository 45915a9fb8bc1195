"""A real rasa-sdk action server (in its own virtual environment) running the sample project's actions.py."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[3]
VENV = REPO / "var" / "rasa-sdk-venv"
RASA_SDK = "3.21.1"  # pinned: a new upstream release must not change what these tests run against unseen


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ensure_rasa_sdk() -> Path | str:
    """The venv's python with rasa-sdk RASA_SDK, installed the first time; a string with the reason when that fails."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", f"import importlib.metadata as m; assert m.version('rasa-sdk') == {RASA_SDK!r}"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"rasa-sdk=={RASA_SDK}"], check=True,
                       capture_output=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as error:
        return f"cannot install rasa-sdk into {VENV}: {error}"
    return python


@contextmanager
def running_action_server(python: Path, project: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(project)}
    process = subprocess.Popen(
        [str(python), "-m", "rasa_sdk", "--actions", "actions.actions", "--port", str(port)],
        cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
            if process.poll() is not None:
                raise RuntimeError("the rasa-sdk action server exited at start")
        else:
            raise RuntimeError("the rasa-sdk action server did not start within 60 s")
        yield f"{url}/webhook"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
