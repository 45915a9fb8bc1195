"""Rasa's DucklingEntityExtractor: a Duckling server when one answers at the configured URL, otherwise the same
dimensions (number, ordinal, amount-of-money, email, phone-number, time, duration) found here with maintained
libraries (dateparser, phonenumbers, cn2an) in English and Chinese, in Duckling's JSON shape turned into Rasa
entities (`entity` = the dimension, `extractor` = "DucklingEntityExtractor", Duckling's value and
`additional_info`)."""
from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)

DIMENSIONS = ("number", "ordinal", "amount-of-money", "email", "phone-number", "time", "duration")
EXTRACTOR = "DucklingEntityExtractor"
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_EN_UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
             "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
             "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
             "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_EN_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_EN_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
                "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "twentieth": 20}
_WORD = "|".join(sorted([*_EN_UNITS, *_EN_SCALES], key=len, reverse=True))
_EN_NUMBER = re.compile(rf"\b(?:{_WORD})(?:[\s-]+(?:and\s+)?(?:{_WORD}))*\b", re.I)
_DIGITS = re.compile(r"(?<![A-Za-z0-9.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![A-Za-z0-9])"
                     r"|(?<![A-Za-z0-9.])-?\d+(?:\.\d+)?(?![A-Za-z0-9.]\d)(?P<k>k\b)?", re.I)
# What makes dateparser's find a time (else "the 3rd one" or "may" would be dates)
_TIME_HINT = re.compile(r"\d[:.]\d|\b(?:today|tonight|tomorrow|yesterday|now|noon|midnight|morning|afternoon|"
                        r"evening|night|week|month|year|next|last|ago|in \d|at \d|\d\s*(?:am|pm)|a\.m|p\.m|"
                        r"mon|tue|wed|thu|fri|sat|sun|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)|"
                        r"今|明|昨|后天|前天|点|号|日|周|星期|月|年|上午|下午|晚上|早上|分钟后|小时后", re.I)
_MONTH_ONLY = re.compile(r"(?:(?:in|during|for|of)\s+)?(?:(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)"
                         r"[a-z]*\.?(?:,?\s+\d{4})?|(?:last|next|this|the\s+last|the\s+next)\s+month)", re.I)
_DAY_AFTER_MONTH = re.compile(r"\s+(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?\b", re.I)
_CN_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百千万亿点]+")
_ORDINAL = re.compile(r"\b(?P<n>\d+)(?:st|nd|rd|th)\b|\b(?P<w>" + "|".join(_EN_ORDINALS) + r")\b"
                      r"|第(?P<c>[零〇一二两三四五六七八九十百千\d]+)", re.I)
_CURRENCIES = {"$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD", "bucks": "USD", "€": "EUR", "eur": "EUR",
               "euro": "EUR", "euros": "EUR", "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP",
               "¥": "CNY", "元": "CNY", "块": "CNY", "块钱": "CNY", "人民币": "CNY", "rmb": "CNY", "cny": "CNY",
               "yuan": "CNY"}
_DURATION_UNITS = {"second": "second", "seconds": "second", "sec": "second", "secs": "second", "秒": "second",
                   "秒钟": "second", "minute": "minute", "minutes": "minute", "min": "minute", "mins": "minute",
                   "分钟": "minute", "hour": "hour", "hours": "hour", "hr": "hour", "hrs": "hour", "小时": "hour",
                   "个小时": "hour", "day": "day", "days": "day", "天": "day", "week": "week", "weeks": "week",
                   "周": "week", "个星期": "week", "星期": "week", "month": "month", "months": "month", "个月": "month",
                   "year": "year", "years": "year", "年": "year"}
_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800, "month": 2592000,
            "year": 31536000}


@dataclass
class Span:
    start: int
    end: int
    dim: str
    value: dict[str, Any]
    body: str = ""
    latent: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _en_words_value(text: str) -> float | None:
    total = current = 0
    seen = False
    for word in re.split(r"[\s-]+", text.lower()):
        if word == "and" or not word:
            continue
        if word in _EN_UNITS:
            current += _EN_UNITS[word]
            seen = True
        elif word in _EN_SCALES:
            scale = _EN_SCALES[word]
            current = max(current, 1) * scale
            if scale >= 1000:
                total += current
                current = 0
            seen = True
        else:
            return None
    return float(total + current) if seen else None


