from __future__ import annotations

import pytest

from commerce.channels.allocation import channel_quantity


@pytest.mark.parametrize(("available", "allocation", "value", "safety", "shown"), [
    (10, "shared", 0, 0, 10),
    (10, "shared", 0, 3, 7),
    (10, "buffer", 4, 0, 6),
    (3, "buffer", 4, 0, 0),
    (10, "share", 50, 0, 5),
    (9, "share", 50, 1, 3),
    (0, "shared", 0, 0, 0),
    (1, "shared", 0, 5, 0),
])
def test_channel_is_shown_its_allocation(available: int, allocation: str, value: int, safety: int,
                                         shown: int) -> None:
    assert channel_quantity(available, allocation=allocation, allocation_value=value, safety_stock=safety) == shown
