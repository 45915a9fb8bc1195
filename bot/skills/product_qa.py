"""Questions about one product ("is the kettle loud?", "does it come in XL?", "这款耳机防水吗"), answered only from
what the catalog says: its variants' options, stock, price, weight, tags, title and description, each answer
citing the field it comes from. When the catalog does not say, the bot says it does not know and offers a person;
it never guesses.

The product is the one named in the message, else the one in view (the last product shown), else the last one in
the cart (`bot.skills.product_routing`, which also says whether a message is such a question). `read_catalog`
(pure: a `ProductSheet` and the question in, a `ProductAnswer` out) is what `bench/product_qa.py` measures.

One module past 500 lines on purpose: the structured answers (options, sizes, colours, stock, price, weight, units,
aspects) and the general evidence share the sheet and the asked words, and they change together.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from bot.skills.base import Skill, Turn
from bot.skills.product_evidence import Encoder, Evidence, answering, passages, scored, wants_yes_or_no
from bot.skills.product_routing import (
    ASPECTS,
    CJK,
    LATIN,
    OPTIONS_ASKED,
    PRICE_ASKED,
    QUANTITY,
    STOCK_ASKED,
    UNITS,
    WEIGHT_ASKED,
    names_product,
    naming_words,
    own_names,
    product_in_question,
    read_shorthand,
)
from bot.understanding import ParsedEntity, usable_embedding
from commerce.catalog.models import Product
from commerce.catalog.service import categories, variant_price
from commerce.inventory.availability import available_for_country
from kit.text import jieba_words
from nlu.entities import COLOURS

_SENTENCE = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；])")
# Aspects whose answer must name what the question names ("work with a mac?", "will my laptop fit?"): the
# listing answers only when a sentence names all of it; "works with Alexa" does not answer "works with HomeKit?".
_OBJECT_ASPECTS = {"compatibility": r"works?|working|compatib\w*|connects?|pair|fit|hold|兼容|适配|能连|连得上|装得下|"
                                    r"放得下|装下|放进|能放下",
                   "fits_inside": r"fit|hold|装得下|放得下|装下|放进|能放下"}
# A weight the description states ("weighs 2.9 kg", "under 300 g"), before the shipping weight.
WEIGHT_STATED = re.compile(r"\d\s?(kg|g)\b|\bweigh|公斤|千克|\d\s?克|重\d", re.IGNORECASE)
# Colours asked for, and a description sentence naming colours, for a product without colour options.
_COLOURS_ASKED = re.compile(r"colou?rs?|shades?|颜色|色号", re.IGNORECASE)
_COLOURS_STATED = re.compile(r"colou?rs?|\btint|shades?|色", re.IGNORECASE)
_EITHER_OR = re.compile(r"\bor\b|还是|或者|或是", re.IGNORECASE)
ABOUT_ASKED = re.compile(r"tell me (more )?about|more about|describe|介绍|详细", re.IGNORECASE)
# Question words and fillers: what is left of a question without them is what it asks about.
_QUESTION_WORDS = frozenset("""
is are am was were do does did can could will would should shall has have had a an the it its this that these those
they them one ones of in on for to with and or be how what which who why when where much many any some there you your
me my i we us our please tell about more product item get got come comes good ok okay really very still also just
from use used using work works support supports need needs take put fit fits does doe
""".split())
_CJK_FILLERS = frozenset({"这款", "这个", "这件", "这条", "这双", "那个", "它", "吗", "呢", "吧", "的", "是", "有",
                          "没有", "不", "能", "可以", "会", "多少", "什么", "怎么", "怎样", "一下", "请问", "请",
                          "我", "你们", "这", "那", "个", "款", "件", "大不大", "么"})


@dataclass(frozen=True)
class Option:
    sku: str
    attributes: dict[str, str]
    in_stock: bool
    price_text: str = ""  # its price as the shopper sees it (variants can cost more than the product's base price)


@dataclass(frozen=True)
class ProductSheet:
    """What the catalog says about one product, as the answers read it."""

    slug: str
    title: dict[str, str]
    description: dict[str, str]
    tags: tuple[str, ...]
    brand: str | None
    options: tuple[Option, ...]
    weight_grams: int
    price_text: str = ""
    category: dict[str, str] = field(default_factory=dict)  # its category's name per language


@dataclass(frozen=True)
class Citation:
    field: str  # description, title, tags, variants.<attribute>, stock, price, weight
    quote: str  # the catalog's own words


@dataclass(frozen=True)
class ProductAnswer:
    known: bool
    aspect: str  # what was asked: an aspect name, option, stock, price, weight, about, other
    citations: tuple[Citation, ...] = ()
    # For an option asked by value ("in XL"): whether the product comes in it, and in stock.
    offered: bool | None = None
    asked_value: str | None = None
    values: tuple[str, ...] = field(default_factory=tuple)
    # General evidence (`aspect` "evidence"): True/False when the cited passage states the asked thing (or its
    # negation) plainly and the question wants a yes or a no; None: quoted for the shopper to judge.
    plain: bool | None = None


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def _texts_in_order(texts: dict[str, str], language: str) -> list[tuple[str, str]]:
    """The shopper's language first, then English, then the rest."""
    order = [language, "en", *sorted(texts)]
    return [(lang, texts[lang]) for lang in dict.fromkeys(order) if texts.get(lang)]


