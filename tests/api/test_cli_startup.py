"""`shoptalk serve|worker|migrate` against a database nobody answers at: one readable line, exit code 1."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"], ["migrate"]])
def test_an_unreachable_database_stops_the_command_with_one_line(command: list[str], tmp_path: Path) -> None:
    port = _closed_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "SHOPTALK_DATA_DIR": str(tmp_path),
           "SHOPTALK_DATABASE__URL": f"postgresql+asyncpg://postgres:hunter2-secret@127.0.0.1:{port}/shop"}
    done = subprocess.run([sys.executable, "-c", "from api.cli import main; main()", *command], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"shoptalk: cannot reach the database at postgresql://postgres:***@127.0.0.1:{port}/shop: connection refused"]
    assert "hunter2-secret" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
