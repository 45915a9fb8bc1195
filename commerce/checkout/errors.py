from __future__ import annotations

from kit.errors import Conflict, InvalidInput


class EmptyCart(InvalidInput):
    code = "empty_cart"
    title = "The cart is empty"


class InvalidAddress(InvalidInput):
    """`extra`: field (recipient, street, city, region, postcode, phone), reason (required / invalid / unknown),
    expected (examples of the expected format or the accepted regions)."""

    code = "invalid_address"
    title = "The delivery address is not valid"


class SummaryChanged(Conflict):
    """What "Place order" was pressed on differs from what would be charged now (price, stock, rate, address)."""

    code = "checkout_summary_changed"
    title = "The order summary changed"
