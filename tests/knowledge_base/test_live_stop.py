"""Stopping the live FAQ index while its poll is in the middle of a query."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest

from kit.db import Database
from knowledge_base.live import LiveFaqIndex


async def test_a_stop_during_a_poll_is_a_stop_not_a_failed_poll(caplog: pytest.LogCaptureFixture) -> None:
    index = LiveFaqIndex(cast(Database, None), embedder=cast(Any, object()), poll_interval=0.01)
    entered = asyncio.Event()

    async def sync(session: object = None) -> int:
        entered.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            # What closing a session cancelled mid-query does: the cleanup raises its own error.
            raise RuntimeError("Can't reconnect until invalid transaction is rolled back") from None
        return 0

    index.sync = sync  # type: ignore[method-assign]
    index._task = asyncio.get_running_loop().create_task(index._poll())
    await asyncio.wait_for(entered.wait(), 5)
    task = index._task
    with caplog.at_level(logging.ERROR, logger="knowledge_base.live"):
        await asyncio.wait_for(index.stop(), 10)  # the old code looped on: every re-cancel "failed a poll"
    assert task.done()
    assert task.cancelled()
    assert not [r for r in caplog.records if "poll failed" in r.getMessage()]