def _find(sheet: ProductSheet, evidence: re.Pattern[str], language: str) -> list[Citation]:
    """The fields whose text matches `evidence`: options, tags, title, then description sentences."""
    found: list[Citation] = []
    for name in dict.fromkeys(k for o in sheet.options for k in o.attributes):
        values = sorted({o.attributes[name] for o in sheet.options if name in o.attributes})
        hits = [v for v in values if evidence.search(v) or evidence.search(name)]
        if hits:
            found.append(Citation(f"variants.{name}", ", ".join(hits)))
    # The description's sentences say most, in the shopper's language; then the title, then the (English) tags.
    for field_name, texts in (("description", sheet.description), ("title", sheet.title)):
        for _, text in _texts_in_order(texts, language):
            sentences = [s for s in _sentences(text) if evidence.search(s)]
            if sentences:
                found.append(Citation(field_name, " ".join(sentences[:2])))
                break
    tags = [t for t in sheet.tags if evidence.search(t)]
    if tags:
        found.append(Citation("tags", ", ".join(tags)))
    return found



def names_the_product(sheet: ProductSheet, word: str) -> bool:
    """Whether `word` (a product word of the message) names this product (`product_routing.names_product` over its
    title, tags, brand and slug). A catalog word that names something else ("防晒" asked of a lip balm) is what the
    question asks about."""
    return names_product(own_names(sheet.title, sheet.tags, sheet.brand, sheet.slug), word)


# A unit asked for by name, without a figure ("最大多少瓦", "how many watts", "功率多大"); volts and millilitres are
# the voltage and capacity aspects.
_UNIT_NAMES = {"watt": r"watts?|wattage|瓦|功率", "charge": r"mah|毫安", "inch": r"inch(?:es)?|英寸",
               "length": r"cm|centimet(?:re|er)s?|厘米|毫米"}
_UNIT_ASKED = {unit: re.compile(rf"\b(how many|what|which)\s+({names})\b|(多少|几|多大的?)\s*({names})|"
                                rf"({names})\s*(是)?(多少|多大|几)", re.IGNORECASE)
               for unit, names in _UNIT_NAMES.items()}


def _asked_words(question: str, naming: tuple[str, ...]) -> list[str]:
    """What the question asks about once question words and the words naming the product ("the kettle") are out."""
    named = " ".join(naming).lower()
    latin = [w for w in LATIN.findall(question.lower())
             if w not in _QUESTION_WORDS and len(w) > 2 and not re.search(rf"\b{re.escape(w.rstrip('s'))}", named)]
    cjk = [w for w in jieba_words("".join(CJK.findall(question)))
           if len(w) > 1 and w not in _CJK_FILLERS and w not in named and not set(w) <= set("".join(_CJK_FILLERS))]
    return list(dict.fromkeys([*latin, *cjk]))