def _cn_value(text: str) -> float | None:
    import cn2an  # type: ignore[import-untyped]

    try:
        return float(cn2an.cn2an(text, "smart"))
    except (ValueError, KeyError):
        return None


def _numbers(text: str) -> list[Span]:
    spans: list[Span] = []
    for match in _DIGITS.finditer(text):
        raw = match.group(0)
        number = float(raw.rstrip("kK").replace(",", ""))
        if match.group("k"):
            number *= 1000
        spans.append(Span(match.start(), match.end(), "number", {"value": number, "type": "value"}))
    for match in _EN_NUMBER.finditer(text):
        words_value = _en_words_value(match.group(0))
        if words_value is not None:
            spans.append(Span(match.start(), match.end(), "number", {"value": words_value, "type": "value"}))
    for match in _CN_NUMBER.finditer(text):
        if match.group(0) in ("点",) or (match.start() > 0 and text[match.start() - 1] == "第"):
            continue
        cn_value = _cn_value(match.group(0))
        if cn_value is not None:
            spans.append(Span(match.start(), match.end(), "number", {"value": cn_value, "type": "value"}))
    return spans


def _ordinals(text: str) -> list[Span]:
    spans = []
    for match in _ORDINAL.finditer(text):
        if match.group("n"):
            number: float | None = float(match.group("n"))
        elif match.group("w"):
            number = float(_EN_ORDINALS[match.group("w").lower()])
        else:
            digits = match.group("c")
            number = float(digits) if digits.isdigit() else _cn_value(digits)
        if number is not None:
            spans.append(Span(match.start(), match.end(), "ordinal", {"value": int(number), "type": "value"}))
    return spans


def _money(text: str, numbers: list[Span]) -> list[Span]:
    spans = []
    lowered = text.lower()
    for number in numbers:
        before = lowered[:number.start].rstrip()
        after = lowered[number.end:]
        unit = None
        start, end = number.start, number.end
        for symbol, code in _CURRENCIES.items():
            if before.endswith(symbol):
                unit, start = code, len(before) - len(symbol)
                break
        if unit is None:
            stripped = after.lstrip()
            for symbol in sorted(_CURRENCIES, key=len, reverse=True):
                if stripped.startswith(symbol) and (not symbol.isalpha() or not stripped[len(symbol):len(symbol) + 1]
                                                    .isalpha()):
                    unit = _CURRENCIES[symbol]
                    end = number.end + (len(after) - len(stripped)) + len(symbol)
                    break
        if unit is not None:
            spans.append(Span(start, end, "amount-of-money",
                              {"value": number.value["value"], "unit": unit, "type": "value"}))
    return spans


def _durations(text: str, numbers: list[Span]) -> list[Span]:
    spans = []
    for number in numbers:
        after = text[number.end:]
        stripped = after.lstrip()
        for word in sorted(_DURATION_UNITS, key=len, reverse=True):
            if stripped.lower().startswith(word) and not stripped[len(word):len(word) + 1].isalpha():
                grain = _DURATION_UNITS[word]
                amount = number.value["value"]
                value = int(amount) if float(amount).is_integer() else amount
                end = number.end + (len(after) - len(stripped)) + len(word)
                spans.append(Span(number.start, end, "duration",
                                  {"value": value, "unit": grain, "type": "value", grain: value,
                                   "normalized": {"value": int(amount * _SECONDS[grain]), "unit": "second"}}))
                break
    return spans


def _phones(text: str, region: str) -> list[Span]:
    import phonenumbers

    spans = []
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        formatted = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        spans.append(Span(match.start, match.end, "phone-number", {"value": formatted}))
    return spans


