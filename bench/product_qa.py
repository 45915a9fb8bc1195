"""Product questions answered from the catalog (issue 25): accuracy and refusal correctness, en and zh.

Each labelled question of bench/data/product_qa.json goes through the whole bot as a shopper would send it: the
real NLU (trained from the shipped data, the demo catalog's words taught), the engine, the product_qa skill, over
a migrated SQLite database holding the demo shop. A question with `view` first opens that product's details (the
product in view); one without names its product. Scored from the reply's `custom.product_answer` and its text:

- answer: routed to the product question skill, about the right product, `known`, citing `field` (when labelled)
  and its text containing `contains` (when labelled);
- refuse: routed there, about the right product, `known` false (the bot says it does not know, offers a person).

Beside `invented` (must-refuse questions answered), `wrong_facts` counts answers to answerable questions that
state a fact the label or the catalog contradicts (bench/_wrong_facts.py): a quoted passage from another product's
listing (or from none), an option value not among the product's variants, in stock where the label says out of
stock or the other way round, another price than the labelled one. Each is listed under `wrong`, with its reasons.

Prints one JSON object with a section per question set: `tuning` (bench/data/product_qa.json, written beside the
skill and used to shape it), `heldout` (bench/data/product_qa_heldout.json, written from the listings before
any of it was sent to the bot; later read to fix failures, so no longer blind) and `blind`
(bench/data/product_qa_blind.json, written by a second author from the catalog alone before reading the skill,
run once for the honest figure before any change). Each: accuracy overall and per language,
refusal correctness (must-refuse questions refused), invented (must-refuse questions answered: should be 0), false
refusals (answerable questions refused), routing (questions that reached the skill) and the failures.

    python bench/product_qa.py [--data bench/data/product_qa.json] [--heldout bench/data/product_qa_heldout.json]
        [--blind bench/data/product_qa_blind.json]

`--blind` takes any set in the same format, e.g. `--data '' --heldout '' --blind bench/data/product_qa_blind2.json`
(the second blind set, written in session 4 before reading the skill).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401  (the project on the path, models offline)
from _wrong_facts import wrong_facts  # noqa: E402

CATALOG = Path(__file__).resolve().parents[1] / "api" / "demo" / "catalog.json"

DATA = Path(__file__).resolve().parent / "data" / "product_qa.json"
HELDOUT = Path(__file__).resolve().parent / "data" / "product_qa_heldout.json"
BLIND = Path(__file__).resolve().parent / "data" / "product_qa_blind.json"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from _shop_bot import demo_shop_bot

    sets = {name: json.loads(Path(path).read_text("utf-8"))["items"]
            for name, path in (("tuning", args.data), ("heldout", args.heldout), ("blind", args.blind)) if path}
    async with demo_shop_bot("product_qa") as shop:
        report: dict[str, Any] = {"benchmark": "product_qa", "train_seconds": shop.train_seconds}
        for name, items in sets.items():
            report[name] = await score(items, shop.send, shop.product_id, prefix=name)
    return report


async def score(items: list[dict[str, Any]], send: Any, product_id: dict[str, int], *, prefix: str) -> dict[str, Any]:
    demo = json.loads(CATALOG.read_text("utf-8"))
    catalog = {p["slug"]: p for p in demo["products"]}
    category_names = {c["slug"]: c["name"] for c in demo["categories"]}
    wrong = []
    wall_ms: list[float] = []
    cpu_ms: list[float] = []
    per_language: dict[str, list[bool]] = defaultdict(list)
    refuse_ok: list[bool] = []
    answer_ok: list[bool] = []
    invented = false_refusals = routed = 0
    failures = []
    for index, item in enumerate(items):
        sender = f"{prefix}-{index}"
        if item.get("view"):
            await send(sender, 0, payload=f"product:details:{product_id[item['view']]}")
        wall, cpu = time.perf_counter(), time.process_time()
        result = await send(sender, 1, text=item["question"])
        wall_ms.append((time.perf_counter() - wall) * 1000)
        cpu_ms.append((time.process_time() - cpu) * 1000)
        text = "\n".join(r.text for r in result.replies)
        found = next((r.custom["product_answer"] for r in result.replies
                      if r.custom and "product_answer" in r.custom), None)
        if found is not None:
            routed += 1
        right_product = found is not None and found["product"] == item["product"]
        if item["expect"] == "refuse":
            ok = right_product and found is not None and found["known"] is False
            refuse_ok.append(ok)
            invented += int(found is not None and found["known"] is True)
        else:
            ok = (right_product and found is not None and found["known"] is True
                  and (item.get("field") is None or item["field"] in found["fields"])
                  and (item.get("contains") is None or item["contains"] in text))
            answer_ok.append(ok)
            false_refusals += int(found is not None and found["known"] is False)
            if reasons := wrong_facts(item, found, text, catalog, category_names):
                wrong.append({"question": item["question"], "reasons": reasons, "reply": text[:160]})
        per_language[item["language"]].append(ok)
        if not ok:
            failures.append({"question": item["question"], "expect": item["expect"], "got": found,
                             "reply": text[:160]})
    every = [ok for oks in per_language.values() for ok in oks]
    return {
        "questions": len(items), "accuracy": round(sum(every) / len(every), 4),
        "accuracy_by_language": {lang: round(sum(oks) / len(oks), 4) for lang, oks in sorted(per_language.items())},
        "answerable_correct": round(sum(answer_ok) / len(answer_ok), 4) if answer_ok else None,
        "refusal_correctness": round(sum(refuse_ok) / len(refuse_ok), 4) if refuse_ok else None,
        "must_refuse": len(refuse_ok), "invented": invented, "wrong_facts": len(wrong),
        "false_refusals": false_refusals,
        "routed_to_product_qa": round(routed / len(items), 4),
        # The question's whole turn (parse, policy, skill, database) in this process: wall and CPU ms.
        "turn_ms": _percentiles(wall_ms), "turn_cpu_ms": _percentiles(cpu_ms), "failures": failures, "wrong": wrong,
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 1),
            "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DATA), help="the tuning set ('' = skip)")
    parser.add_argument("--heldout", default=str(HELDOUT), help="the held-out set, reported apart ('' = skip)")
    parser.add_argument("--blind", default=str(BLIND), help="the blind set, reported apart ('' = skip)")
    print(json.dumps(asyncio.run(run(parser.parse_args())), ensure_ascii=False))  # noqa: T201


if __name__ == "__main__":
    main()
