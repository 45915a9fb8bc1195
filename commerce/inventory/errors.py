from __future__ import annotations

from kit.errors import Conflict, InvalidInput, NotFound


class InsufficientStock(Conflict):
    code = "insufficient_stock"
    title = "Not enough stock"


class InvalidQuantity(InvalidInput):
    code = "invalid_quantity"
    title = "Invalid quantity"


class LocationNotFound(NotFound):
    code = "location_not_found"
    title = "Unknown stock location"


class ReservationNotFound(NotFound):
    code = "reservation_not_found"
    title = "Reservation not found"


class ReservationClosed(Conflict):
    code = "reservation_closed"
    title = "Reservation is no longer active"


class StockBelowReserved(Conflict):
    code = "stock_below_reserved"
    title = "Stock cannot go below what is reserved"
