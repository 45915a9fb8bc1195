"""Schemathesis over the app's whole OpenAPI, in process: shared by tests/api/test_fuzz.py and bench/fuzz.py.

Cases are generated first (hypothesis with a fixed seed: the same cases every run) and then sent through the test's
httpx client, so the app runs on the test's event loop and database (schemathesis' own ASGI transport runs the app
on another loop, where the database's connections are not usable).
"""
from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import numpy as np
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.auth import ROLES, create_token
from api.demo.agents import DEMO_PASSWORD
from api.http.agent.console import CSRF_HEADER, SESSION_COOKIE
from bot import BotDeps
from kit.db import Database
from nlu.classifier import FALLBACK_INTENT
from nlu.service import ParseResult

# Operations that train or load the real NLU models: each call costs seconds to minutes of CPU, so fuzzing them
# measures the trainer, not the edge. Their inputs are covered by the focused tests of their packages.
EXPENSIVE = frozenset({
    "POST /model/train", "POST /model/parse", "GET /model/nlu", "POST /api/v1/rasa/import",
})
# Never-ending responses (server-sent events), and signing out, which would end the console session mid-run.
STREAMS = frozenset({"GET /api/v1/agent/events", "DELETE /api/v1/agent/session"})
DEMO_SUPERVISOR = "supervisor@demo.shoptalk.dev"


class FallbackParser:
    """The NLU for fuzzing the chat webhook: every text is unclear (no model to load); payloads still drive
    the skills (buttons do not go through the NLU)."""

    async def parse(self, text: str) -> ParseResult:
        return ParseResult(text=text, intent=FALLBACK_INTENT, confidence=0.0, intent_ranking=(), entities=(),
                           language="en", embedding=np.zeros(0, np.float32), out_of_scope=True)


def use_cheap_bot(app: FastAPI) -> None:
    """Give the running app's chat channels the fallback parser instead of building the real NLU."""
    runtime = app.state.channels.runtime
    runtime._deps = BotDeps(settings=app.state.settings, nlu=FallbackParser())


async def role_headers(database: Database, http: httpx.AsyncClient | None = None) -> dict[str, dict[str, str]]:
    """No token, a fresh token of each role, and (with `http`, on the demo shop) the demo supervisor's console
    session: its cookie and CSRF token, which the agent console's routes take instead of a token."""
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    async with database.unit_of_work() as session:
        for role in ROLES:
            headers[role] = {"Authorization": "Bearer " + await create_token(session, name=f"fuzz {role}",
                                                                            role=role)}
    if http is not None:
        signed_in = await http.post("/api/v1/agent/session", json={"email": DEMO_SUPERVISOR,
                                                                    "password": DEMO_PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        http.cookies.clear()  # sent only with the console's requests, below
        headers["console"] = {"Cookie": f"{SESSION_COOKIE}={signed_in.cookies[SESSION_COOKIE]}",
                              CSRF_HEADER: signed_in.json()["csrf_token"]}
    return headers


@dataclass
class Failure:
    operation: str
    kind: str
    status: int
    request: str
    detail: str


@dataclass
class RoleReport:
    operations: int = 0
    requests: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    examples: list[Failure] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"operations": self.operations, "requests": self.requests, "failures": dict(self.failures),
                "examples": [f.__dict__ for f in self.examples[:20]]}


def operations(app: FastAPI, *, skip: Iterable[str] = ()) -> list[Any]:
    schema = schemathesis.openapi.from_dict(app.openapi())
    skipped = EXPENSIVE | STREAMS | set(skip)
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # our own OpenAPI must always load: say which part did not
            raise result.err()
        operation = result.ok()
        if f"{operation.method.upper()} {operation.path}" not in skipped:
            found.append(operation)
    return found


def generate(operation: Any, *, examples: int, mode: GenerationMode, seed: int = 0) -> list[Any]:
    """`examples` cases of one operation, the same ones every run of a seed."""
    cases: list[Any] = []

    @hypothesis.settings(max_examples=examples, database=None, deadline=None,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @hypothesis.seed(seed)
    @hypothesis.given(operation.as_strategy(generation_mode=mode))
    def collect(case: Any) -> None:
        cases.append(case)

    try:
        collect()
    except hypothesis.errors.Unsatisfiable:  # nothing to make invalid (negative cases of an operation without inputs)
        pass
    return cases


def aim_at_rows(cases: list[Any]) -> None:
    """Every other case asks for a small id instead of a random one: the demo shop has rows there, so updates and
    deletes of real rows get fuzzed too (a random id is almost always a 404)."""
    for index, case in enumerate(cases[::2]):
        for name, value in case.path_parameters.items():
            if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31:
                case.path_parameters[name] = 1 + index % 12


def _kind(error: BaseException) -> str:
    name = type(error).__name__
    return {"ServerError": "server_error", "JsonSchemaError": "schema_violation",
            "MalformedJson": "malformed_json"}.get(name, name)


def _flatten(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _flatten(inner)]
    return [error]


async def send(http: httpx.AsyncClient, case: Any, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    kwargs = case.as_transport_kwargs(base_url=str(http.base_url).rstrip("/"), headers=headers)
    request: dict[str, Any] = {"method": kwargs["method"], "url": kwargs["url"], "headers": kwargs["headers"],
                               "params": kwargs.get("params"), "cookies": kwargs.get("cookies") or None}
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif "data" in kwargs:
        request["content"] = kwargs["data"]
    elif "files" in kwargs:
        request["files"] = kwargs["files"]
    response = await http.request(**request)
    http.cookies.clear()  # a cookie one case set (a generated sign-in) must not reach the next role's requests
    shown = f"{kwargs['method']} {response.request.url} {str(kwargs.get('json', kwargs.get('data', '')))[:300]}"
    return response, shown


async def fuzz(http: httpx.AsyncClient, app: FastAPI, *, headers: dict[str, dict[str, str]], examples: int,
               modes: Iterable[GenerationMode] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
               skip: Iterable[str] = (), seed: int = 0) -> dict[str, RoleReport]:
    """Every operation, `examples` cases per generation mode, sent once with each role's headers."""
    reports = {role: RoleReport() for role in headers}
    ops = operations(app, skip=skip)
    for operation in ops:
        label = f"{operation.method.upper()} {operation.path}"
        cases = [c for mode in modes for c in generate(operation, examples=examples, mode=mode, seed=seed)]
        aim_at_rows(cases)
        for role, role_header in headers.items():
            report = reports[role]
            report.operations += 1
            for case in cases:
                response, shown = await send(http, case, role_header)
                report.requests += 1
                try:
                    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
                except (AssertionError, BaseExceptionGroup) as error:
                    for leaf in _flatten(error):
                        kind = _kind(leaf)
                        report.failures[kind] += 1
                        report.examples.append(Failure(label, kind, response.status_code, shown,
                                                       str(leaf)[:500]))
                await asyncio.sleep(0)
    return reports
