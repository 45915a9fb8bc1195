"""Schemathesis over the whole OpenAPI on the demo shop, with no token, a token of each role and the demo
supervisor's console session: no answer is a 5xx and every documented answer matches its schema.
`bench/fuzz.py` runs the same for longer."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.app import create_app
from api.demo.loader import load_demo
from kit.db import Database
from kit.settings import Settings
from tests.api import fuzzing
from tests.http import app_client

# Cases per operation and generation mode (positive, negative), each sent with every role's headers: about
# 107 operations x 2 x 3 x 6 = 3,900 requests per backend, about a minute per backend on 2 cores.
EXAMPLES = 3


@pytest.mark.slow
async def test_no_input_makes_a_server_error_or_breaks_the_schema(db: Database, settings: Settings,
                                                                 tmp_path: Path) -> None:
    async with db.unit_of_work() as session:
        await load_demo(session)
    app = create_app(settings.model_copy(update={"data_dir": tmp_path}), database=db)
    async with app_client(app) as http:
        fuzzing.use_cheap_bot(app)
        reports = await fuzzing.fuzz(http, app, headers=await fuzzing.role_headers(db, http), examples=EXAMPLES)
    assert set(reports) == {"anonymous", "admin", "merchant", "agent", "channel", "console"}
    assert all(r.operations > 100 and r.requests > 300 for r in reports.values())
    failures = {role: r.as_json() for role, r in reports.items() if r.failures}
    assert not failures, json.dumps(failures, indent=1)
