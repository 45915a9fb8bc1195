"""Schemathesis over the whole OpenAPI for longer than CI affords, on the demo shop, per role.

    python bench/fuzz.py [--examples 100] [--roles anonymous,admin,merchant,agent] [--postgres URL] [--no-sqlite]

Each operation gets `--examples` positive and `--examples` negative cases (derandomized: the same every run;
`--seed` for others), each sent with every role's headers. Prints one JSON object per backend: operations,
requests, failures by kind (server_error = 5xx, schema_violation = a body that breaks its declared schema, ...)
per role, and up to 20 example failures per role (the request and what was wrong).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from typing import Any

from _common import scratch_postgres

from api.app import create_app
from api.auth import ROLES
from api.demo.loader import load_demo
from api.migrations import upgrade
from kit.db import Database
from kit.settings import Settings
from tests.api import fuzzing
from tests.http import app_client


async def run_backend(url: str, *, examples: int, roles: list[str], seed: int, data_dir: str) -> dict[str, Any]:
    database = Database(url)
    await upgrade(database.engine)
    try:
        async with database.unit_of_work() as session:
            await load_demo(session)
        settings = Settings(environment="test", security={"secret_key": "bench-fuzz-secret-key-0123456789"},
                            data_dir=data_dir)
        app = create_app(settings, database=database)
        started = time.perf_counter()
        async with app_client(app) as http:
            fuzzing.use_cheap_bot(app)
            headers = {role: h for role, h in (await fuzzing.role_headers(database, http)).items() if role in roles}
            reports = await fuzzing.fuzz(http, app, headers=headers, examples=examples, seed=seed)
        elapsed = time.perf_counter() - started
    finally:
        await database.dispose()
    requests = sum(r.requests for r in reports.values())
    return {"seconds": round(elapsed, 1), "requests": requests, "requests_per_s": round(requests / elapsed, 1),
            "failures": sum(sum(r.failures.values()) for r in reports.values()),
            "roles": {role: report.as_json() for role, report in reports.items()}}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=100, help="cases per operation and generation mode")
    parser.add_argument("--roles", default=",".join(("anonymous", *ROLES, "console")),
                        help="console = the demo supervisor's agent console session (cookie + CSRF token)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--postgres", default=None, help="e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the app logs every refused request; the JSON says what failed
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    results: dict[str, Any] = {"benchmark": "fuzz", "examples": args.examples, "seed": args.seed, "roles": roles,
                               "operations": len(fuzzing.operations(create_app(Settings(environment="test", security={
                                   "secret_key": "bench-fuzz-secret-key-0123456789"}))))}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_sqlite:
            results["sqlite"] = await run_backend(f"sqlite+aiosqlite:///{tmp}/fuzz.db", examples=args.examples,
                                                  roles=roles, seed=args.seed, data_dir=f"{tmp}/data-sqlite")
        if args.postgres:
            async with scratch_postgres(args.postgres, "shoptalk_fuzz") as url:
                results["postgres"] = await run_backend(url, examples=args.examples, roles=roles, seed=args.seed,
                                                        data_dir=f"{tmp}/data-postgres")
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
