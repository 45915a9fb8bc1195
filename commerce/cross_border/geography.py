"""Countries (ISO 3166 alpha-2) and delivery dates in business days."""
from __future__ import annotations

from datetime import date, timedelta
from functools import cache

from babel import Locale

from commerce.cross_border.errors import UnknownCountry

# Babel's territory list includes regions and groupings that are not places we deliver to.
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "ZZ", "QO", "XA", "XB", "XK"})


@cache
def _names(locale: str) -> dict[str, str]:
    try:
        territories = Locale.parse(locale).territories
    except (ValueError, TypeError):
        territories = Locale.parse("en").territories
    return {code: str(name) for code, name in territories.items()
            if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES}


def require_country(code: str | None) -> str:
    """The upper-cased ISO 3166 alpha-2 code, or UnknownCountry."""
    normalised = (code or "").strip().upper()
    if normalised not in _names("en"):
        raise UnknownCountry(f"{code!r} is not a country code we know (use ISO 3166 alpha-2, e.g. DE).",
                             country=code)
    return normalised


def country_name(code: str, locale: str = "en") -> str:
    return _names(locale).get(code) or _names("en").get(code, code)


def add_business_days(start: date, days: int) -> date:
    """The date `days` business days (Mon-Fri) after `start`."""
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current
