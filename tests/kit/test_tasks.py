"""cancel_and_wait stops a task even when one cancellation is lost (the Python 3.11 wait_for race)."""
from __future__ import annotations

import asyncio
import logging

import pytest

from kit.tasks import cancel_and_wait


async def test_a_task_that_swallows_a_cancellation_is_still_stopped() -> None:
    ticks = 0

    async def poll() -> None:
        nonlocal ticks
        swallowed = False
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed = True  # what a lost cancellation looks like: the loop goes on
            ticks += 1

    task = asyncio.create_task(poll())
    await asyncio.sleep(0.03)
    await asyncio.wait_for(cancel_and_wait(task, retry_every=0.05), timeout=5)
    assert task.cancelled()
    assert ticks >= 1


async def test_gives_up_with_an_error_instead_of_hanging(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()

    async def stubborn() -> None:
        while not stop.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn(), name="stubborn-poller")
    with caplog.at_level(logging.ERROR, logger="kit.tasks"):
        await asyncio.wait_for(cancel_and_wait(task, retry_every=0.02, give_up_after=0.1), timeout=5)
    assert not task.done()
    assert "stubborn-poller did not stop" in caplog.text
    stop.set()
    await task


async def test_an_error_of_the_stopped_task_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def failing() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(failing(), name="failing-task")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="kit.tasks"):
        await cancel_and_wait(task)
        await cancel_and_wait(None)
    assert "failing-task ended with an error" in caplog.text