def read_catalog(sheet: ProductSheet, question: str, *, language: str, sizes: tuple[str, ...] = (),
                 colours: tuple[str, ...] = (), naming: tuple[str, ...] = (),
                 encoder: Encoder | None = None, question_row: npt.NDArray[np.float32] | None = None) -> ProductAnswer:
    """The catalog's answer to a question about one product, with the fields it comes from; `known=False` when
    the listing does not say. `sizes`/`colours`: the option values the message names (its entities); `naming`:
    the words that name the product in it (not what is asked about); `encoder`: the served NLU's, for the general
    evidence's passages (without it, only shared words count); `question_row`: the message's NLU row, whose USE
    part is the question's meaning (else the encoder reads the question too)."""
    question = read_shorthand(question)
    # "how much is the carbon steel wok", "hw long do the noise cancelling earbuds last": the title's words name
    # the product, the rest is the question; only when the rest has no cue is the whole message read.
    whole = question  # what a compatibility question names, and the words of an "other" question, come from it
    probe = _without_title_words(question, sheet, naming)
    if _has_cue(probe):
        question = probe
    if ASPECTS["fit"][0].search(question):
        sizes = ()  # "do they run small?" asks how the sizes fit, not for size S
    asked_values = [*sizes, *colours]
    if PRICE_ASKED.search(question) and sheet.price_text:
        return _price_answer(sheet, question, asked_values)
    if len(asked_values) > 1 and (both := _option_combination(sheet, sizes, colours)) is not None:
        return both  # "靛蓝色有XL吗": that colour in that size, not either one
    for value in asked_values:  # "does it come in XL?" / "有黑色吗"
        for name in dict.fromkeys(k for o in sheet.options for k in o.attributes):
            matching = [o for o in sheet.options if _same_option(o.attributes.get(name, ""), value)]
            if matching:
                stocked = any(o.in_stock for o in matching)
                return ProductAnswer(True, "option", (Citation(f"variants.{name}", matching[0].attributes[name]),
                                                      Citation("stock", "in stock" if stocked else "sold out")),
                                     offered=True, asked_value=matching[0].attributes[name])
        kind = "size" if value in sizes else "colour"
        values = tuple(dict.fromkeys(o.attributes[kind] for o in sheet.options if kind in o.attributes))
        if values:
            return ProductAnswer(True, "option", (Citation(f"variants.{kind}", ", ".join(values)),), offered=False,
                                 asked_value=value, values=values)
        if kind == "size":
            # No size among its options: the catalog says it comes in one size ("does it come in XL?").
            listed = "; ".join(f"{name}: {', '.join(dict.fromkeys(o.attributes[name] for o in sheet.options))}"
                               for name in dict.fromkeys(k for o in sheet.options for k in o.attributes))
            return ProductAnswer(True, "one_size", (Citation("variants", listed or "—"),), offered=False,
                                 asked_value=value)
        # No colour among its options: the title or description may still name one, so the listing does not say.
        return ProductAnswer(False, "option", asked_value=value)
    quantity = QUANTITY.search(question)
    # "will my 17 inch laptop fit?": the listing's figures in inches
    if quantity is not None and not STOCK_ASKED.search(question) and not PRICE_ASKED.search(question):
        unit = next(name for name, (asked, _) in UNITS.items()
                    if re.fullmatch(asked, quantity.group(1), re.IGNORECASE))
        cited = _find(sheet, re.compile(UNITS[unit][1], re.IGNORECASE), language)
        cited = [c for c in cited if c.field != "title"] or cited
        if cited:
            return ProductAnswer(True, f"quantity.{unit}", tuple(cited[:2]))
    named_unit = next((unit for unit, asked in _UNIT_ASKED.items() if asked.search(question)), None)
    if named_unit is not None and not PRICE_ASKED.search(question):
        # "最大多少瓦", "how many watts is it": the figures in that unit, the title's too ("65 W ... Charger").
        cited = _find(sheet, re.compile(UNITS[named_unit][1], re.IGNORECASE), language)
        if cited:
            return ProductAnswer(True, f"quantity.{named_unit}", tuple(cited[:2]))
    for name, (asked, evidence) in ASPECTS.items():
        if asked.search(question):
            if name in _OBJECT_ASPECTS:
                return _names_the_object(sheet, whole, name, language=language, naming=naming)
            cited = _find(sheet, evidence, language)
            if cited:
                return ProductAnswer(True, name, tuple(cited[:2]))
            # The aspect's own words are not in the listing: another phrasing of it may be.
            return _evidence_answer(sheet, whole, language=language, naming=naming, encoder=encoder,
                                    question_row=question_row, unknown=name)
    if OPTIONS_ASKED.search(question):
        citations = tuple(Citation(f"variants.{name}", ", ".join(sorted({o.attributes[name] for o in sheet.options
                                                                          if name in o.attributes})))
                          for name in dict.fromkeys(k for o in sheet.options for k in o.attributes))
        if citations:
            return ProductAnswer(True, "options", citations)
        if _COLOURS_ASKED.search(question):
            # No options, yet the description may name its colours ("a sheer tint: rose, peach and berry").
            stated = [c for c in _find(sheet, _COLOURS_STATED, language) if c.field == "description"]
            if stated:
                return ProductAnswer(True, "options", tuple(stated[:1]))
        return ProductAnswer(True, "options", (Citation("variants", sheet.title.get(language) or
                                                        sheet.title.get("en", "")),), values=())
    if STOCK_ASKED.search(question):
        stocked_options = [o for o in sheet.options if o.in_stock]
        quote = (", ".join(" ".join(o.attributes.values()) or o.sku for o in stocked_options) if stocked_options
                 else "sold out")
        return ProductAnswer(True, "stock", (Citation("stock", quote),), offered=bool(stocked_options))
    if WEIGHT_ASKED.search(question):
        # The description's own figure ("weighs 2.9 kg") first; the shipping weight (with packaging) after it.
        stated = [c for c in _find(sheet, WEIGHT_STATED, language) if c.field == "description"]
        return ProductAnswer(True, "weight", (*stated[:1], Citation("weight", f"{sheet.weight_grams} g")))
    words = _asked_words(whole, naming)
    if not words or ABOUT_ASKED.search(whole):
        texts = _texts_in_order(sheet.description, language)
        if texts:
            return ProductAnswer(True, "about", (Citation("description", " ".join(_sentences(texts[0][1])[:2])),))
        return ProductAnswer(False, "about")
    return _evidence_answer(sheet, whole, language=language, naming=naming, encoder=encoder,
                            question_row=question_row, unknown="other")


