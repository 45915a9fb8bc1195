"""Entity extraction with Rasa-style character offsets: patterns, lookup tables, synonyms.

Over 500 lines: the patterns, the lookup tables and the extractor share one rule for word edges and overlaps
(`_ends`, `_resolve_overlaps`), which a split would export from one module to the other."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from kit.text import EMAIL_IN_TEXT
from nlu.training_data import TrainingData

PATTERN_EXTRACTOR = "RegexEntityExtractor"
LOOKUP_EXTRACTOR = "LookupEntityExtractor"
SYNONYM_PROCESSOR = "EntitySynonymMapper"

# Entities found by built-in patterns; training annotations of these never become lookup entries.
PATTERN_ENTITIES = frozenset({"order_number", "email", "phone", "money", "quantity"})
# Lower number wins an overlap; within one priority the longer span wins.
_PRIORITY = {"email": 0, "order_number": 1, "money": 2, "phone": 3, "size": 4, "country": 5,
             "currency": 5, "product": 6, "category": 6, "colour": 6, "quantity": 8}
_DEFAULT_PRIORITY = 7


@dataclass(frozen=True)
class Entity:
    entity: str
    value: Any
    start: int
    end: int
    text: str
    confidence: float = 1.0
    extractor: str = PATTERN_EXTRACTOR
    processors: tuple[str, ...] = ()

    def to_rasa(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "entity": self.entity, "start": self.start, "end": self.end, "value": self.value,
            "confidence": round(self.confidence, 4), "extractor": self.extractor,
        }
        if self.processors:
            out["processors"] = list(self.processors)
        return out


# ---------------------------------------------------------------- built-in vocabularies

COLOURS: dict[str, str] = {
    **{c: c for c in (
        "black", "white", "red", "blue", "navy", "green", "yellow", "orange", "purple", "pink", "brown",
        "grey", "beige", "gold", "silver", "khaki", "olive", "maroon", "burgundy", "teal", "turquoise",
        "cream", "ivory", "charcoal", "tan", "lilac", "lavender", "mint", "coral", "rose gold", "multicolour",
        "indigo", "sage", "camel", "terracotta", "champagne", "copper", "graphite",
    )},
    "gray": "grey", "navy blue": "navy", "light blue": "light blue", "dark blue": "dark blue",
    "dark green": "dark green", "multicolor": "multicolour", "multi-colour": "multicolour",
    "黑色": "black", "白色": "white", "红色": "red", "蓝色": "blue", "藏青色": "navy", "藏青": "navy",
    "海军蓝": "navy", "绿色": "green", "黄色": "yellow", "橙色": "orange", "橘色": "orange", "紫色": "purple",
    "粉色": "pink", "粉红色": "pink", "粉红": "pink", "棕色": "brown", "咖啡色": "brown", "褐色": "brown",
    "灰色": "grey", "米色": "beige", "金色": "gold", "银色": "silver", "卡其色": "khaki", "酒红色": "burgundy",
    "米白色": "cream", "浅蓝色": "light blue", "深蓝色": "dark blue", "墨绿色": "dark green",
    "靛蓝色": "indigo", "靛蓝": "indigo", "靛青色": "indigo", "驼色": "camel", "香槟色": "champagne",
    "铜色": "copper", "古铜色": "copper", "石墨色": "graphite", "陶土色": "terracotta",
}

SIZE_WORDS: dict[str, str] = {
    "xxs": "XXS", "xs": "XS", "xl": "XL", "xxl": "XXL", "xxxl": "XXXL", "2xl": "XXL", "3xl": "XXXL",
    "4xl": "4XL", "extra small": "XS", "extra-small": "XS", "small": "S", "medium": "M", "large": "L",
    "extra large": "XL", "extra-large": "XL", "one size": "One Size", "free size": "One Size",
    "小号": "S", "中号": "M", "大号": "L", "加大号": "XL", "加大": "XL", "特大号": "XXL", "均码": "One Size",
    "S码": "S", "M码": "M", "L码": "L", "XL码": "XL",
}
# Single letters only count when written in capitals (so "m" in "I'm" is not a size).
SIZE_LETTERS = {"S": "S", "M": "M", "L": "L"}

COUNTRY_ALIASES: dict[str, str] = {
    "usa": "US", "u.s.": "US", "u.s.a.": "US", "america": "US", "the states": "US", "united states": "US",
    "uk": "GB", "u.k.": "GB", "britain": "GB", "great britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "holland": "NL", "the netherlands": "NL", "south korea": "KR", "korea": "KR",
    "russia": "RU", "vietnam": "VN", "czech republic": "CZ", "hong kong": "HK", "taiwan": "TW",
    "macau": "MO", "macao": "MO", "uae": "AE", "emirates": "AE", "china": "CN", "mainland china": "CN",
    "中国大陆": "CN", "大陆": "CN", "内地": "CN", "香港": "HK", "台湾": "TW", "澳门": "MO", "韩国": "KR",
    "英格兰": "GB", "阿联酋": "AE", "荷兰": "NL",
}
# Two-letter codes that are also ordinary words in capitals.
_AMBIGUOUS_COUNTRY_CODES = frozenset({
    "AM", "AN", "AS", "AT", "BE", "BY", "DO", "GO", "HI", "ID", "IN", "IS", "IT", "ME", "MY", "NO", "OK", "ON",
    "OR", "SO", "TO", "UP", "WE", "AI", "AD", "AG", "AL", "AR", "CC", "CV", "EH", "FM", "LA", "PA", "PM",
    "PS", "SH", "ST", "TV", "VA",
})

CURRENCY_CODES = (
    "USD", "EUR", "GBP", "CNY", "RMB", "JPY", "HKD", "TWD", "KRW", "SGD", "AUD", "CAD", "NZD", "CHF", "SEK",
    "NOK", "DKK", "PLN", "CZK", "HUF", "INR", "BRL", "MXN", "RUB", "ZAR", "AED", "SAR", "THB", "MYR", "IDR",
    "VND", "ILS", "TRY", "PHP",
)
_CASE_SENSITIVE_CODES = frozenset({"TRY", "PHP"})
CURRENCY_WORDS: dict[str, str] = {
    "dollar": "USD", "dollars": "USD", "us dollars": "USD", "bucks": "USD", "euro": "EUR", "euros": "EUR",
    "pound": "GBP", "pounds": "GBP", "quid": "GBP", "sterling": "GBP", "pounds sterling": "GBP",
    "yuan": "CNY", "renminbi": "CNY", "yen": "JPY", "swiss francs": "CHF", "francs": "CHF", "rupees": "INR",
    "hong kong dollars": "HKD", "canadian dollars": "CAD", "australian dollars": "AUD",
    "美元": "USD", "美金": "USD", "欧元": "EUR", "英镑": "GBP", "人民币": "CNY", "日元": "JPY", "港币": "HKD",
    "港元": "HKD", "澳元": "AUD", "加元": "CAD", "韩元": "KRW", "新台币": "TWD", "台币": "TWD", "瑞士法郎": "CHF",
    "卢布": "RUB", "新加坡元": "SGD",
}
_MONEY_PREFIX = {
    "us$": "USD", "usd$": "USD", "hk$": "HKD", "c$": "CAD", "ca$": "CAD", "a$": "AUD", "au$": "AUD",
    "nz$": "NZD", "s$": "SGD", "jp¥": "JPY", "cn¥": "CNY", "nt$": "TWD", "$": "USD", "€": "EUR", "£": "GBP",
    "¥": "¥", "￥": "¥",
    "rmb": "CNY", "₩": "KRW", "₹": "INR", "₽": "RUB", "r$": "BRL", "chf": "CHF", "fr.": "CHF",
}
_MONEY_SUFFIX = {
    **CURRENCY_WORDS,
    "$": "USD", "€": "EUR", "£": "GBP", "¥": "¥", "￥": "¥", "円": "JPY", "欧": "EUR", "元": "CNY", "块": "CNY",
    "块钱": "CNY",
    "rmb": "CNY", "usd": "USD", "eur": "EUR", "gbp": "GBP", "cny": "CNY", "jpy": "JPY", "hkd": "HKD",
    "eur.": "EUR",
}
NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "eleven": 11, "twelve": 12, "a dozen": 12, "a couple of": 2, "a pair": 2,
                "a few": 3}
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}

_AMOUNT = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:[.,]\d{1,2})?)"


def _alternation(keys: Iterable[str]) -> str:
    return "|".join(re.escape(k) for k in sorted(set(keys), key=len, reverse=True))


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern[str]]:
    prefix = _alternation(k for k in _MONEY_PREFIX) + "|" + "|".join(CURRENCY_CODES)
    suffix = _alternation(_MONEY_SUFFIX) + "|" + "|".join(CURRENCY_CODES)
    return {
        "email": EMAIL_IN_TEXT,
        "order_hash": re.compile(r"(?<![\w#])#\s?(\d{3,12})(?!\d)"),
        "order_word": re.compile(
            r"(?:\border|订单)\s*(?:number|no\.?|num|id|编号|号码|号)?\s*(?:is|:|：|#)?\s*#?(\d{3,12})(?![\d.,])",
            re.IGNORECASE,
        ),
        "money_prefix": re.compile(rf"(?<![A-Za-z])(?P<cur>{prefix})\s?(?P<amt>{_AMOUNT})(?![\d])", re.IGNORECASE),
        "money_suffix": re.compile(
            rf"(?<![\d.,])(?P<amt>{_AMOUNT})\s?(?P<cur>{suffix})(?![A-Za-z])", re.IGNORECASE
        ),
        "phone": re.compile(r"(?<![A-Za-z0-9_+])(?:\+|00)?\d[\d \-().]{5,18}\d(?!\w)"),
        "phone_context": re.compile(r"(?:phone|tel|call|mobile|cell|whatsapp|电话|手机|联系)", re.IGNORECASE),
        "size_prefixed": re.compile(
            r"(?:\bsize|\bsz|尺码|尺寸|码数)\s*[:：]?\s*(?P<v>(?:EU|US|UK)\s?\d{1,2}(?:\.5)?|\d{1,2}(?:\.5)?"
            r"|X{0,3}[SMLsml]\b|\d?X{1,3}L\b)",
            re.IGNORECASE,
        ),
        "size_system": re.compile(r"(?<![A-Za-z])(?:EU|US|UK)\s?\d{1,2}(?:\.5)?(?!\d)"),
        "size_waist": re.compile(r"(?<![A-Za-z])W\d{2}\s?L\d{2}(?!\d)"),
        "size_cn": re.compile(r"(\d{2}(?:\.5)?)码"),
        "quantity_digits": re.compile(
            r"(?<![A-Za-z0-9_#$€£¥.,:/-])(\d{1,3})(?![\d.,:/%A-Za-z]|\s?(?:%|码|元|块|岁|年|月|日|天|号|点|"
            r"years?\b|yrs?\b|months?\b|weeks?\b|days?\b|hours?\b|minutes?\b|mins?\b|am\b|pm\b))"
        ),
        "quantity_cn": re.compile(
            r"(?<![这那哪])((\d{1,3}|[一二两三四五六七八九十]{1,2})\s*(?:件|个|双|条|只|台|份|瓶|盒|套|包|本|张|支|顶|副))"
        ),
        "quantity_words": re.compile(
            r"\b(?:(?:add|buy|take|want|need|order|get|put)\s(?=one\b))?(" + _alternation(NUMBER_WORDS) + r"|one)\b",
            re.IGNORECASE,
        ),
    }


def _decimal_text(raw: str) -> str | None:
    text = raw.replace(" ", "")
    if re.fullmatch(r"\d+,\d{1,2}", text):
        text = text.replace(",", ".")
    text = text.replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    return format(amount.normalize(), "f") if amount == amount.to_integral() else format(amount, "f")


def _cn_number(raw: str) -> int | None:
    if raw.isdigit():
        return int(raw)
    if raw == "十":
        return 10
    if len(raw) == 1:
        return _CN_DIGITS.get(raw)
    if raw[0] == "十":
        return 10 + _CN_DIGITS.get(raw[1], 0)
    if len(raw) == 2 and raw[1] == "十":
        return _CN_DIGITS.get(raw[0], 0) * 10
    return None


_WORD_START = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]")


def _is_word_char(char: str) -> bool:
    return char.isascii() and char.isalnum()


# Where a surface can end: after a non-word character, or at a word's end; a plural's stem ends before its
# "s" / "es" (_Table._match_at checks what follows).
_ANY_END = re.compile(r"[^A-Za-z0-9]|[A-Za-z0-9](?![A-Za-z0-9])")


@lru_cache(maxsize=64)
def _ends(haystack: str) -> frozenset[int]:
    """The positions of `haystack` where a surface may end. Every gazetteer scans the same message (as written
    and lower-cased), so they share this."""
    ends = set()
    for match in _ANY_END.finditer(haystack):
        end = match.end()
        ends.add(end)
        if haystack[end - 1] == "s":
            ends.add(end - 1)
            if haystack[end - 2:end - 1] == "e":
                ends.add(end - 2)
    return frozenset(ends)


@dataclass
class _Table:
    """Surfaces of one case mode, indexed for longest-match scanning from candidate start positions."""

    entries: dict[str, str]
    plural: bool
    word_lengths: list[int] = field(default_factory=list)
    other_lengths: list[int] = field(default_factory=list)
    other_first: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.word_lengths = sorted({len(k) for k in self.entries if _is_word_char(k[0])}, reverse=True)
        self.other_lengths = sorted({len(k) for k in self.entries if not _is_word_char(k[0])}, reverse=True)
        self.other_first = frozenset(k[0] for k in self.entries if not _is_word_char(k[0]))

    def _match_at(self, haystack: str, index: int, lengths: list[int], ends: frozenset[int]) -> tuple[int, str] | None:
        size = len(haystack)
        for length in lengths:
            end = index + length
            if end not in ends:  # no surface can end there (or it is past the end): no slice, no lookup
                continue
            value = self.entries.get(haystack[index:end])
            if value is None:
                continue
            if _is_word_char(haystack[end - 1]):
                if self.plural and haystack[end - 1].isalpha() and length > 2:
                    for suffix in ("es", "s"):
                        plural_end = end + len(suffix)
                        if haystack[end:plural_end] == suffix and (
                            plural_end >= size or not _is_word_char(haystack[plural_end])
                        ):
                            return plural_end, value
                if end < size and _is_word_char(haystack[end]):
                    continue
            return end, value
        return None

    def find(self, haystack: str) -> list[tuple[int, int, str]]:
        found: list[tuple[int, int, str]] = []
        starts: list[tuple[int, list[int]]] = []
        if self.word_lengths:
            starts.extend((m.start(), self.word_lengths) for m in _WORD_START.finditer(haystack))
        if self.other_first:
            starts.extend((i, self.other_lengths) for i, c in enumerate(haystack) if c in self.other_first)
        starts.sort(key=lambda item: item[0])
        covered = 0
        ends = _ends(haystack) if starts else frozenset()
        for index, lengths in starts:
            if index < covered or (index > 0 and haystack[index - 1] in "'’"):
                continue
            hit = self._match_at(haystack, index, lengths, ends)
            if hit is not None:
                found.append((index, hit[0], hit[1]))
                covered = hit[0]
        return found


@dataclass
class _Gazetteer:
    """Surface forms -> canonical value for one entity (case-folded, plus some matched only as written)."""

    entity: str
    entries: dict[str, str] = field(default_factory=dict)  # lower-cased surface -> canonical value
    exact_case: dict[str, str] = field(default_factory=dict)  # surface matched only as written
    plural: bool = True
    _tables: tuple[_Table, _Table] | None = None

    def find(self, text: str) -> list[tuple[int, int, str]]:
        if self._tables is None:
            self._tables = (_Table(self.entries, self.plural), _Table(self.exact_case, False))
        folded, exact = self._tables
        return [*folded.find(text.lower()), *exact.find(text)]


def _is_code(surface: str) -> bool:
    return 2 <= len(surface) <= 3 and surface.isascii() and surface.isalpha() and surface.isupper()


def _table_key(value: str) -> str:
    """Lookup key: lower-cased, except capital codes (ALL, TOP, RE) which only match as written."""
    return value if _is_code(value) else value.lower()


# Country names are recognised as babel writes them in these languages: the reply languages (bot.i18n.LANGUAGES;
# a test keeps the two together, nlu cannot import bot).
COUNTRY_NAME_LANGUAGES = ("en", "zh", "es", "ja")


def _country_tables() -> tuple[dict[str, str], dict[str, str]]:
    from babel import Locale

    names: dict[str, str] = {}
    codes: dict[str, str] = {}
    for locale in COUNTRY_NAME_LANGUAGES:
        for code, name in Locale(locale).territories.items():
            if len(code) == 2 and code.isalpha() and code not in ("ZZ", "EU", "UN", "EZ", "QO"):
                names[name.lower()] = code
                if code not in _AMBIGUOUS_COUNTRY_CODES:
                    codes[code] = code
    names.update(COUNTRY_ALIASES)
    codes["UK"] = "GB"
    return names, codes


class EntityExtractor:
    """Finds entities in one message; lookup tables may be replaced at runtime (e.g. from the catalog)."""

    def __init__(self, training: TrainingData | None = None) -> None:
        self._lock = threading.Lock()
        self._training_regexes: list[tuple[str, re.Pattern[str]]] = []
        self._synonyms: dict[str, str] = {}
        self._training_tables: dict[str, dict[str, str]] = {}
        self._runtime_tables: dict[str, dict[str, str]] = {}
        self._gazetteers: dict[str, _Gazetteer] = {}
        if training is not None:
            self.use_training_data(training)
        else:
            self._rebuild()

    # ---------- configuration ----------
    def use_training_data(self, training: TrainingData) -> None:
        synonyms = dict(training.synonyms)
        tables: dict[str, dict[str, str]] = {}
        for name, values in training.lookups.items():
            table = tables.setdefault(name, {})
            for value in values:
                table[_table_key(value)] = synonyms.get(value.lower(), value)
        for name, surfaces in training.entity_vocabulary().items():
            if name in PATTERN_ENTITIES:
                continue
            table = tables.setdefault(name, {})
            for surface in surfaces:
                table.setdefault(surface.lower(), synonyms.get(surface.lower(), surface))
        # A synonym's surface form counts as an entity wherever its canonical value does.
        for table in tables.values():
            known = {value.lower() for value in table.values()} | {key.lower() for key in table}
            for surface, canonical in synonyms.items():
                # Short codes ("re", "it") only come from lookups, written in capitals.
                if canonical.lower() in known and not (len(surface) <= 3 and surface.isascii()):
                    table.setdefault(surface, canonical)
        regexes = []
        for name, patterns in training.regexes.items():
            for pattern in patterns:
                regexes.append((name, re.compile(pattern)))
        with self._lock:
            self._synonyms = synonyms
            self._training_tables = tables
            self._training_regexes = regexes
        self._rebuild()

    def set_lookup(self, entity: str, values: Iterable[str] | Mapping[str, str]) -> None:
        """Replace the runtime lookup table of `entity` (e.g. product or category names from the catalog).

        A mapping gives surface form -> canonical value; plain values are their own canonical value.
        """
        pairs = values.items() if isinstance(values, Mapping) else ((v, v) for v in values)
        table = {surface.strip().lower(): canonical for surface, canonical in pairs if surface and surface.strip()}
        with self._lock:
            self._runtime_tables[entity] = table
        self._rebuild()

    def add_synonyms(self, synonyms: Mapping[str, str]) -> None:
        with self._lock:
            self._synonyms.update({k.lower(): v for k, v in synonyms.items()})
        self._rebuild()

    def lookup_names(self) -> list[str]:
        return sorted(self._gazetteers)

    def _rebuild(self) -> None:
        with self._lock:
            gazetteers: dict[str, _Gazetteer] = {}
            country_names, country_codes = _country_tables()
            gazetteers["country"] = _Gazetteer("country", dict(country_names), dict(country_codes), plural=False)
            currency = dict(CURRENCY_WORDS)
            currency.update({code.lower(): ("CNY" if code == "RMB" else code) for code in CURRENCY_CODES
                             if code not in _CASE_SENSITIVE_CODES})
            gazetteers["currency"] = _Gazetteer(
                "currency", currency, {code: code for code in _CASE_SENSITIVE_CODES}, plural=False
            )
            gazetteers["colour"] = _Gazetteer("colour", dict(COLOURS), plural=False)
            gazetteers["size"] = _Gazetteer("size", dict(SIZE_WORDS), dict(SIZE_LETTERS), plural=False)
            for source in (self._training_tables, self._runtime_tables):
                for name, table in source.items():
                    gazetteer = gazetteers.setdefault(name, _Gazetteer(name))
                    for surface, canonical in table.items():
                        if _is_code(surface):
                            gazetteer.exact_case[surface] = canonical
                        elif len(surface) == 1 and not surface.isascii() and name != "size":
                            continue  # 块, 鞋 alone are parts of other words (凉鞋); with an amount 块 is money
                        elif name == "size" and len(surface) == 1:
                            gazetteer.exact_case[surface.upper()] = canonical.upper()
                        elif name == "country" and len(surface) == 2 and surface.upper() in _AMBIGUOUS_COUNTRY_CODES:
                            gazetteer.exact_case[surface.upper()] = canonical
                        elif source is self._runtime_tables:
                            gazetteer.entries[surface] = canonical
                        else:
                            # Built-in canonical values (red for 红色) win over raw training annotations.
                            gazetteer.entries.setdefault(surface, canonical)
            self._gazetteers = gazetteers

    # ---------- extraction ----------
    def extract(self, text: str, *, language: str = "en") -> list[Entity]:
        candidates = self._pattern_candidates(text, language=language)
        with self._lock:
            gazetteers = list(self._gazetteers.values())
            training_regexes = list(self._training_regexes)
            synonyms = self._synonyms
        for gazetteer in gazetteers:
            for start, end, value in gazetteer.find(text):
                candidates.append(Entity(gazetteer.entity, value, start, end, text[start:end],
                                         extractor=LOOKUP_EXTRACTOR))
        for name, pattern in training_regexes:
            for match in pattern.finditer(text):
                if match.end() > match.start():
                    candidates.append(Entity(name, match.group(0), match.start(), match.end(), match.group(0)))
        chosen = _resolve_overlaps(candidates)
        return [_apply_synonym(entity, synonyms) for entity in chosen]

    def _pattern_candidates(self, text: str, *, language: str) -> list[Entity]:
        patterns = _patterns()
        found: list[Entity] = []
        for match in patterns["email"].finditer(text):
            found.append(Entity("email", match.group(0), match.start(), match.end(), match.group(0)))
        for key in ("order_hash", "order_word"):
            for match in patterns[key].finditer(text):
                start = match.start(1)
                if key == "order_word" and start > 0 and text[start - 1] == "#":
                    start -= 1
                if key == "order_hash":
                    start = match.start()
                found.append(Entity("order_number", match.group(1), start, match.end(1), text[start:match.end(1)]))
        for key in ("money_prefix", "money_suffix"):
            for match in patterns[key].finditer(text):
                amount = _decimal_text(match.group("amt"))
                if amount is None:
                    continue
                found.append(Entity("money", {"amount": amount, "currency": _currency_of(match.group("cur"), text)},
                                    match.start(), match.end(), match.group(0)))
        for match in patterns["phone"].finditer(text):
            raw = match.group(0)
            digits = re.sub(r"\D", "", raw)
            if not 7 <= len(digits) <= 15:
                continue
            context = text[max(0, match.start() - 25):match.start()]
            formatted = raw.startswith(("+", "00")) or bool(re.search(r"\d[ \-]\d", raw))
            cn_mobile = bool(re.fullmatch(r"1[3-9]\d{9}", digits))
            if not (formatted or cn_mobile or patterns["phone_context"].search(context)):
                continue
            if not formatted and not cn_mobile and len(digits) < 8:
                continue
            value = ("+" if raw.startswith("+") else "") + digits
            found.append(Entity("phone", value, match.start(), match.end(), raw))
        for match in patterns["size_prefixed"].finditer(text):
            raw = match.group("v")
            canonical = raw.upper() if raw.isalpha() or raw[-1:].isalpha() else re.sub(r"\s+", " ", raw.upper())
            found.append(Entity("size", canonical, match.start("v"), match.end("v"), raw))
        for key in ("size_system", "size_waist"):
            for match in patterns[key].finditer(text):
                raw = match.group(0)
                found.append(Entity("size", re.sub(r"(?<=[A-Z])\s?(?=\d)", " " if key == "size_system" else "",
                                                   raw.upper()), match.start(), match.end(), raw))
        for match in patterns["size_cn"].finditer(text):
            found.append(Entity("size", match.group(1), match.start(), match.end(), match.group(0)))
        for match in patterns["quantity_digits"].finditer(text):
            number = int(match.group(1))
            if 0 < number < 1000:
                found.append(Entity("quantity", number, match.start(1), match.end(1), match.group(1), confidence=0.8))
        for match in patterns["quantity_cn"].finditer(text):
            cn_number = _cn_number(match.group(2))
            if cn_number:
                # As the shop's annotations have it: "两个" with its measure word, "4" without.
                group = 2 if match.group(2).isdigit() else 1
                found.append(Entity("quantity", cn_number, match.start(group), match.end(group), match.group(group),
                                    confidence=0.9))
        for match in patterns["quantity_words"].finditer(text):
            word = match.group(1).lower()
            number = NUMBER_WORDS.get(word, 1 if word == "one" else 0)
            if word == "one" and match.start(1) == match.start():
                continue
            if number:
                found.append(Entity("quantity", number, match.start(1), match.end(1), match.group(1), confidence=0.9))
        return found


def _currency_of(raw: str, text: str) -> str:
    key = raw.lower()
    code = _MONEY_PREFIX.get(key) or _MONEY_SUFFIX.get(key) or raw.upper()
    if code == "RMB":
        return "CNY"
    if code == "¥":
        # The shop's convention: a bare ¥ is the yuan; the yen is written JP¥, 円 or 日元.
        return "CNY"
    return code


def _resolve_overlaps(candidates: list[Entity]) -> list[Entity]:
    ordered = sorted(
        candidates,
        key=lambda e: (_PRIORITY.get(e.entity, _DEFAULT_PRIORITY), -(e.end - e.start), e.start),
    )
    taken: list[Entity] = []
    for candidate in ordered:
        if candidate.end <= candidate.start:
            continue
        if any(candidate.start < kept.end and kept.start < candidate.end for kept in taken):
            continue
        taken.append(candidate)
    return sorted(taken, key=lambda e: (e.start, e.end))


def _apply_synonym(entity: Entity, synonyms: Mapping[str, str]) -> Entity:
    if not isinstance(entity.value, str):
        return entity
    canonical = synonyms.get(entity.value.lower()) or synonyms.get(entity.text.lower())
    if canonical is None or canonical == entity.value:
        return entity
    return Entity(entity.entity, canonical, entity.start, entity.end, entity.text, entity.confidence,
                  entity.extractor, (*entity.processors, SYNONYM_PROCESSOR))