def _times(text: str, language: str, reference: dt.datetime) -> list[Span]:
    from dateparser.search import search_dates  # type: ignore[import-untyped]

    try:
        found = search_dates(text, languages=[language], settings={
            "RELATIVE_BASE": reference.replace(tzinfo=None), "PREFER_DATES_FROM": "future",
            "RETURN_AS_TIMEZONE_AWARE": False}) or []
    except Exception:  # noqa: BLE001 - dateparser raises many kinds on odd text; no time is then found
        log.debug("dateparser failed on a message", exc_info=True)
        return []
    spans = []
    cursor = 0
    for surface, moment in found:
        start = text.find(surface, cursor)
        if start < 0 or surface.strip().replace(".", "").isdigit() or not _TIME_HINT.search(surface) or \
                re.fullmatch(r"(?:the\s+)?\d+(?:st|nd|rd|th)(?:\s+one)?", surface.strip(), re.I):
            continue  # a bare number or an ordinal is no time (Duckling agrees)
        cursor = start + len(surface)
        grain = "day" if moment.hour == moment.minute == moment.second == 0 else "second" \
            if moment.second else "minute" if moment.minute else "hour"
        if _MONTH_ONLY.fullmatch(surface.strip()):
            day = _DAY_AFTER_MONTH.match(text, cursor)
            if day and not surface.lower().endswith("month") and 1 <= int(day.group(1)) <= 31:
                # "march 3rd": dateparser's search stops at the month; Duckling reads the day too
                try:
                    moment = moment.replace(day=int(day.group(1)), hour=0, minute=0, second=0, microsecond=0)
                    cursor, grain = day.end(), "day"
                except ValueError:
                    pass
            else:
                # a month as a whole ("January 2019", "in march", "last month"): its first day, grain month
                moment, grain = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0), "month"
        stamp = moment.replace(tzinfo=reference.tzinfo).isoformat(timespec="milliseconds")
        spans.append(Span(start, cursor, "time", {"value": stamp, "grain": grain, "type": "value",
                                                  "values": [{"value": stamp, "grain": grain, "type": "value"}]}))
    return spans


_ZH_NUM = r"\d{1,4}|[零〇一二两三四五六七八九十百]{1,4}"
_ZH_DAYS = {"今天": 0, "今日": 0, "今晚": 0, "明天": 1, "明日": 1, "明早": 1, "明晚": 1, "后天": 2, "大后天": 3,
            "昨天": -1, "昨日": -1, "前天": -2}
_ZH_WEEKDAYS = {"一": 0, "1": 0, "二": 1, "2": 1, "三": 2, "3": 2, "四": 3, "4": 3, "五": 4, "5": 4, "六": 5, "6": 5,
                "日": 6, "天": 6, "7": 6}
# Hours added to a clock reading in this part of the day (下午三点 = 15:00); None: as said.
_ZH_PERIODS = {"凌晨": 0, "早上": 0, "早晨": 0, "上午": 0, "中午": 12, "下午": 12, "傍晚": 12, "晚上": 12, "今晚": 12,
               "明晚": 12, "夜里": 12, "明早": 0}
_ZH_SHIFT_UNITS = {"分钟": "minute", "分": "minute", "小时": "hour", "个小时": "hour", "钟头": "hour", "个钟头": "hour",
                   "天": "day", "日": "day", "周": "week", "个星期": "week", "星期": "week", "礼拜": "week",
                   "个礼拜": "week", "个月": "month", "年": "year"}
_ZH_LOWER_GRAIN = {"minute": "second", "hour": "minute", "day": "hour", "week": "day", "month": "day", "year": "month"}
_ZH_TIME = re.compile(
    rf"(?P<shift>(?P<n>{_ZH_NUM}|半)(?P<unit>个小时|小时|个钟头|钟头|分钟|天|个星期|星期|个礼拜|礼拜|周|个月|年)"
    r"(?:以后|之后|后))"
    r"|(?:(?P<day>大后天|今天|今日|明天|明日|后天|昨天|昨日|前天)"
    r"|(?P<week>这个?|本|下下?个?|上个?)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天1-7])"
    rf"|(?:(?P<month>{_ZH_NUM})月(?P<mday>{_ZH_NUM})[日号]))?"
    r"(?P<period>凌晨|早上|早晨|上午|中午|下午|傍晚|晚上|夜里|今晚|明晚|明早)?"
    rf"(?:(?P<hour>{_ZH_NUM})[点點时](?:(?P<half>半)|(?P<quarter>一刻|三刻)|(?P<minute>{_ZH_NUM})分?)?"
    r"|(?P<hh>\d{1,2})[:：](?P<mm>\d{2}))?")


def _zh_int(raw: str) -> int | None:
    if raw.isdigit():
        return int(raw)
    value = _cn_value(raw)
    return int(value) if value is not None and value.is_integer() else None


