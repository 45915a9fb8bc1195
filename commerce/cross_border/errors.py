"""Cross-border errors: each has a stable code the bot turns into a shopper answer."""
from __future__ import annotations

from kit.errors import Conflict, InvalidInput, NotFound, Unavailable


class UnknownCountry(InvalidInput):
    code = "unknown_country"
    title = "Unknown country"


class DestinationNotServed(InvalidInput):
    code = "destination_not_served"
    title = "We don't ship there"


class NotSellableToDestination(InvalidInput):
    code = "not_sellable_to_destination"
    title = "This product can't be sold to that country"


class InvalidWeight(InvalidInput):
    code = "invalid_weight"
    title = "The parcel has no weight"


class ServiceNotOffered(InvalidInput):
    code = "service_not_offered"
    title = "That shipping service is not offered there"


class TooHeavy(InvalidInput):
    code = "parcel_too_heavy"
    title = "The parcel is too heavy for this service"


class NoExchangeRate(Unavailable):
    code = "no_exchange_rate"
    title = "No exchange rate"


class StaleExchangeRate(Unavailable):
    code = "stale_exchange_rate"
    title = "Exchange rate too old"


class InvalidRatesFile(InvalidInput):
    code = "invalid_rates_file"
    title = "Invalid exchange rates file"


class NoImportRule(Unavailable):
    code = "no_import_rule"
    title = "No import rule for that destination"


class InvalidQuoteRequest(InvalidInput):
    code = "invalid_quote_request"
    title = "Invalid quote request"


class RowNotFound(NotFound):
    code = "cross_border_row_not_found"
    title = "No such cross-border rule"


class RowConflict(Conflict):
    code = "cross_border_row_conflict"
    title = "A row with the same key exists"


class ProductUnavailable(InvalidInput):
    code = "product_unavailable"
    title = "This product is no longer sold"
