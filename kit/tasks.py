"""Stopping background tasks for sure."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task[Any] | None, *, retry_every: float = 1.0,
                          give_up_after: float = 30.0) -> None:
    """Cancel `task` and wait until it has ended, cancelling it again while it keeps running.

    One `cancel()` is not always enough on Python 3.11: `asyncio.wait_for`, which database drivers use inside,
    can drop a cancellation that races with a result (CPython gh-86296, fixed in 3.12), and a polling loop
    then runs on while its stopper waits forever. Gives up, with an error in the log, after `give_up_after`
    seconds. The task's own exception, if any, is logged, not raised: the caller is shutting it down.
    """
    if task is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after
    while not task.done():
        if loop.time() >= deadline:
            log.error("task %s did not stop within %.0f s of being cancelled", task.get_name(), give_up_after)
            return
        task.cancel()
        await asyncio.wait({task}, timeout=retry_every)
    if not task.cancelled():
        with contextlib.suppress(asyncio.CancelledError):
            error = task.exception()
            if error is not None:
                log.error("task %s ended with an error while stopping", task.get_name(), exc_info=error)