def _zh_times(text: str, reference: dt.datetime) -> list[Span]:
    """Chinese time expressions as Duckling's zh rules read them: 明天下午三点 (hour grain), 下周一 (day),
    3天后 (the reference moved 3 days, one grain finer: hour), 3月5号, 晚上8点半 (minute)."""
    spans = []
    for match in _ZH_TIME.finditer(text):
        if not match.group(0):
            continue
        grain: str
        if match.group("shift"):
            raw = match.group("n")
            unit = _ZH_SHIFT_UNITS[match.group("unit")]
            amount = 0.5 if raw == "半" else _zh_int(raw)
            if amount is None:
                continue
            if unit in ("month", "year"):
                months = int(amount * (12 if unit == "year" else 1))
                total = reference.month - 1 + months
                moment = reference.replace(year=reference.year + total // 12, month=total % 12 + 1,
                                           day=min(reference.day, 28))
            else:
                moment = reference + dt.timedelta(seconds=amount * _SECONDS[unit])
            grain = _ZH_LOWER_GRAIN[unit]
        else:
            day = match.group("day") or match.group("wd") or match.group("mday")
            period = match.group("period")
            hour_raw = match.group("hour") or match.group("hh")
            if not (day or period or hour_raw):
                continue
            if not day and not period and match.group("hour") and not (match.group("half") or match.group("minute")):
                # a bare "三点" is a time only with 点; "三时" alone is too ambiguous
                if not match.group(0).endswith(("点", "點")):
                    continue
            date = reference.date()
            if match.group("day"):
                date += dt.timedelta(days=_ZH_DAYS[match.group("day")])
            elif match.group("wd"):
                weekday = _ZH_WEEKDAYS[match.group("wd")]
                which = match.group("week") or ""
                monday = date - dt.timedelta(days=date.weekday())
                if which.startswith("下下"):
                    date = monday + dt.timedelta(days=14 + weekday)
                elif which.startswith("下"):
                    date = monday + dt.timedelta(days=7 + weekday)
                elif which.startswith("上"):
                    date = monday + dt.timedelta(days=-7 + weekday)
                elif which:
                    date = monday + dt.timedelta(days=weekday)
                else:  # a bare weekday: the next one to come
                    date += dt.timedelta(days=(weekday - date.weekday()) % 7 or 7)
            elif match.group("mday"):
                month, mday = _zh_int(match.group("month")), _zh_int(match.group("mday"))
                if month is None or mday is None or not (1 <= month <= 12):
                    continue
                try:
                    date = dt.date(reference.year, month, mday)
                    if date < reference.date():
                        date = dt.date(reference.year + 1, month, mday)
                except ValueError:
                    continue
            elif match.group("period") in ("今晚",):
                pass
            elif match.group("period") in ("明晚", "明早"):
                date += dt.timedelta(days=1)
            hour: int | None = None
            minute = 0
            grain = "day"
            if hour_raw:
                hour = _zh_int(hour_raw)
                if hour is None or hour > 24:
                    continue
                grain = "hour"
                if match.group("mm"):
                    minute, grain = int(match.group("mm")), "minute"
                elif match.group("half"):
                    minute, grain = 30, "minute"
                elif match.group("quarter"):
                    minute, grain = (15 if match.group("quarter") == "一刻" else 45), "minute"
                elif match.group("minute"):
                    parsed = _zh_int(match.group("minute"))
                    if parsed is None or parsed > 59:
                        continue
                    minute, grain = parsed, "minute"
                if period and hour < 12 and _ZH_PERIODS[period] == 12 and not (period == "中午" and hour >= 11):
                    hour += 12
                hour %= 24
            elif period:
                hour = {"凌晨": 0, "早上": 4, "早晨": 4, "明早": 4, "上午": 0, "中午": 12, "下午": 12, "傍晚": 18,
                        "晚上": 18, "今晚": 18, "明晚": 18, "夜里": 18}[period]
                grain = "hour"
            moment = dt.datetime.combine(date, dt.time(hour or 0, minute), tzinfo=reference.tzinfo)
            if not day and hour_raw and moment < reference:
                moment += dt.timedelta(days=1)  # a clock time said alone is the next one
        moment = _truncate(moment, grain)
        stamp = moment.isoformat(timespec="milliseconds")
        spans.append(Span(match.start(), match.end(), "time", {"value": stamp, "grain": grain, "type": "value",
                                                               "values": [{"value": stamp, "grain": grain,
                                                                           "type": "value"}]}))
    return spans


def _truncate(moment: dt.datetime, grain: str) -> dt.datetime:
    if grain == "second":
        return moment.replace(microsecond=0)
    if grain == "minute":
        return moment.replace(second=0, microsecond=0)
    if grain == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    moment = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(day=1) if grain == "month" else moment


