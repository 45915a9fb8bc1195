"""A periodic job of the worker and the loop that runs it."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kit.db import database_unavailable_cause

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every_seconds: float
    run: Callable[[], Awaitable[object]]


async def run_every(job: PeriodicJob, stop: asyncio.Event) -> None:
    """Run the job, then wait its interval, until `stop` is set; a failing round is logged and the next one runs."""
    while not stop.is_set():
        try:
            await job.run()
        except Exception as exc:  # a failing job is logged and retried next round
            cause = database_unavailable_cause(exc)
            if cause is not None:  # an outage is one line per round, not a traceback
                log.warning("periodic job %s skipped: database unavailable (%s)", job.name, cause)
            else:
                log.exception("periodic job %s failed", job.name)
        try:
            await asyncio.wait_for(stop.wait(), timeout=job.every_seconds)
        except TimeoutError:
            pass
