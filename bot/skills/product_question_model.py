"""A learned reading of "is this a question about a product (in view, named, or in the cart) that the catalog should
answer?", beside the hand rules of `bot.skills.product_routing`: a logistic regression over the message's
multilingual encoder row (the USE part of its NLU row: no second pass) and the signals the rules read (a product in
view, question form, a product named, a fact asked, looking for other products, ...). Each new blind set found new
phrasings the rules missed ("wil it", a question in a story); the encoder generalises over wording and language.

Trained by `bench/product_routing.py --write` on the questions of the product-question sets and, as negatives, the
shopper-words sets and generated cart, shipping, payment, order, small-talk and search messages; cross-validated by
set there. The weights ship as `product_question_model.json` beside this module. Without a USE row (a test double
encoder) or without the file the model says nothing and the rules alone decide. A payment or shipping question is
never about the product (`PAYING_OR_SHIPPING`): that rule is safety and the model cannot overrule it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bot.skills.cart import CART_ORDER
from bot.skills.product_routing import (
    CJK,
    LOOKING_FOR,
    PAYING_OR_SHIPPING,
    RECOMMENDING,
    REFERS_TO_VIEW,
    SUBJECT_DROPPED,
    YES_NO,
    asks_a_fact,
    asks_about_a_product,
    first_clause,
    is_question,
    question_about_view,
)
from bot.understanding import ParsedMessage, usable_embedding
from nlu.embedder import MINILM_DIM, USE_DIM
from nlu.service import CATALOG_EXTRACTOR

MODEL_FILE = Path(__file__).with_name("product_question_model.json")
# The signals beside the encoder row, in the order of the model's last weights.
SIGNALS = ("in_view", "question", "yes_no", "names_known_product", "names_catalog_words", "asks_a_fact",
           "looking_for", "recommending", "refers_to_view", "subject_dropped", "cart_order", "rule_about_product",
           "rule_question_in_view", "in_view_and_question", "chinese")


@dataclass(frozen=True)
class ProductQuestionModel:
    weights: npt.NDArray[np.float64]  # USE_DIM encoder weights, then one per signal
    bias: float
    threshold: float  # a probability at or above it: a product question

    def probability(self, row: npt.NDArray[np.float64]) -> float:
        score = float(row @ self.weights) + self.bias
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, score))))


def encoder_part(parsed: ParsedMessage) -> npt.NDArray[np.float64] | None:
    """The USE part of the message's NLU row, unit length; None without one (another encoder, no row)."""
    row = usable_embedding(parsed)
    if row is None or row.ndim != 1 or row.shape[0] not in (USE_DIM, MINILM_DIM + USE_DIM):
        return None
    part = np.asarray(row[-USE_DIM:], dtype=np.float64)
    norm = float(np.linalg.norm(part))
    return part / norm if norm > 0.0 else None


def signals(parsed: ParsedMessage, *, in_view: bool, about_a_product: bool | None = None) -> npt.NDArray[np.float64]:
    """The rules' readings of the message as 0/1 features, in `SIGNALS` order; `about_a_product`: the rule's
    `asks_about_a_product(parsed, in_view=in_view)` when the caller already has it (read here otherwise)."""
    text = parsed.text
    if about_a_product is None:
        about_a_product = asks_about_a_product(parsed, in_view=in_view)
    products = [e for e in parsed.entities if e.entity == "product"]
    question = is_question(text)
    values = (
        in_view, question, YES_NO.search(text) is not None,
        any(e.to_rasa().get("extractor") != CATALOG_EXTRACTOR for e in products),
        any(e.to_rasa().get("extractor") == CATALOG_EXTRACTOR for e in products),
        asks_a_fact(parsed), LOOKING_FOR.search(first_clause(text)) is not None,
        RECOMMENDING.search(text) is not None, REFERS_TO_VIEW.search(text) is not None,
        SUBJECT_DROPPED.search(text) is not None, CART_ORDER.search(text) is not None,
        about_a_product, question_about_view(parsed, in_view=in_view),
        in_view and question, CJK.search(text) is not None,
    )
    return np.asarray(values, dtype=np.float64)


def features(parsed: ParsedMessage, *, in_view: bool,
             about_a_product: bool | None = None) -> npt.NDArray[np.float64] | None:
    """The model's input row: the encoder part, then the signals. None without an encoder row."""
    part = encoder_part(parsed)
    if part is None:
        return None
    return np.concatenate([part, signals(parsed, in_view=in_view, about_a_product=about_a_product)])


@cache
def load_model(path: Path = MODEL_FILE) -> ProductQuestionModel | None:
    """The shipped model (read once per process); None when the file is absent or does not fit `SIGNALS`."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    weights = np.asarray(data["weights"], dtype=np.float64)
    if tuple(data["signals"]) != SIGNALS or weights.shape != (USE_DIM + len(SIGNALS),):
        return None
    return ProductQuestionModel(weights=weights, bias=float(data["bias"]), threshold=float(data["threshold"]))


def learned_product_question(parsed: ParsedMessage, *, in_view: bool, model: ProductQuestionModel | None = None,
                             about_a_product: bool | None = None) -> bool:
    """Whether the learned model reads the message as a question about a product the catalog should answer (with a
    product in view or in the cart when `in_view`). Never for a payment or shipping question (safety, a rule).
    `about_a_product`: the rule's reading, when the caller has already made it (the engine's signals)."""
    model = model if model is not None else load_model()
    if model is None or PAYING_OR_SHIPPING.search(parsed.text):
        return False
    row = features(parsed, in_view=in_view, about_a_product=about_a_product)
    return row is not None and model.probability(row) >= model.threshold


__all__ = ["MODEL_FILE", "SIGNALS", "ProductQuestionModel", "features", "learned_product_question", "load_model",
           "signals"]
