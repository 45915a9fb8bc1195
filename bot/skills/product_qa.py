"""Questions about one product ("is the kettle loud?", "does it come in XL?", "这款耳机防水吗"), answered only from
what the catalog says: its variants' options, stock, price, weight, tags, title and description, each answer
citing the field it comes from. When the catalog does not say, the bot says it does not know and offers a person;
it never guesses.

The product is the one named in the message, else the one in view (the last product shown), else the last one in
the cart. `read_catalog` (pure: a `ProductSheet` and the question in, a `ProductAnswer` out) is what
`bench/product_qa.py` measures.

One module past 500 lines on purpose: the tables that read a question (aspects, units, shorthand, options) serve
both the policy's signal (`asks_about_a_product`) and the answer, and they change together.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from bot.skills.base import Skill, Turn
from bot.skills.product_evidence import Encoder, Evidence, answering, passages, scored, wants_yes_or_no
from bot.understanding import ParsedEntity, ParsedMessage, usable_embedding
from commerce.catalog.errors import ProductNotFound
from commerce.catalog.models import Product
from commerce.catalog.service import categories, find_variants, get_product, get_products, variant_price
from commerce.inventory.availability import available_for_country
from commerce.search.service import named_products
from kit.text import jieba_words
from nlu.entities import COLOURS
from nlu.service import CATALOG_EXTRACTOR

_LATIN = re.compile(r"[a-z0-9][a-z0-9+\-']*")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
REFERS_TO_VIEW = re.compile(r"\b(this|it|that|these|those|they|them)\b|这|那|它", re.IGNORECASE)
# Looking for products rather than asking about one ("do you have...", "有没有...").
LOOKING_FOR = re.compile(r"\b(do you (have|sell|carry|stock)|have you got|got any|any\b|show me|looking for|i want|"
                         r"i need|(is|are) there)\b|有没有|有卖|有什么|想买|要买|找|推荐|哪款|^\s*有", re.IGNORECASE)
# A message phrased as a question (en, zh): a question mark, a final particle, an A-not-A pair, a question word, or
# an English question's first word.
# An English question may open any clause ("my dog chews everything. would this one survive"), and "how much" can
# close one ("longjing 250g how much").
QUESTION_SHAPED = re.compile(r"[?？]|[么不][\s。！!]*$|[吗呢嘛没](?=[\s。！!，,]|$)|(.)不\1|还是|有没有|是不是|"
                             r"能不能|可不可以|"
                             r"会不会|多少|几|什么|怎么|是否|多久|多大|多重|"
                             r"(?:^|[.,;!:]\s*)(is|are|does|do|did|can|could|will|would|should|has|have|how|what|"
                             r"which)\b(?!')|\bhow (much|many|long|tall|big|heavy)\s*$", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；])")

# What a question asks about, by the words it uses (en, zh), and the words that answer it in a listing.
# An aspect's evidence is a regular expression over the product's own text; no evidence found = "I don't know".
ASPECTS: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    name: (re.compile(asked, re.IGNORECASE), re.compile(evidence, re.IGNORECASE)) for name, asked, evidence in (
        ("waterproof", r"waterproof|water[- ]?proof|water[- ]resistant|\brain\b|splash|\bpool\b|\bswim|shower|submerg|"
         r"underwater|in the water|\bfloat|\bsweat|防水|防雨|泼水|泡水|进水|水里|水中|下水|游泳|淋浴|能浮|会浮|漂浮|"
         r"出汗|汗水",
         r"waterproof|water[- ]?resistant|water[- ]?repellent|splash|drizzle|\bipx?\d|\brain\b|\bfloats?\b|"
         r"防水|防泼|防雨|泼溅|浮在水"),
        ("noise", r"\bloud|nois[ey]|\bquiet|silent|\bdb\b|噪音|声音|吵|安静|静音",
         r"\bloud|nois[ey]|\bquiet|silent|\d\s?db\b|decibel|噪音|静音|安静|分贝"),
        ("battery", r"battery|batteries|charge lasts|last[s]? on a charge|battery life|电池|续航",
         r"battery|batteries|\bmah\b|\d+\s?hours?\b|电池|续航|毫安"),
        ("material", r"made of|made from|material|fabric|\bcotton\b|\bwool\b|leather|plastic|wood(en)?\b|\bmetal\b|"
         r"\bsteel\b|ceramic|porcelain|\bglass\b|\b(real|genuine)\s+(silk|leather|jade|wool|wood|linen|cotton)\b|"
         r"材质|面料|材料|什么做的|纯棉|塑料|木头|木质|金属|陶瓷|玻璃的|实木|真皮|皮的|牛皮|真的?[玉丝]|真丝吗",
         r"cotton|wool|linen|silk|leather|steel|bamboo|ceramic|porcelain|clay|stoneware|glass|plastic|wood|beech|"
         r"melamine|aluminium|polycarbonate|silicone|\bjade\b(?![\s-]green)|\btpu\b|"
         r"canvas|merino|polyester|nylon|rubber|\beva\b|down\b|棉|羊毛|麻|丝|皮革|真皮|牛皮|钢|竹|陶|瓷|玻璃|木|帆布|"
         r"密胺|铝|聚碳酸酯|硅胶|玉|尼龙|塑料"),
        ("dishwasher", r"dishwasher|洗碗机", r"dishwasher|洗碗机"),
        ("microwave", r"microwave|微波", r"microwave|微波"),
        ("oven", r"\boven\b|烤箱", r"\boven\b|烤箱"),
        ("shrink", r"shrink|shrunk|缩水", r"shrink|shrunk|缩水"),
        ("washing", r"machine[- ]wash|washing machine|\bwash|机洗|洗衣机|水洗", r"wash|洗"),
        ("voltage", r"voltage|\bvolts?\b|\bplug|110\s?v|220\s?v|work(s|ing)? in (the )?(us|usa|uk|america|japan|canada|"
         r"australia)\b|电压|插头|美国能用|英国能用|日本能用|国外能用|出国能用",
         r"\d\s?v\b|volt|\bplug|电压|插头"),
        ("temperature", r"temperature|\btemp\b|°|温度|调温|保温|多少度|几度|水温",
         r"temperature|°c|°|温度|保温|水温"),
        ("capacity", r"capacity|\bml\b|litre|liter|how much (does it|can it) hold|容量|毫升|装多少|能装多少|装得了多少",
         r"\d\s?ml\b|\d\s?l\b|litre|liter|容量|毫升|\d升"),
        ("duration", r"how long (does|do|should|will|can|to|until|before|for)\b|for how long|多久|多长时间|几分钟|"
         r"几小时|几个小时",
         r"\d+\s?(hours?|hrs?|minutes?|mins?|days?|weeks?|months?)\b|\b(one|two|three|four|five|six|eight|ten|twelve|"
         r"fifteen|twenty|thirty|an?)\s+(hours?|minutes?|days?|weeks?|months?)\b|小时|分钟|\d+\s?(天|周|个月)|数周|"
         r"[一二两三四五六七八九十]+(天|周|个月)"),
        ("dimensions", r"dimension|how big|how large|how long is|measure|尺寸|多大|多长|多宽",
         r"\d\s?(cm|mm|m)\b|\d+\s?x\s?\d+|厘米|毫米|尺寸|\d米"),
        ("times", r"how many ([a-z]+ )?(times|charges|infusions|brews|steeps|uses|washes)|how often can|几次|多少次|"
         r"几泡|多少泡",
         r"\btimes\b|infusions?|\d+\s?次|[一二两三四五六七八九十]+次|[一二两三四五六七八九十]+泡|泡以上"),
        ("compatibility", r"\b(works?|working)\s+(with|on)\b|compatib|\bconnects? to\b|\bpair with\b|兼容|适配|能连|"
         r"连得上", r"$^"),  # the evidence is what the question names (`_OBJECT_ASPECTS`)
        ("fits_inside", r"\bwill (my|a|an|the|it|they|this|these)\b.{0,30}\bfit\b|"
         r"\bfit (in|into|inside)\b|\bhold (a|my)\b|装得下|放得下|"
         r"装下|放进|能放下", r"$^"),
        ("caffeine", r"caffeine|decaf|咖啡因|低因|无因", r"caffeine|decaf|咖啡因|低因"),
        ("kids", r"\bkids?\b|child|children|toddler|bab(y|ies)|what age|\bages?\b|how old|\d+\s?(-\s?)?(years?|yrs?)"
         r"[- ]old|\byo\b|小孩|儿童|孩子|婴|宝宝|几岁|岁|多大的孩子|年龄",
         r"\bkids?\b|child|bab(y|ies)|\bages?\b|\d\+|儿童|孩子|岁|婴|宝宝"),
        ("fit", r"\bruns? (small|large|big)|true to size|size (up|down)|sizing|\bfits? (small|large|big|tight|snug)|"
         r"偏小|偏大|尺码准|码数准|尺码标准|正码|选大一码|选小一码|偏紧|偏松|紧不紧|会不会紧|会紧|挤脚|夹脚",
         r"true to size|\bruns? (small|large|big)|size (up|down)|one (size )?down|one size up|usual size|\bfit\b|"
         r"\bfits? (slightly |a bit )?(small|large|big|snug|tight)|snug|偏小|偏大|大一码|小一码|平时尺码|尺码标准|版型|"
         r"廓形|略紧|偏紧"),
        ("itch", r"\bitch|scratchy|prickl|扎不扎|扎皮肤|扎人|会扎|刺痒|痒",
         r"\bitch|scratch|prickl|扎皮肤|扎人|不扎|刺痒|痒"),
        ("warranty", r"warrant|guarantee|保修|质保|保固", r"warrant|guarantee|保修|质保|保固"),
        ("vegan", r"\bvegan|plant[- ]based|纯素|素食", r"\bvegan|plant[- ]based|纯素|素食"),
        ("sun", r"\bspf\b|sun ?protection|\buv\b|sunscreen|防晒|紫外线", r"\bspf|\buv[ab]?\b|sun|防晒|紫外线"),
        ("flight", r"plane|flight|\bfly\b|airline|carry[- ]on|hand luggage|飞机|登机|航空|坐飞机",
         r"airline|cabin|flight|plane|aircraft|\bair\b|航空|飞机|登机|民航"),
        ("skin", r"sensitive|skin type|oily|dry skin|敏感|油皮|干皮|肤质",
         r"sensitive|oily|dry skin|all skin|敏感|油|肤"),
        ("handmade", r"hand[- ]?made|by hand|手工", r"hand[- ]?made|by hand|hand[- ]|手工|手作"),
        ("organic", r"organic|有机", r"organic|有机"),
        ("wireless", r"wireless|bluetooth|无线|蓝牙", r"wireless|bluetooth|无线|蓝牙"),
        ("induction", r"induction|电磁炉", r"induction|电磁炉|所有炉"),
        ("pieces", r"how many|pieces|多少片|几片|多少块|几块|多少张|几张|多少枚|几枚|多少颗|几颗|多少只|几只",
         r"[\d,]+[- ]?(piece|tile|card|cup|pair|stone|tin|plate|bowl|balm|cube|mask)s?\b|"
         r"\b(one|two|three|four|five|six|seven|eight|nine|ten|twelve|thirty-two)\s+([\w-]+\s+){0,3}?"
         r"(pieces|tiles|cards|cups|pairs|stones|tins|plates|bowls|balms|cubes|masks)\b|"
         r"\d+\s?(片|张|枚|颗|只|双|罐|块)|[一二两三四五六七八九十]+(片|张|枚|颗|只|双|罐|杯)"),
        ("colourfast", r"fade|colou?r ?fast|掉色|褪色", r"fade|colou?r ?fast|掉色|褪色"),
    )
}
# A quantity the question states ("my 17 inch laptop", "5ghz wifi", "110V"): the listing's figures in the same unit
# answer it (the shopper compares them); a unit the listing never states is not known.
UNITS: dict[str, tuple[str, str]] = {
    name: (asked, rf"\d(?:[\d.,]*)\s?(?:-\s?)?(?:{evidence})") for name, asked, evidence in (
        ("frequency", r"ghz|mhz", r"ghz|mhz"),
        ("inch", r"inch(?:es)?|\"|英寸|寸", r"inch(?:es)?(?![a-z])|\"|英寸|寸"),
        ("volt", r"v(?![a-z])|volts?(?![a-z])|伏", r"v(?![a-z])|volts?(?![a-z])|伏"),
        ("watt", r"w(?![a-z])|watts?(?![a-z])|瓦", r"w(?![a-z])|watts?(?![a-z])|瓦"),
        ("charge", r"mah(?![a-z])|wh(?![a-z])|毫安", r"mah(?![a-z])|wh(?![a-z])|毫安"),
        ("length", *[r"(?:cm|mm|m|metres?|meters?)(?![a-z])|厘米|毫米|米"] * 2),
        ("volume", *[r"(?:ml|l|litres?|liters?)(?![a-z])|毫升|升"] * 2),
    )
}
_QUANTITY = re.compile(r"\d+(?:\.\d+)?\s?(?:-\s?)?(" + "|".join(a for a, _ in UNITS.values()) + ")", re.IGNORECASE)
# Aspects whose answer must name what the question names ("work with a mac?", "will my laptop fit?"): the
# listing answers only when a sentence names all of it; "works with Alexa" does not answer "works with HomeKit?".
_OBJECT_ASPECTS = {"compatibility": r"works?|working|compatib\w*|connects?|pair|fit|hold|兼容|适配|能连|连得上|装得下|"
                                    r"放得下|装下|放进|能放下",
                   "fits_inside": r"fit|hold|装得下|放得下|装下|放进|能放下"}
STOCK_ASKED = re.compile(r"in stock|available|still have|sold out|back in|can i (still )?(buy|order)|有货|还有|现货|"
                         r"缺货|库存|能买|可以买|买得到|能下单|卖完|断货", re.IGNORECASE)
# Shoppers' shorthand, read as the words they stand for before a question's cues are looked for ("hw long", "r they").
_SHORTHAND = {"hw": "how", "hws": "how is", "u": "you", "r": "are", "ur": "your", "wat": "what", "wot": "what",
              "pls": "please", "plz": "please", "doe": "does", "dose": "does", "thru": "through"}
_SHORTHAND_WORD = re.compile(r"\b(" + "|".join(map(re.escape, _SHORTHAND)) + r")\b", re.IGNORECASE)


def is_question(text: str) -> bool:
    """Whether the message is phrased as a question, shorthand read first ("r they genuine leather")."""
    return QUESTION_SHAPED.search(_SHORTHAND_WORD.sub(lambda m: _SHORTHAND[m.group(1).lower()], text)) is not None


def _first_clause(text: str) -> str:
    """The message up to its first clause break: "is the keyboard a uk layout? i need the £ key" asks about the
    keyboard; the need that follows is why, not a search."""
    return next((c for c in re.split(r"[?？,，.。;；!！]", text) if c.strip()), text)


# Asking for something else than the product in view ("what do you recommend for a 5 year old?").
RECOMMENDING = re.compile(r"\b(recommend|suggest|alternatives?|something (else|for|similar)|gift for|similar|"
                          r"cheaper)\b|推荐|有什么好|送什么|别的|其他的|类似|更便宜", re.IGNORECASE)
# A weight the description states ("weighs 2.9 kg", "under 300 g"), before the shipping weight.
WEIGHT_STATED = re.compile(r"\d\s?(kg|g)\b|\bweigh|公斤|千克|\d\s?克|重\d", re.IGNORECASE)
PRICE_ASKED = re.compile(r"how much (is|are|does it cost)|how much\s*[?？]?\s*$|"
                         r"\bprice|\bcost|多少钱|价格|什么价|价钱", re.IGNORECASE)
WEIGHT_ASKED = re.compile(r"weigh|how heavy|\bheavy\b|多重|重量|重不重|有多重", re.IGNORECASE)
OPTIONS_ASKED = re.compile(r"what (sizes|colou?rs|options)|which (sizes|colou?rs)|other colou?rs|come in|"
                           r"哪些颜色|什么颜色|几种颜色|哪些尺码|什么尺码|有什么码|哪些码", re.IGNORECASE)
# The shop's terms (paying, shipping, customs, returns), which a listing does not state: asked with a product in view
# ("can I pay for it with PayPal?"), still not a question about the product.
PAYING_OR_SHIPPING = re.compile(r"\b(pay|paid|paying|payment|paypal|credit card|debit card|invoice|ship|ships|shipping|"
                                r"deliver\w*|postage|customs|dut(y|ies)|tax\w*|vat|currency|currencies|refund\w*|"
                                r"return\w*|alipay|wechat|dollars?|euros?|yuan|rmb|pounds?|yen|usd|eur|gbp|cny|jpy)\b|"
                                r"付款|支付|付钱|信用卡|运费|邮费|配送|发货|快递|寄到|关税|税费|汇率|退货|退款|退换|微信|美元|"
                                r"欧元|人民币|英镑|日元|币",
                                re.IGNORECASE)
# A Chinese question that drops its subject ("能给switch充电不", "适合敏感肌吗"): the subject is the product in view.
SUBJECT_DROPPED = re.compile(r"^\s*(能不能|能|可不可以|可以|会不会|会|适不适合|适合|支不支持|支持|需不需要|需要|"
                             r"要不要)")
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
    """Whether `word` (a product word of the message) names this product: it is in its title, tags or brand. A
    catalog word that names something else ("防晒" asked of a lip balm) is what the question asks about."""
    word = word.strip().lower()
    if not word:
        return False
    own = " ".join([*sheet.title.values(), *sheet.tags, sheet.brand or "", sheet.slug.replace("-", " ")]).lower()
    if _CJK.search(word):
        return word in own
    return any(re.search(rf"\b{re.escape(part.rstrip('s'))}", own) for part in word.split() if len(part) > 2)


def _asked_words(question: str, naming: tuple[str, ...]) -> list[str]:
    """What the question asks about once question words and the words naming the product ("the kettle") are out."""
    named = " ".join(naming).lower()
    latin = [w for w in _LATIN.findall(question.lower())
             if w not in _QUESTION_WORDS and len(w) > 2 and not re.search(rf"\b{re.escape(w.rstrip('s'))}", named)]
    cjk = [w for w in jieba_words("".join(_CJK.findall(question)))
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
    question = _SHORTHAND_WORD.sub(lambda m: _SHORTHAND[m.group(1).lower()], question)
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
    quantity = _QUANTITY.search(question)
    # "will my 17 inch laptop fit?": the listing's figures in inches
    if quantity is not None and not STOCK_ASKED.search(question) and not PRICE_ASKED.search(question):
        unit = next(name for name, (asked, _) in UNITS.items()
                    if re.fullmatch(asked, quantity.group(1), re.IGNORECASE))
        cited = _find(sheet, re.compile(UNITS[unit][1], re.IGNORECASE), language)
        cited = [c for c in cited if c.field != "title"] or cited
        if cited:
            return ProductAnswer(True, f"quantity.{unit}", tuple(cited[:2]))
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
    question = _SHORTHAND_WORD.sub(lambda m: _SHORTHAND[m.group(1).lower()], question)
    probe = _without_title_words(question, sheet, naming)
    words = _asked_words(probe, naming)
    if not words:
        probe, words = question, _asked_words(question, naming)
    options = {name: list(dict.fromkeys(o.attributes[name] for o in sheet.options if name in o.attributes))
               for name in dict.fromkeys(k for o in sheet.options for k in o.attributes)}
    found = passages(title=sheet.title, description=sheet.description, tags=sheet.tags, options=options,
                     category=sheet.category, language=language)
    # The meaning is the whole question's (calibrated so): the message's own row when the caller has it.
    return scored(found, probe=question, words=words, encoder=encoder, question_row=question_row)


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
    return (any(asked.search(question) for asked, _ in ASPECTS.values()) or bool(_QUANTITY.search(question))
            or any(p.search(question) for p in (OPTIONS_ASKED, STOCK_ASKED, PRICE_ASKED, WEIGHT_ASKED)))


def _without_title_words(question: str, sheet: ProductSheet, naming: tuple[str, ...]) -> str:
    """The question less the words naming the product ("face wash") and those of its title (any language): what
    names it, not what is asked."""
    for name in sorted(naming, key=len, reverse=True):
        if len(name) > 1:
            question = re.sub(re.escape(name), " ", question, flags=re.IGNORECASE)
    titles = " ".join(sheet.title.values()).lower()
    words = {w for w in _LATIN.findall(titles) if len(w) > 2}
    kept = _LATIN.sub(lambda m: " " if m.group(0).lower() in words else m.group(0), question.lower())
    for word in jieba_words("".join(_CJK.findall(question))):
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
               if not verbs.match(w) and not _QUANTITY.fullmatch(w) and not w.isdigit() and not re.match(r"^\d", w)]
    if not objects:
        return ProductAnswer(False, aspect)
    patterns = [re.compile(re.escape(w) if _CJK.search(w) else rf"\b{re.escape(w.rstrip('s'))}(?:s|es)?\b",
                           re.IGNORECASE) for w in objects]
    for field_name, texts in (("description", sheet.description), ("title", sheet.title)):
        for _, text in _texts_in_order(texts, language):
            sentences = [s for s in _sentences(text) if all(p.search(s.replace("-", "")) for p in patterns)]
            if sentences:
                return ProductAnswer(True, aspect, (Citation(field_name, " ".join(sentences[:2])),))
    return ProductAnswer(False, aspect)


def _stem(word: str) -> str:
    """An English word less a plural or past/progressive ending, when a stem of four letters or more is left."""
    for ending in ("ing", "ed", "es", "s"):
        if word.endswith(ending) and len(word) - len(ending) >= 4:
            return word[: -len(ending)]
    return word


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


def asks_a_fact(parsed: ParsedMessage) -> bool:
    """Whether the message asks something a listing can say: an aspect, a quantity, options, a size or colour,
    stock, price or weight ("can i get the lavender ones in 44-45", "will it fit my cup holder")."""
    text = parsed.text
    return (any(asked.search(text) for asked, _ in ASPECTS.values()) or bool(_QUANTITY.search(text))
            or any(pattern.search(text) for pattern in (STOCK_ASKED, PRICE_ASKED, WEIGHT_ASKED, OPTIONS_ASKED))
            or bool(parsed.entity_values("size")) or bool(parsed.entity_values("colour")))


# A yes/no question about a thing ("can the panda plushie go in the washing machine", "红参眼霜有香味吗"): with a
# product named, it asks about that product, not for a list ("which tea is best for sleep?", "有茶吗" are searches).
_YES_NO = re.compile(r"^\s*(is|are|does|do|did|can|could|will|would|should|has|have)\b|"
                     r"[吗么没](?=[\s。！!？?，,]|$)|(.)不\2|\bhow (much|many|tall|big|long|heavy)\b", re.IGNORECASE)


def asks_about_a_product(parsed: ParsedMessage, *, in_view: bool) -> bool:
    """Whether the message is a question about a product's facts that the product question skill should answer,
    whatever an unsure classifier said (faq, fallback, out of scope, or a search naming no product): phrased as a
    question, it asks about something a listing can say (an aspect, options, a size or colour, stock, price,
    weight) or refers to the product in view ("is it ...", "这个..."), and the product is in view or named: by a
    product name the extractor knows, or by a longer stretch of catalog words once the asked words are out of it
    ("帆布包防水不": 帆布包), with what is asked outside the name. A named product asked a yes/no question about
    ("can the panda plushie go in the washer", "红参眼霜有香味吗") counts even when no aspect is recognised."""
    text = parsed.text
    if not is_question(text) or PAYING_OR_SHIPPING.search(text):
        return False  # "can I pay for it with PayPal?", "does it ship to Japan?": the shop's terms, not the listing
    names: list[tuple[str, bool]] = []  # (the name less asked words, known to the extractor)
    subject = subject_entity(parsed)
    for e in parsed.entities:
        if e.entity == "product":
            value = str(e.value)
            name = name_without_aspects(value) if any(a.search(value) for a, _ in ASPECTS.values()) else value
            if not name and e is subject:
                name = value
            if name:
                names.append((name, e.to_rasa().get("extractor") != CATALOG_EXTRACTOR))
    rest = text
    for name, _ in names:  # a one-character "name" ("装" of "装多少") is a stray catalog word, not the product
        if len(name) >= (2 if _CJK.search(name) else 3):
            rest = rest.replace(name, " ")
    asked_outside = (any(asked.search(rest) for asked, _ in ASPECTS.values()) or bool(_QUANTITY.search(rest))
                     or bool(parsed.entity_values("size")))  # "老北京布鞋有35码吗": a size of that product
    named = any(known for _, known in names) or any(
        len(name) >= (3 if _CJK.search(name) else 4) for name, _ in names)
    if not in_view:
        # Named, not in view: a property question ("is the wok dishwasher safe?", "茉莉龙珠能泡几次", even if
        # the classifier said search) or a yes/no question or price/stock question about it ("longjing 250g how
        # much", "大红袍还有货没"); "do you have a red hoodie in large?", "有防水的背包吗" are searches.
        cue = asked_outside or any(p.search(rest) for p in (STOCK_ASKED, PRICE_ASKED, WEIGHT_ASKED, OPTIONS_ASKED))
        return (named and (cue or _YES_NO.search(rest) is not None) and not LOOKING_FOR.search(text)
                and not RECOMMENDING.search(text))
    if parsed.intent == "product_search" and any(known for _, known in names) and LOOKING_FOR.search(text):
        return False  # "do you have running shoes?": a search, even with something in view
    if RECOMMENDING.search(text):
        return False  # "what do you recommend for a 5 year old?": other products
    return asks_a_fact(parsed) or bool(REFERS_TO_VIEW.search(text)) or bool(SUBJECT_DROPPED.search(text))


def subject_entity(parsed: ParsedMessage) -> object | None:
    """The product entity made only of words a question asks with ("sunscreen" matches the sun aspect) that is the
    question's subject: the first such entity, with another aspect asked after it ("is the sunscreen waterproof",
    "防晒霜防水吗": subject, then what is asked of it). None when there is none."""
    spans = []
    for e in parsed.entities:
        span = e.to_rasa()
        start, end = span.get("start"), span.get("end")
        if not (isinstance(start, int) and isinstance(end, int)):  # an entity without offsets: where its value is
            start = parsed.text.find(str(e.value))
            end = start + len(str(e.value))
        if e.entity == "product" and start >= 0:
            spans.append((start, end, e))
    for _, end, e in sorted(spans, key=lambda s: s[0]):
        value = str(e.value)
        if not any(a.search(value) for a, _ in ASPECTS.values()) or name_without_aspects(value):
            continue
        return e if any(asked.search(parsed.text[end:]) for asked, _ in ASPECTS.values()) else None
    return None


def question_about_view(parsed: ParsedMessage, *, in_view: bool) -> bool:
    """Whether the message is a question while a product is in view, not a search or a request for other products
    ("还要另外买滤纸吗" looking at a dripper): when the classifier cannot read it, it is most likely about that
    product, whose listing answers it or says it does not say. Only its first clause can make it a search ("is the
    keyboard a uk layout? i need the £ key" asks about the keyboard). A question about paying, shipping, customs or
    returns is the shop's terms, never the listing's ("可以用支付宝付款吗" with a power bank in view)."""
    text = parsed.text
    return (in_view and is_question(text) and LOOKING_FOR.search(_first_clause(text)) is None
            and RECOMMENDING.search(text) is None and PAYING_OR_SHIPPING.search(text) is None)


def name_without_aspects(value: str) -> str:
    """A product name as the extractor found it, less the words a question asks with: catalog vocabulary runs on
    through "收纳袋防水" (防水 is in some title too), and the name is "收纳袋". Empty when nothing names a product."""
    for asked, _ in ASPECTS.values():
        value = asked.sub(" ", value)
    value = re.sub(r"\s+", " ", value).strip(" 的")
    return value if len(value) >= (2 if _CJK.search(value) else 3) else ""


def naming_words(turn: Turn, *, loose: bool = True) -> list[str]:
    """The words of the message that name a product (its product entities, as written and as canonical values),
    not what is asked about: "waterproof" and "battery" are catalog tags too, but in "is it waterproof?" they are
    the question. `loose=False`: only names the entity extractor knows (tags, training data), not any stretch of
    catalog words (`nlu.catalog_terms`: "带上" shares a bigram with some title)."""
    if turn.parsed is None:
        return []
    # A name the extractor knows outweighs stray catalog words ("go" in "can the panda plushie go in the wash"),
    # and a single catalog character or two letters ("年", "go") name nothing alone.
    known = any(e.entity == "product" and e.to_rasa().get("extractor") != CATALOG_EXTRACTOR
                for e in turn.parsed.entities)
    words: list[str] = []
    subject = subject_entity(turn.parsed)
    for entity in turn.parsed.entities:
        span = entity.to_rasa()
        if span.get("extractor") == CATALOG_EXTRACTOR and (
                not loose or known or len(str(entity.value)) < (2 if _CJK.search(str(entity.value)) else 3)):
            continue
        if entity.entity != "product":
            continue
        if not any(asked.search(str(entity.value)) for asked, _ in ASPECTS.values()) or entity is subject:
            words += [str(entity.value), turn.text[span["start"]:span["end"]]]
        elif name := name_without_aspects(str(entity.value)):
            words.append(name)
    return list(dict.fromkeys(words))


# A Chinese noun's bare suffix: 杯子 is 杯 (a cup), found in 茶杯 (teacup).
_NOUN_SUFFIX = re.compile(r"(?<=[\u4e00-\u9fff])[子儿]$")


async def _fits_in_view(turn: Turn, product_id: int, named: list[str]) -> bool:
    """Whether a word naming a product also fits the product in view by its own title ("杯子", which the extractor
    also reads as "mug", looking at a teacup set: those cups, not the mug; "the panda plushie" looking at a Go set:
    no)."""
    try:
        product = await get_product(turn.session, product_id=product_id)
    except ProductNotFound:
        return False
    title = " ".join(str(t) for t in dict(product.title).values()).lower()
    words = _LATIN.findall(title)

    def fits(word: str) -> bool:
        word = _NOUN_SUFFIX.sub("", word.strip().lower())
        if not word:
            return False
        if _CJK.search(word):
            return word in title
        return all(any(_stem(w) == _stem(t) for t in words) for w in _LATIN.findall(word))

    return any(fits(word) for word in named)


async def product_in_question(turn: Turn) -> Product | None:
    """The product named in the message, else the one in view (the last shown), else the last in the cart."""
    shown_last = [int(i) for i in turn.conversation.last_products or []]
    # With a product in view, only a name the extractor knows points elsewhere.
    named = naming_words(turn, loose=not shown_last)
    candidates: list[int] = []
    if shown_last and REFERS_TO_VIEW.search(turn.text):
        candidates = shown_last[:1]  # "is this waterproof?": the product in view, even if "waterproof" is a tag
    elif named:
        candidates = await named_products(turn.session, query=" ".join(named), limit=3)
        # "the kettle" right after seeing a kettle means that kettle, and so does a name that fits it among others
        # ("杯子" looking at a teacup set is those cups, not the mug the word fits best); a name that does not fit it
        # ("the panda plushie" looking at a Go set) points elsewhere.
        in_view = [i for i in shown_last if i in candidates]
        if shown_last and not in_view and await _fits_in_view(turn, shown_last[0], named):
            in_view = shown_last[:1]
        candidates = in_view[:1] or (await _best_titled(turn, candidates))[:1]
    if not candidates and turn.conversation.last_products:
        candidates = [int(turn.conversation.last_products[0])]
    if not candidates and turn.conversation.cart:
        sku = str(turn.conversation.cart[-1]["sku"])
        variant = (await find_variants(turn.session, skus=[sku])).get(sku)
        candidates = [variant.product_id] if variant is not None else []
    for product_id in candidates:
        try:
            product = await get_product(turn.session, product_id=product_id)
        except ProductNotFound:
            continue
        if product.active:
            return product
    return None


def _cjk_bigrams(text: str) -> set[str]:
    return {a + b for a, b in zip(text, text[1:], strict=False) if _CJK.match(a) and _CJK.match(b)}


async def _best_titled(turn: Turn, candidates: list[int]) -> list[int]:
    """The named candidates, the one whose title shares clearly more words with the message first ("the trail running
    shoes" names the trail shoes, not the first running shoes; "氮化镓充电器" the GaN charger: CJK bigrams, as single
    characters are shared by unrelated titles), search order otherwise."""
    if len(candidates) < 2:
        return candidates
    products = await get_products(turn.session, product_ids=candidates)
    text = turn.text.lower()
    latin = {w for w in _LATIN.findall(text) if len(w) > 2}
    chars = _cjk_bigrams(text)

    def shared(product_id: int) -> int:
        product = products.get(product_id)
        if product is None:
            return 0
        title = " ".join(product.title.values()).lower()
        words = {w for w in _LATIN.findall(title) if len(w) > 2}
        return len(latin & words) + len(chars & _cjk_bigrams(title))

    best = max(candidates, key=shared)  # the first of the best
    # Only a clearly better title moves ahead of the search's first (two shared words or bigrams more): one shared
    # bigram is chance ("充电宝能带上飞机吗" shares 充电 with the desk lamp's "充电口", none with the power bank's).
    if shared(best) >= shared(candidates[0]) + 2:
        return [best, *(i for i in candidates if i != best)]
    return candidates


def shown_value(value: str, language: str) -> str:
    """An option value in the shopper's language when the colour vocabulary has it ("black" -> "黑色"); the
    catalog's own word otherwise."""
    if language == "en":
        return value
    names = [word for word, canonical in COLOURS.items() if canonical == value.lower() and word != canonical
             and (_CJK.search(word) is not None) == (language in ("zh", "ja"))]
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


__all__ = ["ASPECTS", "Citation", "Option", "ProductAnswer", "ProductSheet", "answer_question",
           "asked_colour", "asked_sizes", "asks_a_fact", "asks_about_a_product", "is_question", "names_the_product",
           "option_matches", "question_about_view", "read_catalog", "skill"]