def general_evidence(sheet: ProductSheet, question: str, *, language: str, naming: tuple[str, ...] = (),
                     encoder: Encoder | None = None,
                     question_row: npt.NDArray[np.float32] | None = None) -> list[Evidence]:
    """Every passage of the listing scored against what the question asks (its words less those naming the
    product; the whole question's when nothing else is left), best first (`bot.skills.product_evidence`)."""
    question = read_shorthand(question)
    probe = _without_title_words(question, sheet, naming)
    words = _asked_words(probe, naming)
    if not words:
        probe, words = question, _asked_words(question, naming)
    options = {name: list(dict.fromkeys(o.attributes[name] for o in sheet.options if name in o.attributes))
               for name in dict.fromkeys(k for o in sheet.options for k in o.attributes)}
    found = passages(title=sheet.title, description=sheet.description, tags=sheet.tags, options=options,
                     category=sheet.category, language=language)
    # "is it elastic or does it button": each alternative's words on their own (a listing states one of them).
    parts = [_asked_words(part, naming) for part in _EITHER_OR.split(probe)]
    alternatives = parts if len(parts) > 1 and all(parts) else []
    # The meaning is the whole question's (calibrated so): the message's own row when the caller has it.
    return scored(found, probe=question, words=words, encoder=encoder, question_row=question_row,
                  alternatives=alternatives)


def _evidence_answer(sheet: ProductSheet, question: str, *, language: str, naming: tuple[str, ...],
                     encoder: Encoder | None, question_row: npt.NDArray[np.float32] | None,
                     unknown: str) -> ProductAnswer:
    ranked = general_evidence(sheet, question, language=language, naming=naming, encoder=encoder,
                              question_row=question_row)
    cited = answering(ranked)
    if not cited:
        return ProductAnswer(False, unknown)
    plain = cited[0].plain if wants_yes_or_no(question) else None
    return ProductAnswer(True, "evidence", tuple(Citation(e.passage.field, e.passage.text) for e in cited),
                         plain=plain)


