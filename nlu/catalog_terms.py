"""The shop's own words as NLU evidence: a message made of what the catalog sells (a tag, a category, a brand,
a product's title words, in any language) means products, whatever the classifier says about greetings.

`CatalogVocabulary(terms)` is built from `commerce.catalog.service.catalog_vocabulary` (nlu cannot import
commerce: the bot hands the words over); `evidence(text)` says which terms a message names and what share of
its content words they cover; `reread(...)` turns a social reading ("tea" read as goodbye) into a product one.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from kit.text import jieba_words

_LATIN_WORD = re.compile(r"[a-z0-9\u00c0-\u024f]+(?:['’][a-z]+)?")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
# Words that carry no product meaning in a shopping message: function words and shopping fillers.
STOP_WORDS = frozenset("""
a an the and or of to in on at for with from by about is are am be was were do does did have has had got get
i me my we our you your u it its this that these those there here any some all what which who how much many
please pls plz want wanna need looking look search find show see buy sell sells selling carry stock stocked
would could can like something anything one ones just also more too very really maybe
""".split())
# Social words never count as product words, even when a product title happens to contain them.
SOCIAL_WORDS = frozenset("""
hi hello hey hiya yo thanks thank thx ty bye goodbye cheers ok okay yes yeah yep no nope nah good great nice
cool perfect awesome sure fine morning evening night welcome sorry
""".split())
# CJK characters that are grammar or shopping fillers ("有电水壶吗": 有 and 吗 say nothing about the product).
CJK_STOP = frozenset("有没吗呢吧啊呀的了我你您们要想买卖请帮找看这那个款件什么哪些一下"
                     "不是在和与还也都么嘛给能可以多少")
# Intents a product word overrides: the classifier's reading of a bare noun as small talk or noise.
SOCIAL_INTENTS = frozenset({"greet", "goodbye", "thanks", "affirm", "deny", "out_of_scope", "nlu_fallback",
                            "help", "bot_challenge", "chitchat", "mood_great", "mood_unhappy"})
# The knowledge base's reading is overridden only when the message is all product words.
FAQ_INTENTS = frozenset({"faq"})
PRODUCT_INTENT = "product_search"
SOCIAL_COVERAGE = 0.5
FAQ_COVERAGE = 1.0
# A misspelt catalog word ("kettel", "sunscrean") counts in a short message only (at most this many content words,
# each of at least TYPO_MIN_LETTERS letters): one letter added, dropped, changed or two swapped.
TYPO_MAX_WORDS = 2
TYPO_MIN_LETTERS = 5


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def one_typo_apart(a: str, b: str) -> bool:
    """Whether two different words are one edit apart (insertion, deletion, substitution, adjacent swap)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return shorter in _deletions(longer)


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _latin_tokens(text: str) -> list[tuple[str, int, int]]:
    return [(_stem(m.group()), m.start(), m.end()) for m in _LATIN_WORD.finditer(text.lower())]


@dataclass(frozen=True)
class CatalogMatch:
    term: str  # the words of the message that the catalog uses
    start: int
    end: int


@dataclass(frozen=True)
class CatalogEvidence:
    matches: tuple[CatalogMatch, ...]
    coverage: float  # share of the message's content words (CJK: characters) that are catalog words

    @property
    def names_products(self) -> bool:
        return bool(self.matches)


NO_EVIDENCE = CatalogEvidence((), 0.0)


