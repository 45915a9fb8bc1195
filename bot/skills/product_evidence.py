"""The general evidence for a product question the structured answers (options, sizes, colours, price, stock,
weight) do not cover: the passage of the listing that speaks to what is asked (a description sentence, the title,
a tag, an option's name and values, the category), found by meaning with the served multilingual encoder (the USE
part of the NLU's rows; no second model) and by the words the question shares with the listing, in en and zh.

A passage is evidence only when its score clears `ANSWER_AT` (calibrated on bench/data/product_qa.json alone;
docs/experiments.md): meaning alone is not enough, since "is the kettle loud?" is close in meaning to every kettle
sentence; a shared word alone is not enough either ("does it work with an ipad" shares "work"). Yes or no is said
only when the passage states what is asked plainly (`plain_answer`), else the passage is quoted for the shopper
to judge.
"""
from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Encoder = Callable[[Sequence[str]], npt.NDArray[np.float32]]

_LATIN = re.compile(r"[a-z0-9][a-z0-9+\-']*")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|(?<=[。！？；])")
_USE_FROM = 384  # the USE part of an NLU row (nlu.embedder.MINILM_DIM): en and zh share its space
_USE_DIM = 512

# Calibrated on bench/data/product_qa.json alone (docs/experiments.md, "General evidence"): a passage answers when
# it holds at least SHARED_AT of the asked words (weighted) and meaning + LEXICAL_WEIGHT x shared >= ANSWER_AT (the
# highest line that loses no tuning question). Meaning alone never answered a tuning question that shared words did
# not, and reached 0.6 on must-refuse ones ("is the gooseneck kettle loud" against the tag "gooseneck"): no rule
# answers on meaning alone; meaning ranks the passages and holds weak word matches back.
LEXICAL_WEIGHT = 0.5
SHARED_AT = 0.3
ANSWER_AT = 0.45

# Words that negate what follows within a few words ("not dishwasher safe", "不防水", "无需").
_NEGATION_EN = re.compile(r"\b(not|no|never|without|isn't|aren't|doesn't|don't|cannot|can't|won't)\b", re.IGNORECASE)
_NEGATION_ZH = re.compile(r"不|没|无|非|勿|禁止|请勿")
# A question that wants a yes or a no (en first word; zh final particle or A-not-A).
_YES_NO = re.compile(r"^\s*(is|are|does|do|can|could|will|would|has|have|should)\b|[吗么][\s？?。]*$|(.)不\1|"
                     r"是不是|能不能|会不会|可不可以|[不没][\s？?。]*$|(?<![讨征步砍采])伐[\s？?。]*$", re.IGNORECASE)


# A question asking for a figure ("how long is the strap", "保质期多久"): only a passage with a figure answers it.
_WANTS_FIGURE = re.compile(r"\bhow (long|many|much|big|tall|wide|heavy|far|often|old)\b|\bwhat (size|age)\b|"
                           r"多少|多久|多大|多长|多高|多宽|多重|几", re.IGNORECASE)
_FIGURE = re.compile(r"\d|[一二两三四五六七八九十百千万半]")


@dataclass(frozen=True)
class Passage:
    field: str  # description, title, tags, category, variants.<attribute>
    text: str


@dataclass(frozen=True)
class Evidence:
    passage: Passage
    score: float
    meaning: float
    shared: float  # the weighted share of asked words the passage contains (0..1)
    plain: bool | None  # True: states it plainly; False: states its negation plainly; None: let the shopper judge


def passages(*, title: dict[str, str], description: dict[str, str], tags: Sequence[str],
             options: dict[str, list[str]], category: dict[str, str], language: str) -> list[Passage]:
    """The listing cut into citable passages, in the shopper's language where the field has it (title,
    description and category exist in en and zh; tags and option values in the catalog's language only)."""
    def in_language(texts: dict[str, str]) -> str:
        return texts.get(language) or texts.get("en") or next(iter(texts.values()), "")

    found = [Passage("description", s.strip()) for s in _SENTENCE.split(in_language(description)) if s.strip()]
    if text := in_language(title):
        found.append(Passage("title", text))
    found += [Passage("tags", tag) for tag in tags if tag]
    found += [Passage(f"variants.{name}", f"{name}: {', '.join(values)}") for name, values in options.items()]
    if text := in_language(category):
        found.append(Passage("category", text))
    return found


