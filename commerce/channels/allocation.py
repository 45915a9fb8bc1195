"""How much of the shared stock pool a channel is shown."""
from __future__ import annotations

ALLOCATIONS = ("shared", "buffer", "share")


def channel_quantity(available: int, *, allocation: str, allocation_value: int, safety_stock: int) -> int:
    """The quantity a channel should show for `available` units in the core.

    shared: the whole pool; buffer: the pool less `allocation_value` units held back; share: `allocation_value`
    percent of the pool, rounded down. Safety stock is taken off last; never below zero.
    """
    if allocation == "buffer":
        shown = available - allocation_value
    elif allocation == "share":
        shown = available * allocation_value // 100
    else:
        shown = available
    return max(0, shown - safety_stock)
