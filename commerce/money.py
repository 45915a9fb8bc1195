"""Money: Decimal amounts with ISO 4217 currencies, rounded to the minor unit only at the edge."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from babel.numbers import format_currency, get_currency_precision, list_currencies

from commerce.catalog.errors import UnknownCurrency

# Babel lists historic and fund codes too; these are the ones a shopper may pay in.
_NOT_TENDER = frozenset({"XAU", "XAG", "XPT", "XPD", "XDR", "XXX", "XTS", "XBA", "XBB", "XBC", "XBD", "XSU",
                         "XUA", "BOV", "CLF", "COU", "MXV", "USN", "UYI", "UYW", "CHE", "CHW"})


@cache
def known_currencies() -> frozenset[str]:
    return frozenset(c for c in list_currencies() if c not in _NOT_TENDER)


def require_currency(code: str) -> str:
    """The upper-cased ISO 4217 code, or UnknownCurrency."""
    normalised = (code or "").strip().upper()
    if normalised not in known_currencies():
        raise UnknownCurrency(f"{code!r} is not an ISO 4217 currency we accept.")
    return normalised


def minor_units(currency: str) -> int:
    return int(get_currency_precision(require_currency(currency)))


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit (JPY 0, EUR 2, KWD 3)."""
    exponent = Decimal(1).scaleb(-minor_units(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


def format_money(amount: Decimal, currency: str, locale: str = "en") -> str:
    babel_locale = {"zh": "zh_Hans_CN", "en": "en_US"}.get(locale, locale)
    return str(format_currency(quantize(amount, currency), require_currency(currency), locale=babel_locale))