def _has_cue(question: str) -> bool:
    """Whether the question says what it asks about: an aspect, a quantity, options, stock, price or weight."""
    return (any(asked.search(question) for asked, _ in ASPECTS.values()) or bool(QUANTITY.search(question))
            or any(p.search(question) for p in (OPTIONS_ASKED, STOCK_ASKED, PRICE_ASKED, WEIGHT_ASKED)))


def _without_title_words(question: str, sheet: ProductSheet, naming: tuple[str, ...]) -> str:
    """The question less the words naming the product ("face wash") and those of its title (any language): what
    names it, not what is asked."""
    for name in sorted(naming, key=len, reverse=True):
        if len(name) > 1:
            question = re.sub(re.escape(name), " ", question, flags=re.IGNORECASE)
    titles = " ".join(sheet.title.values()).lower()
    words = {w for w in LATIN.findall(titles) if len(w) > 2}
    kept = LATIN.sub(lambda m: " " if m.group(0).lower() in words else m.group(0), question.lower())
    for word in jieba_words("".join(CJK.findall(question))):
        if len(word) > 1 and word in titles:
            kept = kept.replace(word, " ")
    return re.sub(r"\s+", " ", kept).strip()  # "how many  charges" read as "how many charges"


def _compact(value: str) -> str:
    return re.sub(r"[\s-]+", "", value.lower())


def _price_answer(sheet: ProductSheet, question: str, asked_values: list[str]) -> ProductAnswer:
    """The price, of the option the question names ("the 2m one", "the large one") when options cost differently,
    else every option's price when they differ, else the product's."""
    priced = [o for o in sheet.options if o.price_text]
    if len({o.price_text for o in priced}) <= 1:
        return ProductAnswer(True, "price", (Citation("price", sheet.price_text),))
    text = _compact(question)
    named = [o for o in priced if any(_compact(v) in text or any(_same_option(v, a) for a in asked_values)
                                      for v in o.attributes.values() if len(_compact(v)) > 1)]
    shown = named or priced
    quote = "; ".join(dict.fromkeys(f"{' '.join(o.attributes.values())}: {o.price_text}" for o in shown))
    return ProductAnswer(True, "price", (Citation("price", quote),))


def _option_combination(sheet: ProductSheet, sizes: tuple[str, ...], colours: tuple[str, ...]) -> ProductAnswer | None:
    """Several option values asked together ("indigo in XL"): the options having all of them; a value the product
    does not come in is answered first ("blue XL?" of an indigo/black jacket: no blue). None when a value's kind is
    not among the options (then each value is answered alone)."""
    matches: list[set[str]] = []
    shown: list[str] = []
    names: list[str] = []
    for value, kind in [*((v, "colour") for v in colours), *((v, "size") for v in sizes)]:
        hit = {o.sku for o in sheet.options if any(_same_option(v, value) for v in o.attributes.values())}
        if not hit:
            values = tuple(dict.fromkeys(o.attributes[kind] for o in sheet.options if kind in o.attributes))
            if not values:
                return None
            return ProductAnswer(True, "option", (Citation(f"variants.{kind}", ", ".join(values)),), offered=False,
                                 asked_value=value, values=values)
        matches.append(hit)
        name, shown_value = next((k, v) for o in sheet.options if o.sku in hit for k, v in o.attributes.items()
                                 if _same_option(v, value))
        names.append(name)
        shown.append(shown_value)
    both = set.intersection(*matches)
    asked = " ".join(dict.fromkeys(shown))
    field_name = "variants." + "/".join(dict.fromkeys(names))
    if not both:
        values = tuple(dict.fromkeys(" ".join(o.attributes.values()) for o in sheet.options if o.sku in matches[0]))
        return ProductAnswer(True, "option", (Citation(field_name, ", ".join(values)),), offered=False,
                             asked_value=asked, values=values)
    stocked = any(o.in_stock for o in sheet.options if o.sku in both)
    return ProductAnswer(True, "option", (Citation(field_name, asked),
                                          Citation("stock", "in stock" if stocked else "sold out")),
                         offered=True, asked_value=asked)


