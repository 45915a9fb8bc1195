"""A generated shop catalog with known truth, for search quality at 10k / 100k products (bench/search_quality.py).

`generate(n, seed=25)` is deterministic: product i depends only on the seed and i, so the first 10,000 products of
the 100k catalog are the 10k catalog. Each product has a kind (running shoes, dress, kettle, ...) in a category, a
brand, a material, colours and (for shoes and clothes) sizes as variants, a price, and en + zh titles and
descriptions; a share of products are English-only or Chinese-only (as imported listings often are), which is what
cross-lingual queries are measured on. Some descriptions mention other kinds ("socks cushioned for running shoes"),
the loose neighbours that category intent must rank below the real thing.

`grade(query, product)` is the graded relevance (0-3) of bench/data/search_queries_generated.json's structured
queries, derived from the generator's truth (never from what search returned):

- 3: the kind asked for (or the category / brand when no kind is asked) AND every attribute asked (brand, colour,
  size, price at most) holds for one in-stock variant;
- 2: the kind asked for, but an asked attribute does not hold;
- 1: another kind of the same category ("trail shoes" for "running shoes");
- 0: anything else.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

SEED = 25

# category slug -> (en, zh)
CATEGORIES: dict[str, tuple[str, str]] = {
    "shoes": ("Shoes", "鞋履"), "clothing": ("Clothing", "服装"), "bags": ("Bags & luggage", "箱包"),
    "kitchen": ("Kitchen", "厨房用品"), "electronics": ("Electronics", "数码电子"),
}
SHOE_SIZES = tuple(str(s) for s in range(36, 47))
CLOTHING_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
# kind -> (category, en, zh, base price EUR, sizes, materials (en, zh))
KINDS: dict[str, tuple[str, str, str, int, tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "running-shoes": ("shoes", "running shoes", "跑鞋", 90, SHOE_SIZES, (("mesh", "网面"), ("knit", "针织"))),
    "trail-shoes": ("shoes", "trail shoes", "越野鞋", 110, SHOE_SIZES, (("mesh", "网面"), ("nylon", "尼龙"))),
    "sneakers": ("shoes", "sneakers", "板鞋", 70, SHOE_SIZES, (("canvas", "帆布"), ("leather", "皮革"))),
    "sandals": ("shoes", "sandals", "凉鞋", 40, SHOE_SIZES, (("rubber", "橡胶"), ("leather", "皮革"))),
    "slippers": ("shoes", "slippers", "拖鞋", 25, SHOE_SIZES, (("wool", "羊毛"), ("cotton", "棉"))),
    "boots": ("shoes", "boots", "靴子", 130, SHOE_SIZES, (("leather", "皮革"), ("suede", "麂皮"))),
    "loafers": ("shoes", "loafers", "乐福鞋", 100, SHOE_SIZES, (("leather", "皮革"), ("suede", "麂皮"))),
    "dress": ("clothing", "dress", "连衣裙", 60, CLOTHING_SIZES,
              (("cotton", "棉"), ("silk", "真丝"), ("linen", "亚麻"))),
    "t-shirt": ("clothing", "t-shirt", "T恤", 20, CLOTHING_SIZES, (("cotton", "棉"), ("linen", "亚麻"))),
    "hoodie": ("clothing", "hoodie", "连帽卫衣", 45, CLOTHING_SIZES, (("cotton", "棉"), ("fleece", "抓绒"))),
    "jacket": ("clothing", "jacket", "夹克", 95, CLOTHING_SIZES, (("nylon", "尼龙"), ("denim", "牛仔"))),
    "jeans": ("clothing", "jeans", "牛仔裤", 55, CLOTHING_SIZES, (("denim", "牛仔"),)),
    "sweater": ("clothing", "sweater", "毛衣", 65, CLOTHING_SIZES, (("wool", "羊毛"), ("cashmere", "羊绒"))),
    "skirt": ("clothing", "skirt", "半身裙", 40, CLOTHING_SIZES, (("cotton", "棉"), ("linen", "亚麻"))),
    "socks": ("clothing", "socks", "袜子", 10, CLOTHING_SIZES, (("cotton", "棉"), ("wool", "羊毛"))),
    "backpack": ("bags", "backpack", "双肩包", 60, (), (("nylon", "尼龙"), ("canvas", "帆布"))),
    "tote-bag": ("bags", "tote bag", "托特包", 30, (), (("canvas", "帆布"), ("leather", "皮革"))),
    "suitcase": ("bags", "suitcase", "行李箱", 150, (), (("polycarbonate", "聚碳酸酯"), ("aluminium", "铝合金"))),
    "wallet": ("bags", "wallet", "钱包", 35, (), (("leather", "皮革"),)),
    "kettle": ("kitchen", "electric kettle", "电水壶", 50, (), (("stainless steel", "不锈钢"), ("glass", "玻璃"))),
    "teapot": ("kitchen", "teapot", "茶壶", 30, (), (("ceramic", "陶瓷"), ("glass", "玻璃"), ("clay", "紫砂"))),
    "frying-pan": ("kitchen", "frying pan", "平底锅", 40, (), (("cast iron", "铸铁"), ("stainless steel", "不锈钢"))),
    "mug": ("kitchen", "mug", "马克杯", 15, (), (("ceramic", "陶瓷"), ("stoneware", "粗陶"))),
    "cutting-board": ("kitchen", "cutting board", "砧板", 25, (), (("bamboo", "竹"), ("wood", "木"))),
    "headphones": ("electronics", "headphones", "耳机", 80, (), (("wireless", "无线"), ("wired", "有线"))),
    "speaker": ("electronics", "bluetooth speaker", "蓝牙音箱", 60, (), (("waterproof", "防水"), ("portable", "便携"))),
    "power-bank": ("electronics", "power bank", "充电宝", 35, (), (("compact", "小巧"), ("fast-charging", "快充"))),
    "keyboard": ("electronics", "keyboard", "键盘", 75, (), (("mechanical", "机械"), ("wireless", "无线"))),
    "desk-lamp": ("electronics", "desk lamp", "台灯", 40, (), (("led", "LED"), ("dimmable", "可调光"))),
}
COLOURS: dict[str, str] = {"red": "红色", "blue": "蓝色", "black": "黑色", "white": "白色", "green": "绿色",
                           "pink": "粉色", "grey": "灰色", "yellow": "黄色", "brown": "棕色"}
ADJECTIVES = (("lightweight", "轻便"), ("classic", "经典"), ("premium", "高端"), ("everyday", "日常"),
              ("vintage", "复古"), ("minimalist", "简约"))
BRANDS = ("Stridelab", "Northpeak", "Kestrel", "Voltnest", "Brewhaus", "Tidewalk", "Lumio", "Huayi", "Kilnworks",
          "Harbourhide", "Jadeleaf", "Pandaplay", "Greenstalk", "Keyloom", "Moonpetal", "Lilong", "Ridgeway",
          "Saltmarsh", "Copperfox", "Bluefin", "Orchard", "Granite", "Silkroad", "Emberly", "Foxglove", "Quayside",
          "Windrose", "Lanternfly", "Birchwood", "Cloudpine")
# Loose neighbours: a kind whose description names another kind.
MENTIONS: dict[str, tuple[str, str, str]] = {
    "socks": ("running-shoes", "Cushioned for running shoes and sneakers.", "适合搭配跑鞋和板鞋。"),
    "slippers": ("boots", "Warm after a day in boots.", "穿完靴子回家换上很暖和。"),
    "tote-bag": ("suitcase", "Folds into any suitcase.", "可折叠放进行李箱。"),
    "mug": ("teapot", "Goes well with any teapot.", "和茶壶很搭。"),
    "power-bank": ("headphones", "Charges headphones and phones.", "可以给耳机和手机充电。"),
}
LANGUAGES = (("en", "zh"),) * 4 + (("en",),) * 3 + (("zh",),) * 3  # 40 % both, 30 % English only, 30 % Chinese only


@dataclass(frozen=True)
class Truth:
    kind: str
    category: str
    brand: str
    languages: tuple[str, ...]
    # (colour, size or "", price EUR, in stock) per variant
    variants: tuple[tuple[str, str, Decimal, bool], ...]


def product(i: int, seed: int = SEED) -> tuple[dict[str, Any], Truth]:
    """Product number i (1-based) of the catalog: the demo catalog's JSON shape plus its truth."""
    rng = random.Random(f"{seed}:{i}")
    kind = rng.choice(sorted(KINDS))
    category, kind_en, kind_zh, base, sizes, materials = KINDS[kind]
    brand = rng.choice(BRANDS)
    adjective_en, adjective_zh = rng.choice(ADJECTIVES)
    material_en, material_zh = rng.choice(materials)
    colours = rng.sample(sorted(COLOURS), rng.randint(1, 2))
    first = rng.randrange(0, max(1, len(sizes) - 3)) if sizes else 0
    picked_sizes = sizes[first:first + rng.randint(2, 4)] if sizes else ("",)
    price = (Decimal(base) * Decimal(str(round(rng.uniform(0.6, 1.6), 2)))).quantize(Decimal("1")) - Decimal("0.10")
    languages = rng.choice(LANGUAGES)
    sold_out = i % 10 == 0
    title = {"en": f"{brand} {adjective_en.title()} {material_en.title()} {kind_en.title()}",
             "zh": f"{brand} {adjective_zh}{material_zh}{kind_zh}"}
    colour_en = ", ".join(colours)
    colour_zh = "、".join(COLOURS[c] for c in colours)
    description = {
        "en": f"A {adjective_en} {kind_en} in {material_en} by {brand}. Comes in {colour_en}.",
        "zh": f"{brand}出品的{adjective_zh}{material_zh}{kind_zh}，有{colour_zh}可选。"}
    if kind in MENTIONS and rng.random() < 0.5:
        description["en"] += " " + MENTIONS[kind][1]
        description["zh"] += MENTIONS[kind][2]
    variants = []
    truth_variants = []
    for colour in colours:
        for size in picked_sizes:
            attributes = {"colour": colour, **({"size": size} if size else {})}
            sku = f"G{i}-{colour.upper()}{('-' + size) if size else ''}"
            variants.append({"sku": sku, "attributes": attributes, "stock": 0 if sold_out else 5})
            truth_variants.append((colour, size, price, not sold_out))
    data = {
        "slug": f"g{i}-{kind}", "category": category, "brand": brand,
        "title": {lang: title[lang] for lang in languages},
        "description": {lang: description[lang] for lang in languages},
        "tags": [kind_en, material_en] if "en" in languages else [kind_zh, material_zh],
        "base_price": str(price), "currency": "EUR", "variants": variants,
    }
    return data, Truth(kind=kind, category=category, brand=brand, languages=languages,
                       variants=tuple(truth_variants))