class CatalogVocabulary:
    """Latin terms as stemmed word sequences; CJK terms as their bigrams (and single characters that are words
    of their own in the catalog, e.g. 茶 in a category name)."""

    def __init__(self, terms: Iterable[str], *, names: Iterable[str] = ()) -> None:
        """`names`: whole names (merchant synonyms such as 充电宝) whose pieces name nothing alone: jieba's lone
        characters of them (宝) are not catalog words (支付宝 is not a product)."""
        self._phrases: set[tuple[str, ...]] = set()
        self._bigrams: set[str] = set()
        self._cjk_chars: set[str] = set()
        longest = 1
        cjk_runs: set[str] = set()
        names = list(names)
        whole = {run for name in names for run in _CJK_RUN.findall(name)}
        for term in [*terms, *names]:
            words = tuple(w for w, _, _ in _latin_tokens(term))
            if words and not (len(words) == 1 and (words[0] in STOP_WORDS or words[0] in SOCIAL_WORDS
                                                    or len(words[0]) < 2 or words[0].isdigit())):
                self._phrases.add(words)
                longest = max(longest, len(words))
            for run in _CJK_RUN.findall(term):
                cjk_runs.add(run)
                self._bigrams.update(run[i:i + 2] for i in range(len(run) - 1))
                if len(run) == 1 and run not in CJK_STOP:
                    self._cjk_chars.add(run)
        # A character that is a word of its own in the catalog's text (茶 in "龙井 茶") names products alone.
        for run in cjk_runs - whole:
            if len(run) > 1:
                self._cjk_chars.update(w for w in jieba_words(run) if len(w) == 1 and w not in CJK_STOP)
        self._longest = min(longest, 6)
        # Single catalog words by their one-letter deletions, to find a misspelling's word (symspell's idea).
        self._near: dict[str, set[str]] = {}
        for phrase in self._phrases:
            if len(phrase) == 1 and len(phrase[0]) >= TYPO_MIN_LETTERS and phrase[0].isalpha():
                for key in {phrase[0], *_deletions(phrase[0])}:
                    self._near.setdefault(key, set()).add(phrase[0])

    def correction(self, word: str) -> str | None:
        """The one catalog word a misspelt `word` is one typo away from; None when none or several are."""
        if len(word) < TYPO_MIN_LETTERS or not word.isalpha() or word in STOP_WORDS or word in SOCIAL_WORDS:
            return None
        found = {w for key in {word, *_deletions(word)} for w in self._near.get(key, ())
                 if one_typo_apart(word, w)}
        return found.pop() if len(found) == 1 else None

    def __len__(self) -> int:
        return len(self._phrases) + len(self._bigrams) + len(self._cjk_chars)

    def evidence(self, text: str) -> CatalogEvidence:
        """The catalog words a message names and the share of its content it covers."""
        if not text.strip() or not len(self):
            return NO_EVIDENCE
        matches: list[CatalogMatch] = []
        content = covered = 0
        tokens = _latin_tokens(text)
        short = sum(1 for w, _, _ in tokens if w not in STOP_WORDS) <= TYPO_MAX_WORDS
        i = 0
        while i < len(tokens):
            for n in range(min(self._longest, len(tokens) - i), 0, -1):
                words = tuple(w for w, _, _ in tokens[i:i + n])
                if words in self._phrases:
                    start, end = tokens[i][1], tokens[i + n - 1][2]
                    matches.append(CatalogMatch(text[start:end], start, end))
                    counted = sum(1 for w in words if w not in STOP_WORDS)
                    content += counted
                    covered += counted
                    i += n
                    break
            else:
                if tokens[i][0] not in STOP_WORDS:
                    content += 1
                    if short and self.correction(tokens[i][0]) is not None:  # "kettel": the kettle
                        start, end = tokens[i][1], tokens[i][2]
                        matches.append(CatalogMatch(text[start:end], start, end))
                        covered += 1
                i += 1
        for run in _CJK_RUN.finditer(text):
            chars = run.group()
            hit = [False] * len(chars)
            for k in range(len(chars) - 1):
                if chars[k:k + 2] in self._bigrams:
                    hit[k] = hit[k + 1] = True
            for k, char in enumerate(chars):
                if char in self._cjk_chars:
                    hit[k] = True
            k = 0
            while k < len(chars):  # each covered stretch is one match
                if hit[k]:
                    end = k
                    while end < len(chars) and hit[end]:
                        end += 1
                    if any(c not in CJK_STOP for c in chars[k:end]):
                        matches.append(CatalogMatch(chars[k:end], run.start() + k, run.start() + end))
                    k = end
                else:
                    k += 1
            for k, char in enumerate(chars):
                if char in CJK_STOP and not hit[k]:
                    continue
                content += 1
                covered += hit[k]
        if not matches:
            return CatalogEvidence((), 0.0)
        return CatalogEvidence(tuple(matches), covered / content if content else 1.0)


def rereads_as_products(intent: str, evidence: CatalogEvidence, *, labels: Iterable[str]) -> bool:
    """Whether a message the classifier read as `intent` means the catalog's products instead: it names them,
    they are most of what it says, the reading was small talk or noise, and the model knows product search."""
    if not evidence.names_products or PRODUCT_INTENT not in set(labels):
        return False
    if intent in SOCIAL_INTENTS:
        return evidence.coverage >= SOCIAL_COVERAGE
    if intent in FAQ_INTENTS:
        return evidence.coverage >= FAQ_COVERAGE
    return False