def _without_overlaps(spans: list[Span]) -> list[Span]:
    """Duckling keeps the longest reading of each stretch of text; inside it, richer dimensions win."""
    rank = {"amount-of-money": 0, "duration": 1, "time": 2, "phone-number": 3, "email": 4, "ordinal": 5,
            "number": 6}
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (-(s.end - s.start), rank[s.dim], s.start)):
        if all(span.end <= other.start or span.start >= other.end for other in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def extract_locally(text: str, *, dimensions: Iterable[str] | None = None, language: str = "en",
                    region: str = "US", reference: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Duckling's /parse answer for `text`, computed here: a list of {body, start, end, dim, value, latent}."""
    wanted = set(dimensions or DIMENSIONS)
    reference = reference or dt.datetime.now(dt.UTC)
    spans: list[Span] = []
    numbers = _numbers(text)
    if "number" in wanted:
        spans.extend(numbers)
    if "ordinal" in wanted:
        spans.extend(_ordinals(text))
    if "amount-of-money" in wanted:
        spans.extend(_money(text, numbers))
    if "duration" in wanted:
        spans.extend(_durations(text, numbers))
    if "email" in wanted:
        spans.extend(Span(m.start(), m.end(), "email", {"value": m.group(0)}) for m in _EMAIL.finditer(text))
    if "phone-number" in wanted:
        spans.extend(_phones(text, "CN" if language.startswith("zh") else region))
    if "time" in wanted:
        # Money, numbers with units, emails and phones blanked (same length) so no time swallows them.
        masked = list(text)
        for span in [*spans, *_money(text, numbers), *_durations(text, numbers)]:
            if span.dim not in ("number", "ordinal"):  # "march 3rd" is a day
                masked[span.start:span.end] = " " * (span.end - span.start)
        zh_times = _zh_times(text, reference)
        for span in zh_times:  # a Chinese time is no number (三点) nor a duration (3天后)
            masked[span.start:span.end] = " " * (span.end - span.start)
        spans = [s for s in spans if not any(t.start <= s.start and s.end <= t.end for t in zh_times)]
        spans.extend(zh_times)
        spans.extend(_times("".join(masked), "zh" if language.startswith("zh") else "en", reference))
    out = []
    for span in _without_overlaps(spans):
        if span.dim == "number" and any(s.dim == "email" and s.start <= span.start < s.end for s in spans):
            continue
        out.append({"body": text[span.start:span.end], "start": span.start, "end": span.end, "dim": span.dim,
                    "value": span.value, "latent": span.latent})
    return out


def to_rasa_entities(matches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Duckling matches as Rasa's DucklingEntityExtractor reports them."""
    entities = []
    for match in matches:
        value = match.get("value") or {}
        entities.append({"start": match["start"], "end": match["end"], "text": match.get("body"),
                         "value": value.get("value"), "confidence": 1.0, "additional_info": value,
                         "entity": match["dim"], "extractor": EXTRACTOR})
    return entities


@dataclass
class DucklingExtractor:
    """The configured Duckling URL when it answers (its answer as is), else `extract_locally`."""

    url: str | None = None
    dimensions: list[str] | None = None
    locale: str = "en_US"
    timezone: str | None = None
    timeout: float = 3.0
    _down_until: float = 0.0

    async def extract(self, text: str) -> list[dict[str, Any]]:
        import time

        if self.url and time.monotonic() >= self._down_until:
            try:
                async with httpx.AsyncClient(timeout=self.timeout) as client:
                    answer = await client.post(f"{self.url.rstrip('/')}/parse", data={
                        "text": text, "locale": self.locale, "tz": self.timezone or "UTC",
                        **({"dims": str(list(self.dimensions)).replace("'", '"')} if self.dimensions else {})})
                answer.raise_for_status()
                matches = answer.json()
                if isinstance(matches, list):
                    return to_rasa_entities([m for m in matches if isinstance(m, dict) and "dim" in m])
            except (httpx.HTTPError, ValueError):
                log.info("Duckling at %s does not answer; extracting its dimensions locally", self.url)
                self._down_until = time.monotonic() + 60  # ask again in a minute
        language = self.locale.split("_")[0]
        region = self.locale.split("_")[1] if "_" in self.locale else "US"
        return to_rasa_entities(extract_locally(text, dimensions=self.dimensions, language=language, region=region))
