"""Whether a shopper's message is a question about a product that the catalog should answer, and which product:
the routing half of the product question skill (`bot.skills.product_qa` answers). The policy reads
`asks_about_a_product` and `question_about_view` as signals beside the classifier's intent; the skill reads
`product_in_question`. The tables that read a question (aspects, units, stock, price, weight, options) live here
because both halves read them.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from bot.skills.base import Turn
from bot.understanding import ParsedMessage
from commerce.catalog.errors import ProductNotFound
from commerce.catalog.models import Product
from commerce.catalog.service import find_variants, get_product, get_products
from commerce.search.service import named_products
from nlu.service import CATALOG_EXTRACTOR

LATIN = re.compile(r"[a-z0-9][a-z0-9+\-']*")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
REFERS_TO_VIEW = re.compile(r"\b(this|it|that|these|those|they|them)\b|这|那|它", re.IGNORECASE)
# Looking for products rather than asking about one ("do you have...", "有没有...").
LOOKING_FOR = re.compile(r"\b(do you (have|sell|carry|stock)|have you got|got any|any\b|show me|looking for|i want|"
                         r"i need|(is|are) there)\b|有没有|有卖|有什么|想买|要买|找|推荐|哪款|^\s*有", re.IGNORECASE)
# A message phrased as a question (en, zh): a question mark, a final particle (吗, 不, dialect 伐), an A-not-A pair,
# a question word, or an English question's first word.
# An English question may open any clause ("my dog chews everything. would this one survive"), and "how much" can
# close one ("longjing 250g how much").
QUESTION_SHAPED = re.compile(r"[?？]|[么不][\s。！!]*$|(?<![讨征步砍采])伐[\s。！!]*$|"
                             r"[吗呢嘛没](?=[\s。！!，,]|$)|(.)不\1|还是|有没有|是不是|"
                             r"能不能|可不可以|"
                             r"会不会|多少|几|什么|怎么|是否|多久|多大|多重|"
                             r"(?:^|[.,;!:]\s*)(is|are|does|do|did|can|could|will|would|should|has|have|how|what|"
                             r"which)\b(?!')|\bhow (much|many|long|tall|big|heavy)\s*$", re.IGNORECASE)


# A Chinese noun's bare suffix: 杯子 is 杯 (a cup), found in 茶杯 (teacup).
_NOUN_SUFFIX = re.compile(r"(?<=[\u4e00-\u9fff])[子儿]$")
_ARTICLES = frozenset({"the", "and", "for", "with"})
# What a question asks about, by the words it uses (en, zh), and the words that answer it in a listing.
# An aspect's evidence is a regular expression over the product's own text; no evidence found = "I don't know".
ASPECTS: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    name: (re.compile(asked, re.IGNORECASE), re.compile(evidence, re.IGNORECASE)) for name, asked, evidence in (
        ("waterproof", r"waterproof|water[- ]?proof|water[- ]resistant|\brain\b|splash|\bpool\b|\bswim|shower|submerg|"
         r"underwater|in the water|\bfloat|\bsweat|防水|防雨|泼水|泡水|进水|水里|水中|下水|游泳|淋浴|能浮|会浮|漂浮|"
         r"出汗|汗水",
         r"waterproof|water[- ]?resistant|water[- ]?repellent|splash|drizzle|\bipx?\d|\brain\b|\bfloats?\b|"
         r"防水|防泼|防雨|泼溅|浮在水"),
        ("noise", r"\bloud|nois[ey]|\bquiet|silent|\bdb\b|decibels?|噪音|声音|吵|安静|静音|分贝",
         r"\bloud|nois[ey]|\bquiet|silent|\d\s?db\b|decibel|噪音|静音|安静|分贝"),
        ("battery", r"battery|batteries|charge lasts|last[s]? on a charge|battery life|电池|续航",
         r"battery|batteries|\bmah\b|\d+\s?hours?\b|电池|续航|毫安"),
        ("material", r"made of|made from|material|fabric|\bcotton\b|\bwool\b|leather|plastic|wood(en)?\b|\bmetal\b|"
         r"\bsteel\b|ceramic|porcelain|\bglass\b|\b(real|genuine)\s+(silk|leather|jade|wool|wood|linen|cotton)\b|"
         r"材质|面料|材料|什么做的|纯棉|塑料|木头|木质|金属|陶瓷|玻璃的|实木|真皮|皮的|牛皮|真的?[玉丝]|真丝吗",
         r"cotton|wool|linen|silk|leather|steel|bamboo|ceramic|porcelain|clay|stoneware|glass|plastic|wood|beech|"
         r"melamine|aluminium|polycarbonate|silicone|\bjade\b(?![\s-]green)|\btpu\b|"
         r"canvas|merino|cloth|polyester|nylon|rubber|\beva\b|down\b|棉|羊毛|麻|丝|皮革|真皮|牛皮|钢|竹|陶|瓷|玻璃|木|帆布|"
         r"密胺|铝|聚碳酸酯|硅胶|玉|尼龙|塑料|(?<![分发宣公散遍])布"),
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
        ("duration", r"how long (does|do|should|will|can|to|until|before|for)\b|for how long|"
         r"how many (hours?|hrs?|minutes?|mins?)\b|多久|多长时间|几分钟|几小时|几个小时|多少(个)?小时|多少分钟",
         r"\d+\s?(hours?|hrs?|minutes?|mins?|days?|weeks?|months?)\b|\b(one|two|three|four|five|six|eight|ten|twelve|"
         r"fifteen|twenty|thirty|an?)\s+(hours?|minutes?|days?|weeks?|months?)\b|小时|分钟|\d+\s?(天|周|个月)|数周|"
         r"[一二两三四五六七八九十]+(天|周|个月)"),
        ("dimensions", r"dimension|how big|how large|how long is|measure|"
         r"\bsize\b.{0,20}\bwhen (finished|assembled|built|complete[d]?|done)\b|finished size|尺寸|多大|多长|多宽|"
         r"成品多大|拼好(后|以后)?多大",
         r"\d\s?(cm|mm|m)\b|\d+\s?[x×]\s?\d+|[\d一二两三四五六七八九十半]\s?(厘米|毫米|米)"),
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
         r"[- ]old|\d+\s?(-\s?)?(months?|mos?)[- ]old|\d*\s?yo\b|小孩|儿童|孩子|婴|宝宝|几岁|岁|多大的孩子|年龄",
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
        ("contents", r"what (exactly )?(do|will) (i|you|we) get\b|what('s| is| comes) in (the|this|a) (set|box|"
         r"pack|package|kit|bundle)\b|what('s| is) included|(套装|盒子|包装|一套)里?(有|包含|包括)(什么|啥|哪些)|"
         r"包含(什么|哪些)|都有(什么|啥)东西",
         r"\bwith\b|includ|comes? with|\bplus\b|\bset of\b|配|含|包括|附"),
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
QUANTITY = re.compile(r"\d+(?:\.\d+)?\s?(?:-\s?)?(" + "|".join(a for a, _ in UNITS.values()) + ")", re.IGNORECASE)
STOCK_ASKED = re.compile(r"in stock|available|still have|sold out|back in|can i (still )?(buy|order)|有货|还有|现货|"
                         r"缺货|库存|能买|可以买|买得到|能下单|卖完|断货", re.IGNORECASE)
# Shoppers' shorthand, read as the words they stand for before a question's cues are looked for ("hw long", "r they").
SHORTHAND = {"hw": "how", "hws": "how is", "u": "you", "r": "are", "ur": "your", "wat": "what", "wot": "what",
              "pls": "please", "plz": "please", "doe": "does", "dose": "does", "thru": "through"}
SHORTHAND_WORD = re.compile(r"\b(" + "|".join(map(re.escape, SHORTHAND)) + r")\b", re.IGNORECASE)


# The words an English question opens with, as a typo of them is read ("wil it fit", "dose it", "cna i"): a letter
# left out or two letters swapped, in a word of three letters or more that is no word itself ("cold", "hat", "ill":
# "ill take it" is "I'll take it").
_OPENERS = ("will", "would", "could", "should", "does", "have", "what", "which", "can", "are", "how", "is")
_REAL_WORDS = frozenset({"cold", "hat", "wold", "ill", "ave", "des", "dos", "oes", "rae", "aer", "acn"})


def _typos_of(word: str) -> set[str]:
    dropped = {word[:i] + word[i + 1:] for i in range(len(word))}
    swapped = {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1)}
    return (dropped | swapped) - {word}


_TYPOS = {typo: word for word in _OPENERS for typo in _typos_of(word) if len(typo) >= 3 and typo not in _OPENERS
          and typo not in _REAL_WORDS}
_TYPO_OPENER = re.compile(r"(?:^|(?<=[.,;!:?]\s)|(?<=[.,;!:?]))\s*\b(" + "|".join(map(re.escape, _TYPOS)) + r")\b",
                          re.IGNORECASE)


def read_shorthand(text: str) -> str:
    """The message with shoppers' shorthand ("hw long", "r they", 啥 for 什么) and a typo of a question's first word
    ("wil it") read as the words they stand for."""
    text = SHORTHAND_WORD.sub(lambda m: SHORTHAND[m.group(1).lower()], text).replace("啥", "什么")  # colloquial zh
    return _TYPO_OPENER.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + _TYPOS[m.group(1).lower()], text)


def is_question(text: str) -> bool:
    """Whether the message is phrased as a question, shorthand and typos of question words read first ("r they
    genuine leather", "wil my feet stay dry")."""
    return QUESTION_SHAPED.search(read_shorthand(text)) is not None


def first_clause(text: str) -> str:
    """The message up to its first clause break: "is the keyboard a uk layout? i need the £ key" asks about the
    keyboard; the need that follows is why, not a search."""
    return next((c for c in re.split(r"[?？,，.。;；!！]", text) if c.strip()), text)


# Asking for something else than the product in view ("what do you recommend for a 5 year old?").
RECOMMENDING = re.compile(r"\b(recommend|suggest|alternatives?|something (else|for|similar)|gift for|similar|"
                          r"cheaper)\b|推荐|有什么好|送什么|别的|其他的|类似|更便宜", re.IGNORECASE)
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
# An order or a delivery named in words ("where is my order", "多久能到"): an order or shipping guess is then the
# shop's, even with a product in view (`names_an_order_or_delivery`).
ORDER_OR_DELIVERY = re.compile(r"\b(orders?|ordered|parcel|package|tracking|track|arriv\w*|get here|ship\w*|"
                               r"deliver\w*|postage|dispatch\w*)\b|订单|单号|包裹|物流|快递|到货|到了|能到|"
                               r"几天到|多久到|寄到|送到|发货|运费|邮费|配送", re.IGNORECASE)
# A Chinese question that drops its subject ("能给switch充电不", "适合敏感肌吗"): the subject is the product in view.
SUBJECT_DROPPED = re.compile(r"^\s*(能不能|能|可不可以|可以|会不会|会|适不适合|适合|支不支持|支持|需不需要|需要|"
                             r"要不要)")


def own_names(title: Mapping[str, str], tags: Sequence[str], brand: str | None, slug: str) -> str:
    """A product's own names as one lower-case text: its titles, tags, brand and slug words."""
    return " ".join([*title.values(), *tags, brand or "", slug.replace("-", " ")]).lower()


def names_product(names: str, word: str) -> bool:
    """Whether `word` (a product word of the message) names the product whose own names (`own_names`) are `names`:
    the one rule for "which product does this word mean". A Chinese word, less a bare noun suffix (杯子 is 杯, found
    in 茶杯), is inside them; every English word of three letters or more starts one of their words, or shares its
    stem ("lip balms": Lip Balm; "the panda plushie" is not a Go set; "防晒" asked of a lip balm is what the question
    asks about, not its name)."""
    word = _NOUN_SUFFIX.sub("", word.strip().lower())
    if not word:
        return False
    if CJK.search(word):
        return word in names
    parts = [w for w in LATIN.findall(word) if len(w) > 2 and w not in _ARTICLES]
    own = LATIN.findall(names)
    return bool(parts) and all(any(t.startswith(p.rstrip("s")) or stem(p) == stem(t) for t in own) for p in parts)



def stem(word: str) -> str:
    """An English word less a plural or past/progressive ending, when a stem of four letters or more is left."""
    for ending in ("ing", "ed", "es", "s"):
        if word.endswith(ending) and len(word) - len(ending) >= 4:
            return word[: -len(ending)]
    return word


def asks_a_fact(parsed: ParsedMessage) -> bool:
    """Whether the message asks something a listing can say: an aspect, a quantity, options, a size or colour,
    stock, price or weight ("can i get the lavender ones in 44-45", "will it fit my cup holder")."""
    text = parsed.text
    return (any(asked.search(text) for asked, _ in ASPECTS.values()) or bool(QUANTITY.search(text))
            or any(pattern.search(text) for pattern in (STOCK_ASKED, PRICE_ASKED, WEIGHT_ASKED, OPTIONS_ASKED))
            or bool(parsed.entity_values("size")) or bool(parsed.entity_values("colour")))


# A yes/no question about a thing ("can the panda plushie go in the washing machine", "红参眼霜有香味吗"): with a
# product named, it asks about that product, not for a list ("which tea is best for sleep?", "有茶吗" are searches).
YES_NO = re.compile(r"^\s*(is|are|does|do|did|can|could|will|would|should|has|have)\b|"
                     r"[吗么没不](?=[\s。！!？?，,]|$)|(?<![讨征步砍采])伐[\s。！!？?]*$|(.)不\2|"
                     r"\bhow (much|many|tall|big|long|heavy)\b", re.IGNORECASE)


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
        if len(name) >= (2 if CJK.search(name) else 3):
            rest = rest.replace(name, " ")
    asked_outside = (any(asked.search(rest) for asked, _ in ASPECTS.values()) or bool(QUANTITY.search(rest))
                     or bool(parsed.entity_values("size")))  # "老北京布鞋有35码吗": a size of that product
    named = any(known for _, known in names) or any(
        len(name) >= (3 if CJK.search(name) else 4) for name, _ in names)
    if not in_view:
        # Named, not in view: a property question ("is the wok dishwasher safe?", "茉莉龙珠能泡几次", even if
        # the classifier said search) or a yes/no question or price/stock question about it ("longjing 250g how
        # much", "大红袍还有货没"); "do you have a red hoodie in large?", "有防水的背包吗" are searches.
        cue = asked_outside or any(p.search(rest) for p in (STOCK_ASKED, PRICE_ASKED, WEIGHT_ASKED, OPTIONS_ASKED))
        return (named and (cue or YES_NO.search(rest) is not None) and not LOOKING_FOR.search(text)
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
    return (in_view and is_question(text) and LOOKING_FOR.search(first_clause(text)) is None
            and RECOMMENDING.search(text) is None and PAYING_OR_SHIPPING.search(text) is None)


def names_an_order_or_delivery(text: str, *, order_number: bool, country: bool) -> bool:
    """Whether the message names what an order-status or shipping question is about: an order number, a country
    (a destination), or an order or a delivery in words. Without any, such a guess about a question asked with a
    product in view ("是304还是316钢的" as order_status, "送不送蒸笼纸" as shipping) is about the product."""
    return order_number or country or ORDER_OR_DELIVERY.search(text) is not None


def name_without_aspects(value: str) -> str:
    """A product name as the extractor found it, less the words a question asks with: catalog vocabulary runs on
    through "收纳袋防水" (防水 is in some title too), and the name is "收纳袋". Empty when nothing names a product."""
    for asked, _ in ASPECTS.values():
        value = asked.sub(" ", value)
    value = re.sub(r"\s+", " ", value).strip(" 的")
    return value if len(value) >= (2 if CJK.search(value) else 3) else ""


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
                not loose or known or len(str(entity.value)) < (2 if CJK.search(str(entity.value)) else 3)):
            continue
        if entity.entity != "product":
            continue
        if not any(asked.search(str(entity.value)) for asked, _ in ASPECTS.values()) or entity is subject:
            words += [str(entity.value), turn.text[span["start"]:span["end"]]]
        elif name := name_without_aspects(str(entity.value)):
            words.append(name)
    return list(dict.fromkeys(words))


async def _fits_in_view(turn: Turn, product_id: int, named: list[str]) -> bool:
    """Whether a word naming a product also names the product in view (`names_product`: "杯子", which the extractor
    also reads as "mug", looking at a teacup set: those cups, not the mug; "the panda plushie" looking at a Go set:
    no)."""
    try:
        product = await get_product(turn.session, product_id=product_id)
    except ProductNotFound:
        return False
    names = own_names(dict(product.title), tuple(product.tags), product.brand, product.slug)
    return any(names_product(names, word) for word in named)


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
    return {a + b for a, b in zip(text, text[1:], strict=False) if CJK.match(a) and CJK.match(b)}


async def _best_titled(turn: Turn, candidates: list[int]) -> list[int]:
    """The named candidates, the one whose title shares clearly more words with the message first ("the trail running
    shoes" names the trail shoes, not the first running shoes; "氮化镓充电器" the GaN charger: CJK bigrams, as single
    characters are shared by unrelated titles), search order otherwise."""
    if len(candidates) < 2:
        return candidates
    products = await get_products(turn.session, product_ids=candidates)
    text = turn.text.lower()
    latin = {w for w in LATIN.findall(text) if len(w) > 2}
    chars = _cjk_bigrams(text)

    def shared(product_id: int) -> int:
        product = products.get(product_id)
        if product is None:
            return 0
        title = " ".join(product.title.values()).lower()
        words = {w for w in LATIN.findall(title) if len(w) > 2}
        return len(latin & words) + len(chars & _cjk_bigrams(title))

    best = max(candidates, key=shared)  # the first of the best
    # Only a clearly better title moves ahead of the search's first (two shared words or bigrams more): one shared
    # bigram is chance ("充电宝能带上飞机吗" shares 充电 with the desk lamp's "充电口", none with the power bank's).
    if shared(best) >= shared(candidates[0]) + 2:
        return [best, *(i for i in candidates if i != best)]
    return candidates


__all__ = ["ASPECTS", "CJK", "LATIN", "LOOKING_FOR", "PAYING_OR_SHIPPING", "QUESTION_SHAPED", "RECOMMENDING",
           "REFERS_TO_VIEW", "SUBJECT_DROPPED", "YES_NO", "asks_a_fact", "asks_about_a_product", "first_clause",
           "is_question", "name_without_aspects", "names_product", "naming_words", "own_names", "product_in_question",
           "question_about_view", "read_shorthand", "stem", "subject_entity"]
