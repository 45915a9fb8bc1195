"""Exchange rates: import ECB euro reference XML or CSV, convert through a base currency, refuse stale rates."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from defusedxml import ElementTree
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.cross_border.errors import InvalidRatesFile, NoExchangeRate, StaleExchangeRate
from commerce.cross_border.repository import CrossBorderRepository
from commerce.money import quantize, require_currency
from kit.clock import utcnow

DEMO_RATES_FILE = Path(__file__).with_name("data") / "demo_rates_ecb.xml"
DEMO_SOURCE = "demo-ecb"
ECB_NS = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}"
DEFAULT_SETTINGS = {"fx_markup_percent": "0", "max_rate_age_days": "4", "fx_base": "EUR"}


@dataclass(frozen=True)
class ParsedRate:
    base: str
    currency: str
    rate: Decimal
    as_of: date


@dataclass(frozen=True)
class Conversion:
    """An amount converted at `rate` (markup included), with the rate's date and age in days."""

    amount: Decimal
    rate: Decimal
    from_currency: str
    to_currency: str
    as_of: date
    age: int
    markup_percent: Decimal


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError) as exc:
        raise InvalidRatesFile(f"{what} {text!r} is not a number.") from exc
    if not value.is_finite() or value <= 0:
        raise InvalidRatesFile(f"{what} {text!r} must be a positive number.")
    return value


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except (ValueError, AttributeError) as exc:
        raise InvalidRatesFile(f"{text!r} is not a date (YYYY-MM-DD).") from exc


def _currency(code: str) -> str:
    try:
        return require_currency(code)
    except Exception as exc:
        raise InvalidRatesFile(f"{code!r} is not an ISO 4217 currency.") from exc


def parse_ecb_xml(content: str | bytes) -> list[ParsedRate]:
    """Parse eurofxref-daily.xml (or the 90-day/history files): every Cube time= with its Cube currency= rate=."""
    try:
        root = ElementTree.fromstring(content)
    except Exception as exc:  # defusedxml raises its own errors for entity tricks; all mean "not usable"
        raise InvalidRatesFile(f"The file is not well-formed, safe XML: {exc}") from exc
    rates: list[ParsedRate] = []
    for day in root.iter(f"{ECB_NS}Cube"):
        when = day.get("time")
        if when is None:
            continue
        as_of = _date(when)
        for cube in day.findall(f"{ECB_NS}Cube"):
            currency, rate = cube.get("currency"), cube.get("rate")
            if currency is None or rate is None:
                raise InvalidRatesFile("A Cube has no currency or rate attribute.")
            rates.append(ParsedRate("EUR", _currency(currency), _decimal(rate, f"Rate for {currency}"), as_of))
    if not rates:
        raise InvalidRatesFile("No <Cube time=...> with rates found; is this an ECB eurofxref file?")
    return rates


def parse_rates_csv(content: str) -> list[ParsedRate]:
    """Parse `date,base,currency,rate` rows (a header row is optional)."""
    rates: list[ParsedRate] = []
    for number, row in enumerate(csv.reader(io.StringIO(content)), start=1):
        if not row or not "".join(row).strip():
            continue
        if number == 1 and row[0].strip().lower() == "date":
            continue
        if len(row) != 4:
            raise InvalidRatesFile(f"Line {number}: expected date,base,currency,rate; got {len(row)} fields.")
        when, base, currency, rate = row
        rates.append(ParsedRate(_currency(base), _currency(currency), _decimal(rate, f"Line {number} rate"),
                                _date(when)))
    if not rates:
        raise InvalidRatesFile("The CSV has no rates.")
    return rates


def parse_rates(content: str | bytes) -> tuple[str, list[ParsedRate]]:
    """XML or CSV by content: ('ecb-xml' | 'csv', rates)."""
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content.lstrip("\ufeff")
    if text.lstrip().startswith("<"):
        return "ecb-xml", parse_ecb_xml(text.encode())
    return "csv", parse_rates_csv(text)


async def import_rates(session: AsyncSession, *, content: str | bytes, as_of: date | None = None,
                       source: str | None = None) -> int:
    """Store the rates in the file (XML or CSV by content); `as_of` re-stamps them all; returns how many."""
    kind, rates = parse_rates(content)
    repo = CrossBorderRepository(session)
    now = utcnow()
    for parsed in rates:
        await repo.upsert_rate(base=parsed.base, currency=parsed.currency, rate=parsed.rate,
                               as_of=as_of or parsed.as_of, source=source or kind, imported_at=now)
    await session.flush()
    return len(rates)