def _stem(word: str) -> str:
    for ending in ("ing", "ed", "es", "s", "y"):
        if word.endswith(ending) and len(word) - len(ending) >= 4:
            return word[: -len(ending)]
    return word


def _word_pattern(word: str) -> re.Pattern[str]:
    if _CJK.search(word):
        return re.compile(re.escape(word))
    # A stem, also negated or prefixed in the listing ("scented" / "unscented", "shrink" / "pre-shrunk" is not).
    return re.compile(rf"\b(?:un|non-?|pre-?)?{re.escape(_stem(word))}", re.IGNORECASE)


def asked_terms(words: Sequence[str]) -> list[str]:
    """The asked words as the lexical evidence looks for them: English words of three letters or more, and
    Chinese words of two characters or more (a shorter word inside a longer one, as jieba's search mode gives both,
    is only a part of that word: `shared_share`)."""
    terms = [w.lower() for w in words if (_CJK.search(w) and len(w) > 1) or (not _CJK.search(w) and len(w) > 2)]
    return list(dict.fromkeys(terms))


def _weight(term: str) -> int:
    return min(2 * len(term), 6) if _CJK.search(term) else min(len(term), 6)


def shared_share(terms: Sequence[str], text: str, *, whole_words: bool = False) -> float:
    """The weighted share of the asked words `text` contains, a longer word weighing more. A Chinese word found
    only through a shorter word inside it (咖啡 of 咖啡因) counts half, and not at all with `whole_words` (a tag,
    the title or the category name: "茶叶与咖啡" does not speak to caffeine)."""
    if not terms:
        return 0.0
    # Words inside a longer asked word are parts of it, not words of their own.
    heads = [t for t in terms if not any(t != o and t in o for o in terms)]
    total = hit = 0.0
    for head in heads:
        weight = _weight(head)
        total += weight
        if _word_pattern(head).search(text):
            hit += weight
        elif not whole_words and any(t != head and t in head and _word_pattern(t).search(text) for t in terms):
            hit += weight / 2
    return hit / total if total else 0.0


