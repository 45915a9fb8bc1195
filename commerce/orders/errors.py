from __future__ import annotations

from kit.errors import Conflict, InvalidInput, NotFound


class OrderNotFound(NotFound):
    code = "order_not_found"
    title = "Order not found"


class IllegalTransition(Conflict):
    code = "illegal_status_transition"
    title = "Illegal order status change"


class CurrencyMismatch(InvalidInput):
    code = "currency_mismatch"
    title = "Order currency differs from the price currency"


class EmptyOrder(InvalidInput):
    code = "empty_order"
    title = "An order needs at least one line"


class ChannelNotFound(NotFound):
    code = "channel_not_found"
    title = "Unknown sales channel"


class UnknownStatus(InvalidInput):
    code = "unknown_status"
    title = "Unknown order status"
