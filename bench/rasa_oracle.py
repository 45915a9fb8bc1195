"""Real Rasa Open Source 3.6.21 as an oracle, shared by bench/rasa_parity.py and the opt-in tests that check ShopTalk
against it (tests/bot/rasa/real_rasa.py): the Python 3.10 venv with rasa==3.6.21 (made once), its servers started
with their output in a log file, and the one wait-until-up loop.

Importable both as `rasa_oracle` (a bench script's sibling) and as `bench.rasa_oracle` (from the tests).

`rasa run` is always given a credentials file naming the REST channel (`serve_command`), so the channel the bench
talks to never depends on whether the project ships a credentials.yml (financial-demo's also names Rasa X's `rasa`
channel; helpdesk-assistant has none, and Rasa then falls back to REST with `--enable-api`).

A server's output goes to a file, never to a pipe (a child whose stdout is a pipe nobody reads blocks in a write
once the pipe's 64 KiB buffer is full; TensorFlow and Rasa log a lot while a model loads), stdin is /dev/null, and
a server that does not come up is reported with the last lines of its log. Each server runs in its own session, so
stopping it stops what it started too.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import httpx

RASA_VERSION = "3.6.21"
PYTHON310 = sorted(Path("/root/.pyenv/versions").glob("3.10.*/bin/python"))
# Rasa asks nothing and sends nothing home while serving or training here (no network on a CI box: its telemetry
# and error reporting would otherwise try to reach the internet on each start)
QUIET_ENV = {"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


def ensure_rasa(venv: Path) -> Path:
    """The venv's `rasa` executable, installing rasa==3.6.21 into a Python 3.10 venv the first time."""
    rasa = venv / "bin" / "rasa"
    if rasa.exists():
        return rasa
    if not PYTHON310:
        raise SystemExit("no Python 3.10 under /root/.pyenv/versions: real Rasa 3.6 cannot be installed")
    subprocess.run([str(PYTHON310[-1]), "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"rasa=={RASA_VERSION}"], check=True)
    return rasa


def serve_command(rasa: Path, model: Path, port: int, folder: Path) -> list[str]:
    """`rasa run --enable-api` of `model` on `port` with the REST channel (a credentials file written in
    `folder`, see above) and `folder`/endpoints.yml."""
    credentials = folder / "rest-credentials.yml"
    credentials.write_text("rest:\n", encoding="utf-8")
    return [str(rasa), "run", "--enable-api", "-m", str(model), "--port", str(port), "--endpoints",
            str(folder / "endpoints.yml"), "--credentials", str(credentials)]


def rasa_env() -> dict[str, str]:
    return {**os.environ, **QUIET_ENV}


def start_logged(command: Sequence[str], *, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """`command` in `cwd`, its stdout and stderr appended to `log`, stdin /dev/null, in its own session."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"$ {' '.join(command)}  (in {cwd})\n".encode())
        out.flush()
        return subprocess.Popen(list(command), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=rasa_env(), start_new_session=True)


def run_logged(command: Sequence[str], *, cwd: Path, log: Path, timeout: float | None = None,
               check: bool = True) -> int:
    """Run `command` to its end, output to `log` as `start_logged`; its exit code (check: non-zero raises, with
    the log's last lines)."""
    process = start_logged(command, cwd=cwd, log=log)
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop([process])
        raise RuntimeError(f"{command[0]} {command[1]} did not finish within {timeout:g} s; see {log}") from None
    if check and code != 0:
        raise RuntimeError(f"{' '.join(command[:2])} exited with {code}:\n{log_tail(log)}")
    return code


def log_tail(log: Path | None, lines: int = 25) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def wait_up(url: str, process: subprocess.Popen[bytes], seconds: float, *, log: Path | None = None) -> None:
    """Wait until GET `url` answers below 500; fails at once when the process exits, and after `seconds` (both
    with the last lines of its log)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited at start with {process.returncode}\n{log_tail(log)}")
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"{url} did not answer within {seconds:g} s\n{log_tail(log)}")


def stop(processes: Iterable[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    """SIGTERM each process's session (the process and its children), SIGKILL after `timeout`."""
    for process in processes:
        if process.poll() is not None:
            continue
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=timeout)