def generate(n: int, seed: int = SEED) -> tuple[dict[str, Any], list[Truth]]:
    """The first n products (demo catalog shape: {"categories", "products"}) and their truths, in order."""
    pairs = [product(i, seed) for i in range(1, n + 1)]
    categories = [{"slug": slug, "name": {"en": en, "zh": zh}} for slug, (en, zh) in CATEGORIES.items()]
    return {"categories": categories, "products": [p for p, _ in pairs]}, [t for _, t in pairs]


def grade(query: dict[str, Any], truth: Truth) -> int:
    """Graded relevance 0-3 of a product for a structured query (see the module's docstring)."""
    spec = query["spec"]
    if spec.get("kind"):
        right = truth.kind == spec["kind"]
    elif spec.get("category"):
        right = truth.category == spec["category"]
    else:
        right = bool(spec.get("brand")) and truth.brand == spec["brand"]
    if not right:
        return 1 if spec.get("kind") and truth.category == KINDS[spec["kind"]][0] else 0
    if spec.get("brand") and truth.brand != spec["brand"]:
        return 2
    price_max = Decimal(str(spec["price_max"])) if spec.get("price_max") is not None else None
    fits = any(stocked and (not spec.get("colour") or colour == spec["colour"])
               and (not spec.get("size") or size == spec["size"])
               and (price_max is None or price <= price_max)
               for colour, size, price, stocked in truth.variants)
    return 3 if fits else 2


def kind_name(kind: str, language: str) -> str:
    return KINDS[kind][1] if language == "en" else KINDS[kind][2]