def _names_the_object(sheet: ProductSheet, question: str, aspect: str, *, language: str,
                      naming: tuple[str, ...]) -> ProductAnswer:
    """A compatibility or fit question answered only by a sentence naming every thing the question names ("a mac",
    "apple homekit", "wifi"); figures were compared by unit before. Hyphens do not count ("wifi" = "Wi-Fi")."""
    verbs = re.compile(rf"^(?:{_OBJECT_ASPECTS[aspect]})$", re.IGNORECASE)
    # Words naming the product by its title are not what it must work with; a tag ("alexa") may be.
    own = " ".join([*sheet.title.values(), sheet.slug.replace("-", " ")]).lower()
    naming = tuple(w for w in naming if w.lower() in own)
    objects = [w.replace("-", "") for w in _asked_words(question, naming)
               if not verbs.match(w) and not QUANTITY.fullmatch(w) and not w.isdigit() and not re.match(r"^\d", w)]
    if not objects:
        return ProductAnswer(False, aspect)
    patterns = [re.compile(re.escape(w) if CJK.search(w) else rf"\b{re.escape(w.rstrip('s'))}(?:s|es)?\b",
                           re.IGNORECASE) for w in objects]
    for field_name, texts in (("description", sheet.description), ("title", sheet.title)):
        for _, text in _texts_in_order(texts, language):
            sentences = [s for s in _sentences(text) if all(p.search(s.replace("-", "")) for p in patterns)]
            if sentences:
                return ProductAnswer(True, aspect, (Citation(field_name, " ".join(sentences[:2])),))
    return ProductAnswer(False, aspect)




_SIZE_RANGE = re.compile(r"^(\d{2}(?:\.5)?)\s?[-–/]\s?(\d{2}(?:\.5)?)$")


def _same_option(value: str, asked: str) -> bool:
    value, asked = value.strip().lower(), asked.strip().lower()
    if not value or not asked:
        return False
    bare = asked.removeprefix("eu ").strip()
    if value == asked:
        return True
    asked = bare
    if (ranged := _SIZE_RANGE.match(value)) and re.fullmatch(r"\d{2}(?:\.5)?", asked):
        return float(ranged[1]) <= float(asked) <= float(ranged[2])  # "44" asked, "44-45" listed
    if (wanted := _SIZE_RANGE.match(asked)) and (ranged or re.fullmatch(r"\d{2}(?:\.5)?", value)):
        # "44-45" asked, "44-45" or "44" listed: the same range, or a size inside it
        low, high = (float(ranged[1]), float(ranged[2])) if ranged else (float(value),) * 2
        return float(wanted[1]) <= low and high <= float(wanted[2])
    # "EU 42" asked, "42" listed; "black" asked, "matte black" listed; sizes compare whole.
    return value == asked or (
        not asked.isdigit() and len(asked) > 2 and re.search(rf"\b{re.escape(asked)}\b", value) is not None)


def option_matches(value: str, asked: str) -> bool:
    """Whether an option value ("forest green", "44-45", "EU 42") is the one asked ("green", "44", "42"): the one
    comparison the answer and the cart share."""
    return _same_option(value, asked)


# A shoe size the message states without the word "size" ("got a 47?", "in 44-45"): two digits, or a
# range of them, not a quantity with a unit.
_BARE_SIZE = re.compile(r"(?<![\d.])(\d{2}(?:\.5)?(?:\s?[-–/]\s?\d{2}(?:\.5)?)?)(?![\d.%]|\s?(?:kg|g|ml|l|cm|mm|m|w|"
                        r"v|mah|wh|h|hrs?|hours?|mins?|minutes?|days?|pcs|pieces?|x|inch(?:es)?|cups?|packs?)\b|"
                        r"\s?(?![码号])[\u4e00-\u9fff])", re.IGNORECASE)


