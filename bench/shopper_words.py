"""Shoppers' own words routed by the whole bot (issue 25): does each message reach what a serious shop bot must do?

Each labelled message of bench/data/shopper_words_blind.json (en and zh, written from the demo catalog before reading
the skills) is sent as the first message of a new shopper (REST channel, no country known) through the whole bot:
the real NLU (trained from the shipped data, the catalog's words taught), the policy, the engine and the skills,
over a migrated SQLite database holding the demo shop (the harness of bench/product_qa.py, `bench/_shop_bot.py`).
What the bot did is read from the turn itself: the replies (product cards, buttons, a product answer), the message's
stored NLU record (intent, policy) and the conversation after the turn (question in flight, mode). Labels:

- search: product cards shown, and the first card is the right kind (one of `want.slugs`, or of `want.categories`);
- recommend: product cards shown;
- greet / goodbye / thanks: that small-talk intent answered (its name contains greet / bye / thank), no cards;
- ask_country: no cards, and the bot asks for the country (a question in flight about the country, or buttons
  naming countries);
- order_status / cart: answered by that skill; faq: the FAQ answered or offered its closest questions (whichever
  skill asked it), or an unclear message the FAQ answered;
- handoff: the conversation is handed to a person (policy `handoff` or mode `human`).

Prints one JSON object: accuracy overall, per language and per label, the share of search messages whose first
result is the right kind, and the failures (what was expected, what the bot did, the reply's start).

    python bench/shopper_words.py [--data bench/data/shopper_words_blind.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401  (the project on the path, models offline)

DATA = Path(__file__).resolve().parent / "data" / "shopper_words_blind.json"
SMALL_TALK = {"greet": ("greet", "hello"), "goodbye": ("bye",), "thanks": ("thank",)}
COUNTRY_SEGMENT = re.compile(r"(^|:)[A-Z]{2}($|:)")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from _shop_bot import demo_shop_bot

    items = json.loads(Path(args.data).read_text("utf-8"))["items"]
    async with demo_shop_bot("shopper_words") as shop:
        report: dict[str, Any] = {"benchmark": "shopper_words", "data": Path(args.data).name,
                                  "train_seconds": shop.train_seconds}
        report.update(await score(items, shop))
    return report


async def observe(shop: Any, sender: str, text: str) -> dict[str, Any]:
    """What the bot did with `text` as a new shopper's first message."""
    from bot.conversations.models import ConversationMessage
    from bot.conversations.service import get_conversation

    result = await shop.send(sender, 1, text=text)
    async with shop.database.sessions() as session:
        stored = await session.get(ConversationMessage, result.message_id) if result.message_id else None
        conversation = await get_conversation(session, conversation_id=result.conversation_id)
        pending, mode = conversation.pending, conversation.mode
    record = (stored.nlu if stored is not None else None) or {}
    cards = [card for reply in result.replies for card in reply.cards]
    first = shop.product_of_id.get(cards[0].product_id) if cards else None
    return {
        "intent": (record.get("intent") or {}).get("name"), "policy": record.get("policy"),
        "product_answer": any(r.custom and "product_answer" in r.custom for r in result.replies),
        "faq": (any(r.custom and "faq_entry_id" in r.custom for r in result.replies)
                or (pending or {}).get("intent") == "faq"),
        "cards": len(cards), "first": first[0] if first else None, "first_category": first[1] if first else None,
        "pending": pending, "mode": mode,
        "buttons": [b.payload for r in result.replies for b in r.buttons if b.payload],
        "text": "\n".join(r.text for r in result.replies),
    }


def judge(item: dict[str, Any], seen: dict[str, Any], skill_of: dict[str, str], not_understood: str) -> bool:
    label = item["label"]
    skill = skill_of.get(seen["intent"] or "", "") if seen["policy"] in ("answer", "confirm", "slot") else ""
    handed_off: bool = seen["policy"] == "handoff" or seen["mode"] == "human"
    if label == "handoff":
        return handed_off
    if handed_off:
        return False
    if label == "search":
        want = item["want"]
        return (seen["cards"] > 0 and not seen["product_answer"]
                and (seen["first"] in want.get("slugs", ()) or seen["first_category"] in want.get("categories", ())))
    if label == "recommend":
        return seen["cards"] > 0 and not seen["product_answer"]
    if label in SMALL_TALK:
        return (seen["cards"] == 0 and seen["policy"] in ("answer", "confirm")
                and any(word in (seen["intent"] or "") for word in SMALL_TALK[label]))
    if label == "ask_country":
        pending = seen["pending"] or {}
        asks = "country" in str(pending.get("slot") or "") or sum(
            bool(COUNTRY_SEGMENT.search(payload)) for payload in seen["buttons"]) >= 2
        return seen["cards"] == 0 and asks
    if label == "faq":  # the FAQ answered (or offered its closest questions), whichever skill asked it
        return skill == "faq" or seen["faq"] or (seen["policy"] == "clarify"
                                                 and not seen["text"].startswith(not_understood))
    pending_skill = skill_of.get(str((seen["pending"] or {}).get("intent") or ""), "")
    return label in (skill, pending_skill)


async def score(items: list[dict[str, Any]], shop: Any) -> dict[str, Any]:
    from bot.i18n import t
    from bot.skills.registry import SKILLS

    skill_of = {intent: skill.name for skill in SKILLS for intent in skill.intents}
    per_language: dict[str, list[bool]] = defaultdict(list)
    per_label: dict[str, list[bool]] = defaultdict(list)
    right_kind: list[bool] = []
    failures = []
    for index, item in enumerate(items):
        seen = await observe(shop, f"words-{index}", item["text"])
        ok = judge(item, seen, skill_of, t(item["language"], "not_understood").split("{")[0][:30])
        per_language[item["language"]].append(ok)
        per_label[item["label"]].append(ok)
        if item["label"] == "search":
            right_kind.append(ok)
        if not ok:
            failures.append({"text": item["text"], "label": item["label"], "want": item.get("want"),
                             "got": {k: seen[k] for k in ("intent", "policy", "cards", "first", "pending", "mode")},
                             "reply": seen["text"][:120]})
    every = [ok for oks in per_language.values() for ok in oks]

    def share(oks: list[bool]) -> float:
        return round(sum(oks) / len(oks), 4)

    return {
        "messages": len(items), "accuracy": share(every),
        "accuracy_by_language": {lang: share(oks) for lang, oks in sorted(per_language.items())},
        "accuracy_by_label": {label: share(oks) for label, oks in sorted(per_label.items())},
        "search_first_result_right_kind": share(right_kind) if right_kind else None,
        "failures": failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DATA), help="the labelled messages")
    print(json.dumps(asyncio.run(run(parser.parse_args())), ensure_ascii=False))  # noqa: T201


if __name__ == "__main__":
    main()
