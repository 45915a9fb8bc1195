"""kit.text: BM25 through adds, replacements and removals; the tokenizer's choices; e-mail addresses."""
from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pytest

from kit.text import EMAIL_IN_TEXT, Bm25, Tokenizer, is_email_address, plural_stem, suffix_stem


def _reference_bm25(docs: dict[int, list[str]], query: dict[str, float], k1: float, b: float) -> dict[int, float]:
    n = len(docs)
    average = sum(len(t) for t in docs.values()) / n
    out: dict[int, float] = {}
    for term, weight in query.items():
        holding = [d for d, terms in docs.items() if term in terms]
        if not holding:
            continue
        idf = math.log(1 + (n - len(holding) + 0.5) / (len(holding) + 0.5)) * weight
        for d in holding:
            tf = Counter(docs[d])[term]
            out[d] = out.get(d, 0.0) + idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(docs[d]) / average))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bm25_postings_match_the_formula_through_adds_replacements_and_removals(dtype: type) -> None:
    rng = np.random.default_rng(3)
    vocabulary = [f"w{i}" for i in range(30)]
    field = Bm25(k1=0.9, b=0.75, dtype=dtype)
    docs: dict[int, list[str]] = {}
    for step in range(300):
        doc = int(rng.integers(60))
        if step % 7 == 3 and doc in docs:
            field.remove(doc)
            docs.pop(doc)
        else:
            terms = list(rng.choice(vocabulary, size=int(rng.integers(1, 12))))
            new = field.add(doc, terms)
            assert all(not any(t in other for d, other in docs.items() if d != doc) for t in new)
            docs[doc] = terms
        if step % 25 == 0:
            query = [str(t) for t in rng.choice(vocabulary, size=4)]
            plain = _reference_bm25(docs, dict.fromkeys(query, 1.0), 0.9, 0.75)
            weighted = {query[0]: 2.0, query[1]: 0.8}
            for asked, expected in ((query, plain), (weighted, _reference_bm25(docs, weighted, 0.9, 0.75))):
                got = field.as_dict(asked)
                assert got.keys() == expected.keys()
                for key, value in expected.items():
                    assert got[key] == pytest.approx(value, rel=1e-5 if dtype is np.float32 else 1e-12)
    assert field.as_dict(["unknown"]) == {}
    assert len(field) == len(docs)
    assert field.total_length == sum(len(t) for t in docs.values())


def test_tokenizer_choices() -> None:
    words = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
    plain = Tokenizer(words=words, stem=plural_stem, stopwords=frozenset({"the"}), cjk_stopwords=frozenset("的"),
                      cjk_grams=True)
    assert plain("The T-Shirts 红色的裙") == ["the", "t-shirt", "红", "色", "的", "裙", "红色", "色的", "的裙"]
    assert plain("The T-Shirts 红色的裙", query=True) == ["t-shirt", "红", "色", "裙", "红色"]
    split = Tokenizer(words=words, stem=plural_stem, compounds=True)
    assert split("T-Shirts") == ["t-shirt", "t", "shirt", "tshirt"]
    segmented = Tokenizer(words=words, stem=suffix_stem, cjk_stopwords=frozenset({"运费"}), stop_in_documents=True,
                          segment="text")
    assert segmented("returned") == ["return"]
    chinese = segmented("寄到德国运费多少")
    assert "运费" not in chinese
    assert "德国" in chinese


def test_email_address_and_email_in_text() -> None:
    assert is_email_address("anna@example.com")
    for wrong in ("anna@example", "anna example@x.com", "@example.com", "anna@example.com\n", "a@b@c.de"):
        assert not is_email_address(wrong)
    found = [m.group(0) for m in EMAIL_IN_TEXT.finditer("mail anna.b+shop@example.co.uk, or bob@x.de!")]
    assert found == ["anna.b+shop@example.co.uk", "bob@x.de"]
    assert all(is_email_address(address) for address in found)