class PassageVectors:
    """USE vectors of listing passages, kept by text (a listing's passages are encoded once per process)."""

    def __init__(self, encoder: Encoder, *, keep: int = 4096) -> None:
        self._encoder = encoder
        self._keep = keep
        self._rows: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, texts: Sequence[str], *, fresh: Sequence[str] = ()) -> tuple[npt.NDArray[np.float32], ...]:
        """Unit USE rows of `fresh` (not kept: the question) then of `texts` (kept), in one forward pass."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._rows]
        rows = _use_rows(self._encoder([*fresh, *missing])) if fresh or missing else np.zeros((0, 1), np.float32)
        with self._lock:
            for text, row in zip(missing, rows[len(fresh):], strict=True):
                self._rows[text] = row
            for text in texts:
                if text in self._rows:
                    self._rows.move_to_end(text)
            known = tuple(self._rows.get(t, np.zeros(1, np.float32)) for t in texts)
            while len(self._rows) > self._keep:
                self._rows.popitem(last=False)
        return (*(rows[i] for i in range(len(fresh))), *known)


def _use_rows(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    matrix = np.atleast_2d(np.asarray(rows, dtype=np.float32))
    # An NLU row (MiniLM then USE) gives its USE part; a USE row (`encode_multilingual`) is taken whole.
    part = matrix[:, _USE_FROM:] if matrix.shape[1] == _USE_FROM + _USE_DIM else matrix
    norms = np.linalg.norm(part, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    out: npt.NDArray[np.float32] = (part / norms).astype(np.float32, copy=False)
    return out


_vectors: dict[Encoder, PassageVectors] = {}


def vectors_for(encoder: Encoder) -> PassageVectors:
    """One passage cache per encoder (the served NLU's, shared by every turn; a bound method is the same encoder
    each time it is looked up, as it compares equal)."""
    found = _vectors.get(encoder)
    if found is None:
        if len(_vectors) >= 4:  # a process has one encoder; tests make more
            _vectors.clear()
        found = _vectors[encoder] = PassageVectors(encoder)
    return found


def scored(found: Sequence[Passage], *, probe: str, words: Sequence[str], encoder: Encoder | None,
           question_row: npt.NDArray[np.float32] | None = None,
           alternatives: Sequence[Sequence[str]] = ()) -> list[Evidence]:
    """Every passage scored against what is asked (`probe`: the question less the words naming the product;
    `words`: its content words), best first; a question asking for a figure is scored only against passages with
    a figure in them. `question_row`: the message's own NLU row when the probe is the whole message (its USE part
    is the question's meaning: no second pass for it). `alternatives`: the words of each alternative of an either-or
    question ("elastic or a button?"): a passage shares the words of the alternative it states best, and is quoted,
    never read as a yes or a no."""
    if _WANTS_FIGURE.search(probe):
        found = [p for p in found if _FIGURE.search(p.text)]
    if not found or not probe.strip():
        return []
    terms = asked_terms(words)
    if encoder is not None and question_row is not None and np.any(question_row):
        question = _use_rows(question_row)[0]
        rows = list(vectors_for(encoder).of([p.text for p in found]))
        meanings = [float(np.dot(question, row)) if row.shape == question.shape else 0.0 for row in rows]
    elif encoder is not None:
        question, *rows = vectors_for(encoder).of([p.text for p in found], fresh=[probe])
        meanings = [float(np.dot(question, row)) if row.shape == question.shape else 0.0 for row in rows]
    else:
        meanings = [0.0] * len(found)
    out = []
    options = [asked_terms(a) for a in alternatives]
    for passage, meaning in zip(found, meanings, strict=True):
        whole_words = passage.field != "description"
        if options:
            shared = max(shared_share(o, passage.text, whole_words=whole_words) for o in options)
            plain = None
        else:
            shared = shared_share(terms, passage.text, whole_words=whole_words)
            plain = plain_answer(terms, passage.text)
        out.append(Evidence(passage, meaning + LEXICAL_WEIGHT * shared, meaning, shared, plain))
    return sorted(out, key=lambda e: e.score, reverse=True)


def answers(evidence: Evidence) -> bool:
    """Whether one passage answers: enough of the asked words, and meaning and words together over the line."""
    return evidence.shared >= SHARED_AT and evidence.score >= ANSWER_AT


def answering(ranked: Sequence[Evidence]) -> list[Evidence]:
    """The passages that answer (at most two, the second only when it also clears the line). A label (a tag, the
    title, the category) that answers is cited after the description sentence holding as many of the asked words,
    when there is one: the sentence says it in full ("laptop charger" -> "... powers a laptop, a phone ...")."""
    found = [e for e in ranked if answers(e)][:2]
    if found and found[0].passage.field != "description":
        fuller = next((e for e in ranked if e.passage.field == "description" and e.shared >= SHARED_AT
                       and e.shared >= found[0].shared), None)
        if fuller is not None:
            found = [fuller, found[0]]
    return found


def plain_answer(terms: Sequence[str], text: str) -> bool | None:
    """True when `text` contains every asked term not negated; False when it contains them and a negation right
    before one (within three words, or 不/没/无 just before a Chinese word; "unglazed" for "glazed"); None when
    some asked term is missing (the passage speaks near the question, it does not answer it plainly)."""
    if not terms:
        return None
    negated = False
    for term in terms:
        match = _word_pattern(term).search(text)
        if match is None:
            return None
        before = text[max(0, match.start() - 24):match.start()]
        if _CJK.search(term):
            negated |= bool(_NEGATION_ZH.search(text[max(0, match.start() - 2):match.start()]))
        else:
            written = match.group(0).lower()
            negated |= (written.startswith(("un", "non")) and not term.startswith(("un", "non"))) or bool(
                _NEGATION_EN.search(" ".join(before.split()[-3:])))
    return not negated


def wants_yes_or_no(question: str) -> bool:
    return _YES_NO.search(question) is not None


__all__ = ["ANSWER_AT", "Evidence", "LEXICAL_WEIGHT", "Passage", "SHARED_AT", "answers", "PassageVectors", "answering",
           "asked_terms", "passages", "plain_answer", "scored", "shared_share", "vectors_for", "wants_yes_or_no"]