def asked_sizes(text: str, entity_sizes: list[str], sizes_of_product: list[str]) -> tuple[str, ...]:
    """The sizes the message asks about: the size entities, and bare numbers or ranges when the product's own sizes
    are numbers or ranges of them (a loafer's "39".."45", a sandal's "44-45"; a t-shirt's S..XL take none)."""
    numeric = [v for v in sizes_of_product if re.fullmatch(r"\d{2}(?:\.5)?", v.strip()) or _SIZE_RANGE.match(v.strip())]
    found = [*entity_sizes]
    if numeric:
        for match in _BARE_SIZE.finditer(text):
            value = re.sub(r"\s", "", match.group(1)).replace("–", "-").replace("/", "-")
            if not any(_same_option(value, s) or _same_option(s, value) for s in found):
                found.append(value)
    return tuple(dict.fromkeys(found))


def asked_colour(text: str, entity: ParsedEntity) -> str:
    """A colour as the shopper asked it: their own word when it names a colour by itself ("lavender", which the
    synonyms file puts under purple: a "lavender" option is what they want), else the family word ("紫色": purple).
    Compared with option values by `_same_option`, in the answer and in the cart alike."""
    span = entity.to_rasa()
    written = text[int(span["start"]):int(span["end"])].strip().lower()
    return written if COLOURS.get(written) == written else str(entity.value)


# ---------------------------------------------------------------- the skill

async def sheet_of(turn: Turn, product: Product) -> ProductSheet:
    """The catalog's facts about `product` as the shopper sees them (stock at the warehouse that ships to them)."""
    stock = await available_for_country(turn.session, skus=[v.sku for v in product.variants],
                                        country=turn.conversation.country)
    active = [v for v in product.variants if v.active]
    prices: dict[Decimal, str] = {}
    for variant in active:  # one conversion per distinct price (the rate is cached in the turn)
        amount = variant_price(variant, product)
        if amount not in prices:
            prices[amount] = await turn.price_text(amount, product.currency)
    options = tuple(Option(v.sku, dict(v.attributes), stock.get(v.sku, 0) > 0,
                           prices[variant_price(v, product)]) for v in active)
    price = options[0].price_text if options else ""
    category = next((dict(c.name) for c in await categories(turn.session) if c.id == product.category_id), {})
    return ProductSheet(slug=product.slug, title=dict(product.title), description=dict(product.description),
                        tags=tuple(product.tags), brand=product.brand, options=options,
                        weight_grams=int(product.weight_grams or 0), price_text=price, category=category)



def shown_value(value: str, language: str) -> str:
    """An option value in the shopper's language when the colour vocabulary has it ("black" -> "黑色"); the
    catalog's own word otherwise."""
    if language == "en":
        return value
    names = [word for word, canonical in COLOURS.items() if canonical == value.lower() and word != canonical
             and (CJK.search(word) is not None) == (language in ("zh", "ja"))]
    return names[0] if names and language == "zh" else value


def _asked_colours(turn: Turn, product: Product) -> tuple[str, ...]:
    """The colours the message asks about, less a colour word that is part of the product's name ("charcoal" in
    "the charcoal face wash": the Bamboo Charcoal Cleanser comes in no charcoal option)."""
    if turn.parsed is None:
        return ()
    title = " ".join(product.title.values()).lower()
    asked = []
    for entity in turn.parsed.entities:
        if entity.entity != "colour":
            continue
        span = entity.to_rasa()
        written = turn.text[span["start"]:span["end"]].strip().lower()
        if written and re.search(rf"(?<![a-z]){re.escape(written)}(?![a-z])", title):
            continue
        asked.append(asked_colour(turn.text, entity))
    return tuple(dict.fromkeys(asked))


def _field_name(turn: Turn, citation: Citation) -> str:
    head, _, attribute = citation.field.partition(".")
    if head == "variants" and attribute:
        return turn.t("qa.field.variants", attribute=attribute)
    return turn.t(f"qa.field.{head}")


def _passage_encoder(turn: Turn) -> Encoder | None:
    """The served NLU's USE pass alone when it has one (passages need no MiniLM part), else the bot's encoder."""
    embedder = getattr(turn.deps.nlu, "embedder", None)
    multilingual = getattr(embedder, "encode_multilingual", None)
    return multilingual if callable(multilingual) else turn.deps.encoder


