"""Message language from its script: Han characters mean Chinese, Latin words English."""

from __future__ import annotations

import re

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")


def detect_language(text: str, *, default: str = "en") -> str:
    """'zh', 'ja', 'ko' or 'en'; `default` when the text has no letters (empty, digits, emoji)."""
    sample = text[:2_000]
    han = len(_HAN.findall(sample))
    kana = len(_KANA.findall(sample))
    hangul = len(_HANGUL.findall(sample))
    latin_words = len(_LATIN_WORD.findall(sample))
    if kana and kana + han >= latin_words:
        return "ja"
    if hangul and hangul >= latin_words:
        return "ko"
    # One Han character carries about as much as one Latin word.
    if han and han >= latin_words:
        return "zh"
    if latin_words:
        return "en"
    return default
