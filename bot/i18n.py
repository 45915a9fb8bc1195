"""Every reply text: gettext catalogs (bot/locales/<lang>/LC_MESSAGES/shoptalk.po) read through babel at first use.

Skills pick a key, never write reply text. A msgid is the key ("cart_added"), the msgstr the text with
`str.format` placeholders; an entry with plural forms is asked for with `n=` (the count that picks the form).
The .po files are compiled in memory when first needed, so there is no compiled file to go stale.
"""
from __future__ import annotations

import gettext
from datetime import date, datetime
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from io import BytesIO
from string import Formatter
from typing import Any

from babel import Locale
from babel.dates import format_date, format_skeleton
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from commerce.money import format_money
from kit.errors import Message, Money, ShopTalkError

LANGUAGES = ("en", "zh", "es", "ja")  # the reply languages; each has a catalog in bot/locales
DEFAULT_LOCALE = "en"
DOMAIN = "shoptalk"
# The babel locale of a reply language when its bare code is not the one to format with.
_BABEL_LOCALES = {"en": "en_US", "zh": "zh_Hans_CN"}


class _Missing(gettext.NullTranslations):
    """The end of every fallback chain: a key no catalog has is a bug, not a text."""

    def gettext(self, message: str) -> str:
        raise KeyError(message)

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        raise KeyError(msgid1)


def catalog_path(language: str) -> Traversable:
    return files("bot") / "locales" / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(language: str) -> Catalog:
    with catalog_path(language).open("rb") as po:
        return read_po(po, locale=language, domain=DOMAIN)


@cache
def _translations() -> dict[str, tuple[gettext.GNUTranslations, frozenset[str]]]:
    """Each language's compiled catalog (falling back to English, then to KeyError) and the keys it has."""
    loaded: dict[str, tuple[gettext.GNUTranslations, frozenset[str]]] = {}
    for language in (DEFAULT_LOCALE, *(code for code in LANGUAGES if code != DEFAULT_LOCALE)):
        catalog = read_catalog(language)
        compiled = BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        translations = gettext.GNUTranslations(compiled)
        translations.add_fallback(loaded[DEFAULT_LOCALE][0] if loaded else _Missing())
        keys = frozenset(m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and not m.fuzzy)
        loaded[language] = translations, keys
    return loaded


@cache
def _plural_keys() -> frozenset[str]:
    return frozenset(m.id[0] for m in read_catalog(DEFAULT_LOCALE) if m.pluralizable)


def supported_locale(value: str | None) -> str | None:
    """'zh-hans', 'zh_CN', 'zh' -> 'zh'; 'en-GB' -> 'en'; None for a language we have no catalog in."""
    if not value:
        return None
    base = value.strip().lower().replace("_", "-").split("-", 1)[0]
    return base if base in LANGUAGES else None


def t(locale: str | None, key: str, /, *, n: int | None = None, **values: Any) -> str:
    """The text `key` in `locale` (English when the language or the key is missing there), filled with `values`;
    `n` picks the plural form of an entry that has them."""
    loaded = _translations()
    translations = (loaded.get(locale or DEFAULT_LOCALE) or loaded[supported_locale(locale) or DEFAULT_LOCALE])[0]
    if n is None and key in _plural_keys():
        raise TypeError(f"{key!r} has plural forms: say which with n=")
    text = translations.gettext(key) if n is None else translations.ngettext(key, key, n)
    return text.format(**values)


def render(locale: str | None, message: Message) -> str:
    """A domain error's (or any) Message in `locale`: its Money values written the locale's way, nested Messages
    rendered in the same language."""
    language = supported_locale(locale) or DEFAULT_LOCALE
    values = {name: _value(language, value) for name, value in message.values.items()}
    return t(language, message.key, **values)


def _value(language: str, value: Any) -> Any:
    if isinstance(value, Money):
        return format_money(value.amount, value.currency, language)
    if isinstance(value, Message):
        return render(language, value)
    return value


def error_text(locale: str | None, error: ShopTalkError) -> str:
    """What a reader of `locale` is told of `error`: its Message in their language, else its (English) detail."""
    return render(locale, error.message) if error.message is not None else error.detail


def template(locale: str | None, key: str) -> str:
    """The text `key` in `locale` (English when missing there) with its {placeholders} left as they are: for a page
    whose script fills them (the agent console)."""
    loaded = _translations()
    translations = (loaded.get(locale or DEFAULT_LOCALE) or loaded[supported_locale(locale) or DEFAULT_LOCALE])[0]
    return translations.gettext(key)


def keys_with_prefix(prefix: str) -> list[str]:
    """The English catalog's keys starting with `prefix` (a page's own words, e.g. "console."), sorted."""
    return sorted(key for key in _translations()[DEFAULT_LOCALE][1] if key.startswith(prefix))


def has_text(locale: str, key: str) -> bool:
    """Whether `locale`'s own catalog has `key` (no fallback to English)."""
    entry = _translations().get(locale)
    return entry is not None and key in entry[1]


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}


def babel_locale(locale: str) -> str:
    """The babel locale that formats dates, money and country names for a reply language."""
    return _BABEL_LOCALES.get(locale, locale)


def country_name(locale: str, code: str) -> str:
    return str(Locale.parse(babel_locale(locale)).territories.get(code.upper(), code.upper()))


def format_weekday_time(locale: str, when: datetime) -> str:
    """Weekday and time of day in `when`'s own time zone, written the locale's way ('Mon 09:00', '周一09:00')."""
    return str(format_skeleton("EHm", when, tzinfo=when.tzinfo, locale=babel_locale(locale)))


def format_day(locale: str, when: date) -> str:
    """A calendar date the locale's way ('Dec 7, 2026', '2026年12月7日', '7 dic 2026')."""
    return str(format_date(when, format="medium", locale=babel_locale(locale)))


def language_name(locale: str, code: str) -> str:
    """The name of language `code` written in reply language `locale` ('en' in zh: '英语')."""
    base = code.strip().lower().replace("_", "-").split("-", 1)[0]
    try:
        name = Locale.parse(base).get_display_name(babel_locale(locale))
    except (ValueError, TypeError):
        return code
    return str(name) if name else code


def other_language_notice(shopper_language: str | None, assistant_language: str) -> str | None:
    """The line telling a shopper that the assistant answers in `assistant_language`, written in the shopper's
    language when a catalog for it exists (English otherwise); None when the languages match or the shopper's
    language is unknown."""
    assistant = (assistant_language or DEFAULT_LOCALE).strip().lower().replace("_", "-").split("-", 1)[0]
    shopper = (shopper_language or "").strip().lower().replace("_", "-").split("-", 1)[0]
    if not shopper or shopper == assistant:
        return None
    locale = supported_locale(shopper) or DEFAULT_LOCALE
    return t(locale, "reply.other_language", language=language_name(locale, assistant))
