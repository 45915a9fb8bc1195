"""Real Rasa Open Source 3.6.21 for the slow tests that check ShopTalk against it: a Python 3.10 venv with
rasa==3.6.21 (made by bench/rasa_parity.py), named by SHOPTALK_RASA_VENV (opt-in: they train real Rasa, minutes each).
Without it those tests skip and say why: CI does not need the venv (the code is covered against a wire-format
double)."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.rasa_oracle import run_logged, serve_command, start_logged, stop, wait_up
from tests.bot.rasa.action_server import REPO, free_port

RASA_VENV = os.environ.get("SHOPTALK_RASA_VENV", "")
MODELS = REPO / "var" / "rasa-oracle"


def rasa_executable() -> Path | str:
    """The venv's `rasa`, or the reason the real-Rasa tests skip."""
    if not RASA_VENV:
        return ("real Rasa 3.6.21 tests are opt-in: set SHOPTALK_RASA_VENV to its Python 3.10 venv (e.g. "
                "/work/rasa310, made by bench/rasa_parity.py); CI covers this code against a Rasa wire-format double")
    rasa = Path(RASA_VENV) / "bin" / "rasa"
    if not rasa.exists():
        return (f"real Rasa 3.6.21 is not installed at {RASA_VENV} (set SHOPTALK_RASA_VENV, or run "
                "bench/rasa_parity.py once to create it); CI covers this code against a Rasa wire-format double")
    return rasa


def trained_model(rasa: Path, project: Path) -> Path:
    """Real Rasa's model of the project folder as it is (trained once, cached by the hash of its YAML files)."""
    digest = hashlib.sha256()
    for path in sorted(project.rglob("*.yml")):
        if "models" not in path.parts and "results" not in path.parts:
            digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes())
    model = MODELS / f"{project.name}-{digest.hexdigest()[:12]}.tar.gz"
    if not model.exists():
        MODELS.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="rasa-train-") as scratch:  # Rasa leaves .rasa/ in its cwd
            copy = Path(scratch) / project.name
            shutil.copytree(project, copy)
            run_logged([str(rasa), "train", "--out", str(MODELS), "--fixed-model-name", model.name[:-7]],
                       cwd=copy, log=MODELS / f"{model.name[:-7]}-train.log", timeout=3600)
    return model


@contextmanager
def running_rasa(rasa: Path, project: Path, model: Path, tmp: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`rasa run --enable-api` on the model, with the project's actions on the venv's rasa-sdk action server."""
    folder = tmp / "rasa-run"
    shutil.copytree(project, folder)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        endpoints = ""
        if (folder / "actions").exists():
            action_port = free_port()
            actions = start_logged([str(rasa.parent / "python"), "-m", "rasa_sdk", "--actions", "actions",
                                    "--port", str(action_port)], cwd=folder, log=tmp / "actions.log")
            processes.append(actions)
            wait_up(f"http://127.0.0.1:{action_port}/health", actions, 180, log=tmp / "actions.log")
            endpoints = f'action_endpoint:\n  url: "http://127.0.0.1:{action_port}/webhook"\n'
        (folder / "endpoints.yml").write_text(endpoints, encoding="utf-8")
        port = free_port()
        server = start_logged(serve_command(rasa, model, port, folder), cwd=folder, log=tmp / "rasa-run.log")
        processes.append(server)
        url = f"http://127.0.0.1:{port}"
        wait_up(f"{url}/status", server, 1800, log=tmp / "rasa-run.log")
        yield url, server
    finally:
        stop(reversed(processes))
