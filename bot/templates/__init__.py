"""Reply templates per locale (English, Simplified Chinese); skills pick a key, never write reply text."""
from __future__ import annotations

from string import Formatter
from typing import Any

from bot.templates.en import TEMPLATES as EN
from bot.templates.zh import TEMPLATES as ZH

LOCALES: dict[str, dict[str, str]] = {"en": EN, "zh": ZH}
DEFAULT_LOCALE = "en"


def supported_locale(value: str | None) -> str | None:
    """'zh-hans', 'zh_CN', 'zh' -> 'zh'; 'en-GB' -> 'en'; None for a language we have no templates in."""
    if not value:
        return None
    base = value.strip().lower().replace("_", "-").split("-", 1)[0]
    return base if base in LOCALES else None


def render(locale: str, key: str, **values: Any) -> str:
    """The template `key` in `locale` (English when missing), filled with `values`."""
    table = LOCALES.get(locale, EN)
    template = table.get(key) or EN[key]
    return template.format(**values)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name}