async def answer_question(turn: Turn) -> None:
    """Answer the message as a question about one product, from the catalog only."""
    product = await product_in_question(turn)
    if product is None:
        turn.say("qa.which_product", buttons=[turn.button("button.search", "menu:search")])
        return
    sheet = await sheet_of(turn, product)
    sizes = asked_sizes(turn.text, [str(v) for v in (turn.parsed.entity_values("size") if turn.parsed else [])],
                        [o.attributes["size"] for o in sheet.options if "size" in o.attributes])
    colours = _asked_colours(turn, product)
    # A name with an asked word in it ("face wash") is still this product's name when its title or tags say it.
    whole = [str(e.value) for e in (turn.parsed.entities if turn.parsed is not None else ()) if e.entity == "product"]
    naming = tuple(w for w in dict.fromkeys([*naming_words(turn), *whole]) if names_the_product(sheet, w))
    found = read_catalog(sheet, turn.text, language=turn.locale, sizes=sizes, colours=colours, naming=naming,
                         encoder=_passage_encoder(turn), question_row=usable_embedding(turn.parsed))
    title = turn.title(product)
    custom = {"product_answer": {"product": product.slug, "known": found.known, "aspect": found.aspect,
                                 "fields": [c.field for c in found.citations],
                                 "quotes": [c.quote for c in found.citations],
                                 "offered": found.offered, "value": found.asked_value}}
    turn.conversation.last_products = [product.id]
    details = turn.button("button.details", f"product:details:{product.id}")
    if not found.known:
        turn.say("qa.unknown", title=title, custom=custom,
                 buttons=[turn.button("button.human", "handoff:request"), details])
        return
    if found.aspect == "option" and found.offered:
        key = "qa.option_yes" if found.citations[-1].quote == "in stock" else "qa.option_sold_out"
        turn.say(key, title=title, value=shown_value(found.asked_value or "", turn.locale),
                 field=_field_name(turn, found.citations[0]),
                 custom=custom, buttons=[details])
        return
    if found.aspect == "stock":  # a sentence, not a cited field: "is it available?" wants a yes or a no
        options = [" ".join(shown_value(v, turn.locale) for v in o.attributes.values()) for o in sheet.options
                   if o.in_stock and o.attributes]
        if not found.offered:
            turn.say("qa.stock_none", title=title, custom=custom, buttons=[details])
        elif options:
            turn.say("qa.stock_some", title=title, options=", ".join(options), custom=custom, buttons=[details])
        else:
            turn.say("qa.stock_yes", title=title, custom=custom, buttons=[details])
        return
    if found.aspect == "evidence":
        first, *more = found.citations
        key = {True: "qa.evidence_yes", False: "qa.evidence_no", None: "qa.evidence"}[found.plain]
        text = turn.t(key, title=title, field=_field_name(turn, first), quote=first.quote)
        text += "".join("\n" + turn.t("qa.cited", field=_field_name(turn, c), quote=c.quote) for c in more)
        # Quoted for the shopper to judge: a person can still be asked.
        buttons = [details] if found.plain is not None else [turn.button("button.human", "handoff:request"), details]
        turn.say_text(text, custom=custom, buttons=buttons)
        return
    if found.aspect == "one_size":
        turn.say("qa.one_size", title=title, value=found.asked_value, custom=custom, buttons=[details])
        return
    if found.aspect == "option":
        turn.say("qa.option_no", title=title, value=shown_value(found.asked_value or "", turn.locale),
                 values=", ".join(shown_value(v, turn.locale) for v in found.values),
                 field=_field_name(turn, found.citations[0]), custom=custom, buttons=[details])
        return
    lines = [turn.t("qa.cited", field=_field_name(turn, c), quote=c.quote if c.field != "stock" or c.quote != "sold out"
                    else turn.t("qa.sold_out")) for c in found.citations]
    turn.say("qa.answer", title=title, facts="\n".join(lines), custom=custom, buttons=[details])


skill = Skill("product_qa")


@skill.intent("product_question")
async def for_intent(turn: Turn, intent: str) -> None:
    await answer_question(turn)


__all__ = ["ASPECTS", "Citation", "Option", "ProductAnswer", "ProductSheet", "answer_question", "asked_colour",
           "asked_sizes", "names_the_product", "option_matches", "read_catalog", "skill"]