async def import_demo_rates(session: AsyncSession, *, as_of: date | None = None) -> int:
    """Import the shipped demo ECB file stamped with `as_of` (default: today), so demo prices never go stale."""
    return await import_rates(session, content=DEMO_RATES_FILE.read_bytes(), as_of=as_of or utcnow().date(),
                              source=DEMO_SOURCE)


async def settings(session: AsyncSession) -> dict[str, str]:
    stored = await CrossBorderRepository(session).settings()
    return {**DEFAULT_SETTINGS, **stored}


async def exchange_rate(session: AsyncSession, *, from_currency: str, to_currency: str,
                        on: date | None = None) -> tuple[Decimal, date]:
    """The mid rate (no markup) to turn 1 `from_currency` into `to_currency`, and the older of the dates used."""
    source, target = require_currency(from_currency), require_currency(to_currency)
    today = on or utcnow().date()
    if source == target:
        return Decimal(1), today
    repo = CrossBorderRepository(session)
    preferred = (await settings(session))["fx_base"]
    bases = [preferred] + [b for b in await repo.rate_bases() if b != preferred]
    for base in bases:
        legs: list[tuple[Decimal, date]] = []
        for code in (source, target):
            if code == base:
                legs.append((Decimal(1), today))
                continue
            row = await repo.latest_rate(base=base, currency=code, on=today)
            if row is None:
                break
            legs.append((row.rate, row.as_of))
        if len(legs) == 2:
            (rate_from, date_from), (rate_to, date_to) = legs
            return rate_to / rate_from, min(date_from, date_to)
    bridged = await _bridge(repo, source, target, today)
    if bridged is not None:
        return bridged
    raise NoExchangeRate(f"We have no exchange rate from {source} to {target}.", from_currency=source,
                         to_currency=target)


async def _bridge(repo: CrossBorderRepository, source: str, target: str, today: date) -> tuple[Decimal, date] | None:
    """Chain rates across bases (EUR->USD from the ECB, USD->KWD from a CSV): the shortest path wins."""
    edges: dict[str, list[tuple[str, Decimal, date]]] = {}
    for row in await repo.latest_rates(on=today):
        edges.setdefault(row.base, []).append((row.currency, row.rate, row.as_of))
        edges.setdefault(row.currency, []).append((row.base, 1 / row.rate, row.as_of))
    frontier: list[tuple[str, Decimal, date]] = [(source, Decimal(1), today)]
    seen = {source}
    while frontier:
        following: list[tuple[str, Decimal, date]] = []
        for code, rate, as_of in frontier:
            for neighbour, step, step_date in edges.get(code, []):
                if neighbour in seen:
                    continue
                reached = (neighbour, rate * step, min(as_of, step_date))
                if neighbour == target:
                    return reached[1], reached[2]
                seen.add(neighbour)
                following.append(reached)
        frontier = following
    return None


async def convert(session: AsyncSession, *, amount: Decimal, from_currency: str, to_currency: str,
                  on: date | None = None) -> Conversion:
    """Convert `amount` (unrounded) through the base currency with the merchant's markup.

    Raises StaleExchangeRate when the rate is older than the `max_rate_age_days` setting (never quietly
    uses an old rate), NoExchangeRate when none is known, UnknownCurrency for a code that isn't ISO 4217.
    """
    source, target = require_currency(from_currency), require_currency(to_currency)
    today = on or utcnow().date()
    config = await settings(session)
    if source == target:
        return Conversion(amount, Decimal(1), source, target, today, 0, Decimal(0))
    mid, as_of = await exchange_rate(session, from_currency=source, to_currency=target, on=today)
    age = (today - as_of).days
    max_age = int(config["max_rate_age_days"])
    if age > max_age:
        raise StaleExchangeRate(
            f"The {source}->{target} exchange rate is from {as_of.isoformat()} ({age} days old); "
            f"prices are only shown with rates at most {max_age} days old.",
            from_currency=source, to_currency=target, as_of=as_of.isoformat(), age_days=age)
    markup = Decimal(config["fx_markup_percent"])
    rate = mid * (1 + markup / 100)
    return Conversion(amount * rate, rate, source, target, as_of, age, markup)


async def price_in(session: AsyncSession, *, amount: Decimal, currency: str, target: str,
                   on: date | None = None) -> Decimal:
    """`amount` in `currency` shown in `target`, rounded to its minor unit (what the bot and API display)."""
    conversion = await convert(session, amount=amount, from_currency=currency, to_currency=target, on=on)
    return quantize(conversion.amount, conversion.to_currency)
