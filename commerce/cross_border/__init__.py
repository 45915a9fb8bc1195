"""Cross-border commerce: prices in the shopper's currency, landed cost (duty, import tax, fees), shipping, returns.

Service API for the bot and the API:
- `quote(session, *, lines, destination, currency, service=None)` -> `Quote`
- `shipping_options(session, *, destination, weight_grams, value, currency=None)` -> list of `ShippingOption`
- `return_policy(session, *, country)` -> `ReturnPolicyView`; `refund_amount(order, *, policy, ...)` -> `Refund`
- `convert(session, *, amount, from_currency, to_currency)` -> `Conversion(amount, rate, as_of, age, ...)`
- `price_in(session, *, amount, currency, target)` -> rounded `Decimal`
- `import_rates(session, *, content)` (ECB XML or CSV), `load_cross_border_defaults(session)`
Errors carry stable codes (see `commerce.cross_border.errors`).
"""
from __future__ import annotations

from commerce.cross_border.defaults import load_cross_border_defaults
from commerce.cross_border.errors import (
    DestinationNotServed,
    InvalidRatesFile,
    InvalidWeight,
    NoExchangeRate,
    NoImportRule,
    NotSellableToDestination,
    ProductUnavailable,
    ServiceNotOffered,
    StaleExchangeRate,
    TooHeavy,
    UnknownCountry,
)
from commerce.cross_border.fx import Conversion, convert, import_demo_rates, import_rates, price_in
from commerce.cross_border.geography import country_name, require_country
from commerce.cross_border.landed_cost import quote
from commerce.cross_border.returns import refund_amount, return_policy
from commerce.cross_border.schemas import (
    Quote,
    QuoteCharge,
    QuoteLineIn,
    Refund,
    ReturnPolicyView,
    ShippingOption,
)
from commerce.cross_border.shipping import served_destinations, shipping_options

__all__ = [
    "Conversion", "DestinationNotServed", "InvalidRatesFile", "InvalidWeight", "NoExchangeRate", "NoImportRule",
    "NotSellableToDestination", "ProductUnavailable", "Quote", "QuoteCharge", "QuoteLineIn", "Refund",
    "ReturnPolicyView", "ServiceNotOffered", "ShippingOption", "StaleExchangeRate", "TooHeavy", "UnknownCountry",
    "convert", "country_name", "import_demo_rates", "import_rates", "load_cross_border_defaults", "price_in",
    "quote", "refund_amount", "require_country", "return_policy", "served_destinations", "shipping_options",
]
