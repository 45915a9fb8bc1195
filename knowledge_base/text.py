"""Text rules of the FAQ: question keys for duplicates, tokens for BM25, safe answer formatting."""
from __future__ import annotations

import re

from kit.text import Tokenizer, fold, suffix_stem
from knowledge_base.errors import InvalidFaqEntry

MAX_QUESTION_CHARS = 500
MAX_ANSWER_CHARS = 5_000
MAX_QUESTIONS = 20
LANGUAGES = ("en", "zh")

_HTML_TAG = re.compile(r"<\s*/?\s*[a-zA-Z!][^>]*>")
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]*)\)")
_BARE_URL_SCHEME = re.compile(r"\b(javascript|data|vbscript)\s*:", re.IGNORECASE)
_SAFE_SCHEMES = ("https://", "http://", "mailto:")
_TRAILING = " \t\r\n?!.,;:。？！，；：…"

_EN_STOPWORDS = frozenset(
    "a an the is are was were be been am do does did i me my we our you your it its to of in on at for "
    "and or can could would should will shall how what when where which who whom why this that these "
    "those there here with by from as if so any some please hi hello".split()
)
_ZH_STOPWORDS = frozenset(
    "的 了 吗 呢 吧 啊 我 我们 你 你们 是 在 有 可以 能 能否 会 请问 请 "
    "怎么 如何 什么 多少 哪些 一下 么 呀 和 与 或 嘛".split()
)


# BM25 terms: stemmed English words and jieba search-mode words of Chinese, stop words dropped everywhere.
tokens = Tokenizer(words=re.compile(r"[a-z0-9]+(?:'[a-z]+)?"), stem=suffix_stem, stopwords=_EN_STOPWORDS,
                   cjk_stopwords=_ZH_STOPWORDS, normalise=fold, stop_in_documents=True, segment="text")


def question_key(text: str) -> str:
    """What makes two questions the same: case, width, spacing and end punctuation ignored."""
    return " ".join(fold(text).split()).strip(_TRAILING)[:MAX_QUESTION_CHARS]


def clean_questions(questions: list[str]) -> list[str]:
    """Stripped, non-empty, de-duplicated phrasings; refuses an entry without any."""
    seen: set[str] = set()
    out: list[str] = []
    for raw in questions:
        text = " ".join(str(raw).split())
        if not text:
            continue
        if len(text) > MAX_QUESTION_CHARS:
            raise InvalidFaqEntry(f"A question is longer than {MAX_QUESTION_CHARS} characters.",
                                  code="question_too_long")
        if _HTML_TAG.search(text):
            raise InvalidFaqEntry("Questions are plain text; HTML tags are not allowed.", code="question_contains_html")
        key = question_key(text)
        if key and key not in seen:
            seen.add(key)
            out.append(text)
    if not out:
        raise InvalidFaqEntry("An entry needs at least one question.", code="missing_question")
    if len(out) > MAX_QUESTIONS:
        raise InvalidFaqEntry(f"An entry has at most {MAX_QUESTIONS} question phrasings.", code="too_many_questions")
    return out


def clean_answer(answer: str) -> str:
    """Plain text with **bold**, *italic*, '- ' lists and [links](https://...); never HTML."""
    text = str(answer).replace("\r\n", "\n").strip()
    if not text:
        raise InvalidFaqEntry("The answer is empty.", code="empty_answer")
    if len(text) > MAX_ANSWER_CHARS:
        raise InvalidFaqEntry(f"The answer is longer than {MAX_ANSWER_CHARS} characters.", code="answer_too_long")
    if _HTML_TAG.search(text):
        raise InvalidFaqEntry("Answers are plain text with simple formatting; HTML tags such as <script> are "
                              "not allowed.", code="answer_contains_html")
    if _BARE_URL_SCHEME.search(text):
        raise InvalidFaqEntry("Links must start with https://, http:// or mailto:.", code="unsafe_link")
    for _label, target in _LINK.findall(text):
        if not target.lower().startswith(_SAFE_SCHEMES):
            raise InvalidFaqEntry("Links must start with https://, http:// or mailto:.", code="unsafe_link")
    return text


def clean_codes(values: list[str], *, what: str, upper: bool) -> list[str]:
    """Country codes (ISO 3166 alpha-2, upper) or channel / tag names (lower), de-duplicated."""
    out: list[str] = []
    for raw in values:
        value = str(raw).strip()
        if not value:
            continue
        value = value.upper() if upper else value.lower()
        if upper and not re.fullmatch(r"[A-Z]{2}", value):
            raise InvalidFaqEntry(f"{value!r} is not a two-letter country code.", code="invalid_country")
        if not upper and not re.fullmatch(r"[\w\-. ]{1,40}", value):
            raise InvalidFaqEntry(f"{value!r} is not a valid {what}.", code=f"invalid_{what}")
        if value not in out:
            out.append(value)
    return out


def clean_language(language: str) -> str:
    value = str(language).strip().lower().replace("_", "-")
    value = {"zh-cn": "zh", "zh-hans": "zh", "en-us": "en", "en-gb": "en"}.get(value, value)
    if value not in LANGUAGES:
        raise InvalidFaqEntry(f"Language {language!r} is not supported; use one of {', '.join(LANGUAGES)}.",
                              code="unsupported_language")
    return value
