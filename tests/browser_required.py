"""A pytest plugin for CI (`-p tests.browser_required`, set by .ci/run): a browser test (its module drives
Playwright) that is skipped, because Chromium or axe-core is missing, fails the run instead of passing silently."""
from __future__ import annotations

from collections.abc import Generator
from functools import cache
from pathlib import Path
from typing import Any

import pytest


@cache
def _drives_a_browser(path: Path) -> bool:
    try:
        return "playwright" in path.read_text(encoding="utf-8")
    except OSError:
        return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and _drives_a_browser(Path(str(item.path))):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (f"browser test skipped in CI: {reason}. .ci/run installs Chromium (apt) and axe-core "
                           "(npm ci --prefix tests/e2e); a skipped browser test proves nothing.")
