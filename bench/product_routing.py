"""The learned product-question model (`bot.skills.product_question_model`): trained and cross-validated by set.

Every question of the product-question sets (tuning, held-out, blind 1-3) should reach the product question skill
(to answer or to refuse); no message of the shopper-words sets (searches, cart, shipping, small talk, first
messages with nothing in view) should, nor the generated negatives below (cart orders, shipping, payment, orders,
small talk, searches for other products), each sent both with a product in view and without. Each message is parsed
by the demo shop's real NLU (`bench/_shop_bot.py`), then:

- `cv`: leave one group of sets out (train on the others, test on it; the generated negatives are always in
  training, never tested): the model alone, the rules alone (the policy's `decide` with the rules' signals) and the
  policy with rules + model, each as "routed to product_question" against the label. Grouped by who wrote them:
  `tuning` (product_qa + heldout, written beside the skill), `blind1`, `blind2` (+ shopper_words_blind),
  `blind3` (+ shopper_words_blind3).
- `--write`: fit on everything and write `bot/skills/product_question_model.json`.

    python bench/product_routing.py [--write] [--c 1.0] [--threshold 0.5] [--cv-c 0.3,1,3] [--cv-threshold 0.5,0.7]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401  (the project on the path, models offline)

DATA = Path(__file__).resolve().parent / "data"
GROUPS = {
    "tuning": [("product_qa.json", True), ("product_qa_heldout.json", True)],
    "blind1": [("product_qa_blind.json", True)],
    "blind2": [("product_qa_blind2.json", True), ("shopper_words_blind.json", False)],
    "blind3": [("product_qa_blind3.json", True), ("shopper_words_blind3.json", False)],
}
# Messages that are not questions about a product, written for this model (never tested on): each is sent with a
# product in view and without.
GENERATED_NEGATIVES = """
add it to my cart|add two of these to my basket|put this in my cart please|i'll take it|buy it now|i want to buy this
remove it from my cart|empty my cart|what's in my cart|checkout|i want to check out|add the black one in M to my cart
change the quantity to 3|take the kettle out of my basket|add 2 more|yes add it|proceed to payment
how much is shipping to japan?|do you ship to canada?|how long does delivery take to germany|when will it arrive?
can i pay with paypal?|what currencies do you accept|do i have to pay customs duties?|what is your return policy?
can i return it if it doesn't fit?|how do i get a refund|is shipping free over 50 euros?
which countries do you deliver to|how long will my parcel take
what payment methods do you take|prices in dollars please|can you send it to my office
where is my order?|track my order 10023|has my parcel shipped|i want to cancel my order|my order hasn't arrived yet
hi|hello there|good morning|hey|thanks!|thank you so much|bye|see you later|ok|yes please|no thanks|great|cool|perfect
can i talk to a human|i want to speak to someone|get me an agent|this is useless, let me talk to a person
my kettle arrived broken|the item i received is damaged|i'm not happy with my order|you sent me the wrong size
show me running shoes|do you have any backpacks?|i'm looking for a gift for my mom
what do you recommend for a 5 year old?|show me something cheaper
do you sell phone chargers?|show me more like this|what else do you have|what's on sale
best sellers?|headphones under 50 euros|something similar but cheaper|any other teapots?|i need a yoga mat
what can you do?|help|what are your opening hours?|where are you located?|do you have a physical store?
how do i contact you?
加入购物车|把这个加到购物车|我要两个|买这个|帮我下单|从购物车删掉|清空购物车|看看购物车|去结账|数量改成3个|再来一个|就要这个了
运费多少|寄到日本要多少钱|发货到加拿大吗|多久能到|什么时候发货|可以用支付宝吗|支持微信支付吗|要交关税吗|怎么退货|可以退款吗
包邮吗|几天能到|能寄到美国吗|用美元付可以吗|不合适能退吗|退货运费谁出
我的订单到哪了|查一下订单10023|我要取消订单|快递怎么还没到|发货了没有
你好|在吗|谢谢|多谢|再见|拜拜|好的|是的|不用了|嗯|好|晚安|早上好
转人工|我要找客服|有人吗|找个真人|让客服跟我说
收到的东西坏了|质量太差了我要投诉|发错货了|包装破了
有没有跑鞋|我想买个背包|推荐一个送妈妈的礼物|有便宜一点的吗|还有别的吗|给我看看耳机|有什么茶|五岁小孩玩什么好|类似的还有吗
我想要个保温杯|看看别的|有打折的吗|最畅销的是哪个
你能做什么|帮助|怎么联系你们|你们有实体店吗|营业时间
"""


def generated() -> list[tuple[str, bool, bool]]:
    """(text, in view, label) for each generated negative, with and without a product in view."""
    texts = [t.strip() for line in GENERATED_NEGATIVES.strip().splitlines() for t in line.split("|") if t.strip()]
    return [(text, in_view, False) for text in texts for in_view in (True, False)]


def group_items(files: list[tuple[str, bool]]) -> list[tuple[str, bool, bool]]:
    items = []
    for name, positive in files:
        for item in json.loads((DATA / name).read_text("utf-8"))["items"]:
            if positive:
                items.append((item["question"], bool(item.get("view")), True))
            else:
                items.append((item["text"], False, False))
    return items


async def parse_all(nlu: Any, texts: list[str]) -> dict[str, Any]:
    return {text: await nlu.parse(text) for text in dict.fromkeys(texts)}


def fit(rows: np.ndarray, labels: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    model.fit(rows, labels)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def scores(routed: list[bool], labels: list[bool]) -> dict[str, Any]:
    pos = [r for r, y in zip(routed, labels, strict=True) if y]
    neg = [r for r, y in zip(routed, labels, strict=True) if not y]
    right = sum(r == y for r, y in zip(routed, labels, strict=True))
    return {"n": len(labels), "accuracy": round(right / len(labels), 4),
            "positives": len(pos), "recall": round(sum(pos) / len(pos), 4) if pos else None,
            "negatives": len(neg), "false_positive_rate": round(sum(neg) / len(neg), 4) if neg else None}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from dataclasses import replace

    from _shop_bot import demo_shop_bot

    from bot.engine import message_signals
    from bot.policy import decide
    from bot.skills.cart import asks_before_buying, asks_rather_than_orders
    from bot.skills.product_question_model import (
        SIGNALS,
        ProductQuestionModel,
        features,
        learned_product_question,
        load_model,
    )
    from bot.skills.product_routing import asks_about_a_product

    groups = {name: group_items(files) for name, files in GROUPS.items()}
    extra = generated()
    async with demo_shop_bot("product_routing") as shop:
        parsed = await parse_all(shop.deps.nlu, [t for items in [*groups.values(), extra] for t, _, _ in items])
        thresholds = shop.deps.policy

    def rows_of(items: list[tuple[str, bool, bool]]) -> tuple[np.ndarray, np.ndarray]:
        rows = [features(parsed[t], in_view=v) for t, v, _ in items]
        if any(r is None for r in rows):
            raise SystemExit("the served NLU gave no encoder row: the model cannot be trained")
        return np.stack([r for r in rows if r is not None]), np.asarray([y for _, _, y in items])

    def rules_only(p: Any, in_view: bool) -> Any:
        signals = message_signals(p, shown=in_view, in_cart=False)
        return replace(signals, asks_about_a_product=asks_about_a_product(p, in_view=in_view),
                       asks_before_buying=asks_before_buying(p))

    def cross_validate(c: float, threshold: float) -> dict[str, Any]:
        folds: dict[str, Any] = {}
        # The generated negatives are a fold too: every other text (both ways) tested, the rest trained.
        odd = [item for i, item in enumerate(extra) if (i // 2) % 2]
        even = [item for i, item in enumerate(extra) if not (i // 2) % 2]
        for held, test in [*groups.items(), ("generated_odd", odd)]:
            train = [i for name, items in groups.items() if name != held for i in items] + (
                even if held == "generated_odd" else extra)
            x, y = rows_of(train)
            weights, bias = fit(x, y, c)
            model = ProductQuestionModel(weights=weights, bias=bias, threshold=threshold)
            tx, ty = rows_of(test)
            labels = [bool(v) for v in ty]
            alone = [model.probability(r) >= threshold for r in tx]
            rules, with_model = [], []
            for text, in_view, _ in test:
                p = parsed[text]
                base = rules_only(p, in_view)
                rules.append(decide(p, thresholds=thresholds, signals=base).intent == "product_question")
                # The policy with this fold's model (the engine reads the shipped file; here the fold's is passed).
                learned = learned_product_question(p, in_view=in_view, model=model)
                signals = replace(base, asks_about_a_product=base.asks_about_a_product or learned,
                                  asks_before_buying=base.asks_before_buying
                                  or (learned and asks_rather_than_orders(text)))
                with_model.append(decide(p, thresholds=thresholds, signals=signals).intent == "product_question")
            folds[held] = {"model_alone": scores(alone, labels), "rules": scores(rules, labels),
                           "rules_and_model": scores(with_model, labels)}
            if args.misses:
                folds[held]["misses"] = [{"text": t, "in_view": v, "label": y, "model": a, "rules_and_model": m}
                                         for (t, v, y), a, m in zip(test, alone, with_model, strict=True)
                                         if m != y or a != y]
        return folds

    report: dict[str, Any] = {"benchmark": "product_routing", "generated_negatives": len(extra), "cv": {}}
    # What the learned reading adds per message in the engine (the parse is unchanged): CPU us per message, best of 3
    # passes over every parsed message, with the shipped model (or a zero one when none is shipped yet).
    cost_model = load_model() or ProductQuestionModel(np.zeros(len(SIGNALS) + 512), 0.0, 0.5)
    passes = []
    for _ in range(3):
        started = time.process_time()
        for text, in_view, _ in [i for items in groups.values() for i in items] + extra:
            learned_product_question(parsed[text], in_view=in_view, model=cost_model)
        passes.append((time.process_time() - started) / (sum(len(v) for v in groups.values()) + len(extra)))
    report["learned_cpu_us_per_message"] = round(min(passes) * 1e6, 1)
    for c in (float(v) for v in args.cv_c.split(",")):
        for threshold in (float(v) for v in args.cv_threshold.split(",")):
            report["cv"][f"c={c},threshold={threshold}"] = cross_validate(c, threshold)
    if args.write:
        everything = [i for items in groups.values() for i in items] + extra
        x, y = rows_of(everything)
        weights, bias = fit(x, y, args.c)
        out = Path(__file__).resolve().parents[1] / "bot" / "skills" / "product_question_model.json"
        out.write_text(json.dumps({
            "about": "bot.skills.product_question_model: logistic regression over the USE part of the NLU row and "
                     "the routing signals; written by bench/product_routing.py --write",
            "trained_on": [f for files in GROUPS.values() for f, _ in files] + ["generated negatives"],
            "c": args.c, "threshold": args.threshold, "signals": list(SIGNALS), "bias": round(bias, 6),
            "weights": [round(float(w), 6) for w in weights]}, ensure_ascii=False) + "\n", "utf-8")
        report["written"] = str(out)
        report["trained_rows"] = len(everything)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="fit on every set and write the shipped model")
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation of the logistic regression")
    parser.add_argument("--threshold", type=float, default=0.5, help="probability at or above which: a question")
    parser.add_argument("--misses", action="store_true", help="list each fold's wrong messages")
    parser.add_argument("--cv-c", default="1.0", help="C values to cross-validate, comma-separated")
    parser.add_argument("--cv-threshold", default="0.5", help="thresholds to cross-validate, comma-separated")
    print(json.dumps(asyncio.run(run(parser.parse_args())), ensure_ascii=False))  # noqa: T201


if __name__ == "__main__":
    main()
