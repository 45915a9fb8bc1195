"""Every word the agent console's script shows comes from the `console.*` catalog keys (en, zh, es, ja): the script
has no user-facing English literal left (events, the canned "Fill in..." line, the WhatsApp window, file lines,
the refund dialog ...), every key it asks for exists in every catalog, every server code it names (statuses, roles,
media kinds, problems) has a key, and the page a Chinese agent gets carries those texts in Chinese."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import httpx
import pytest

from api.http.agent.console import console_strings
from api.pages import PAGES_DIR
from bot import i18n
from bot.handoff.cart_links import CartLinkLine
from commerce.orders.schemas import STATUSES

SCRIPT = (PAGES_DIR / "agent" / "console.js").read_text(encoding="utf-8")
PAGE = (PAGES_DIR / "agent" / "index.html").read_text(encoding="utf-8")
LANGUAGES = ("en", "zh", "es", "ja")
# Literals the script needs that no person reads: class names, selectors, storage keys, key names, API names.
TECHNICAL = {"use strict", "Notification", "Enter", "Escape", "count unread-count", "tag assignee", "chip link",
             "noopener noreferrer", "chips buttons", "shopper-file image", "shopper-file download"}
# Server codes the script names through TC("prefix_", code), with the codes the server sends.
CODES = {"status_": ("open", "resolved"), "role_": ("agent", "supervisor", "owner"),
         "author_": ("shopper", "bot", "agent", "system"), "delivery_": ("sending", "delivered", "superseded"),
         "receipt_": ("sent", "delivered", "read", "failed"),
         "media_": ("image", "video", "audio", "voice", "document", "sticker"),
         "order_status_": STATUSES,
         # The order line's facets (bot.handoff.views.order_facets).
         "order_state_": ("open", "completed", "cancelled", "expired", "closed"),
         "payment_state_": ("awaiting", "paid", "partly_refunded", "refunded", "not_paid"),
         "fulfilment_": ("not_shipped", "packed", "shipped", "delivered", "return_requested"),
         "cart_link_problem_": ("unknown_sku", "not_sold", "not_sellable_there", "no_stock")}


def string_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal of a script, comments and regular expressions skipped."""
    found, i, n = [], 0, len(source)
    regex = re.compile(r"/(?:\\.|\[(?:\\.|[^\]])*\]|[^/\\\n])+/[a-z]*")
    while i < n:
        char = source[i]
        if source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end
        elif source.startswith("/*", i):
            i = source.index("*/", i) + 2
        elif char in "\"'`":
            j, text = i + 1, []
            while source[j] != char:
                step = 2 if source[j] == "\\" else 1
                text.append(source[j:j + step])
                j += step
            found.append((source.count("\n", 0, i) + 1, "".join(text)))
            i = j + 1
        elif char == "/" and re.match(r"[=(,:!&|?{};\s]", source[i - 1] if i else " ") and \
                (match := regex.match(source, i)):
            i = match.end()
        else:
            i += 1
    return found


def looks_english(text: str) -> bool:
    if text in TECHNICAL or text.startswith(("#", "/")) or "shoptalk." in text:
        return False
    return bool(re.search(r"[A-Za-z]{2,}[ ,.:;!?…]+[A-Za-z]{2,}", text) or re.fullmatch(r"[A-Z][a-z]+[.!?]?", text))


class _Words(HTMLParser):
    """The page's own words: text and the title, aria-label, placeholder and alt of its elements, outside scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_script = tag == "script"
        self.words += [v for k, v in attrs if k in ("title", "aria-label", "placeholder", "alt") and v]

    def handle_endtag(self, tag: str) -> None:
        self.in_script = False

    def handle_data(self, data: str) -> None:
        if not self.in_script and data.strip():
            self.words.append(data.strip())


def english_on_the_page(html: str) -> list[str]:
    words = _Words()
    words.feed(html)
    left = [re.sub(r"\{\{\w+\}\}", "", text) for text in words.words]
    return [text for text in left if re.search(r"[A-Za-z]{2,}", text.replace("ShopTalk", "").replace("Ctrl+Enter", "")
                                                                     .replace("Esc", ""))]


def keys_used(source: str) -> set[str]:
    keys = set(re.findall(r"\bT\(\s*\"([a-z0-9_]+)\"", source))
    for first, second in re.findall(r"\bT\([^()\"]*\?\s*\"([a-z0-9_]+)\"\s*:\s*\"([a-z0-9_]+)\"", source):
        keys.update((first, second))
    return keys


def test_the_script_has_no_user_facing_english_literal() -> None:
    english = [(line, text) for line, text in string_literals(SCRIPT) if looks_english(text)]
    assert english == [], "use T(\"key\") and a console.* catalog entry for: " + repr(english)


def test_the_page_has_no_english_word_outside_the_catalog() -> None:
    assert english_on_the_page(PAGE) == []
    assert english_on_the_page('<label>Time zone <input title="Pick one"></label>') == ["Time zone", "Pick one"]
    used = set(re.findall(r"\{\{(\w+)\}\}", PAGE)) - {"STRINGS", "lang"}
    assert sorted(k for k in used if not i18n.has_text("zh", f"console.{k}")) == []


def test_the_checker_finds_an_english_literal() -> None:
    # A checker that cannot fail proves nothing: the old lines it replaced are caught.
    old = 'flash("Pick an agent to transfer to."); el("button", {}, "Refund"); x = " took the conversation";'
    assert [text for _, text in string_literals(old) if looks_english(text)] == [
        "Pick an agent to transfer to.", "Refund", " took the conversation"]
    assert [t for _, t in string_literals('a.replace(/\\{(\\w+)\\}/g, "")')] == [""]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_key_the_script_asks_for_is_in_the_catalog(language: str) -> None:
    used = keys_used(SCRIPT)
    assert {"event_taken", "fill_in_one", "fill_in_many", "wa_window_closed", "file_fetching", "refund_title",
            "cart_link_add"} <= used
    missing = sorted(k for k in used if not i18n.has_text(language, f"console.{k}"))
    assert missing == []
    prefixes = set(re.findall(r"\bTC\(\"([a-z_]+)\"", SCRIPT))
    assert prefixes == set(CODES)
    missing_codes = sorted(f"{p}{c}" for p, codes in CODES.items() for c in codes
                           if not i18n.has_text(language, f"console.{p}{c}"))
    assert missing_codes == []
    problems = CartLinkLine.model_fields["problem"].description
    assert problems is not None
    assert set(problems.split(" | ")) == set(CODES["cart_link_problem_"])


def test_texts_with_placeholders_reach_the_page_unfilled() -> None:
    # The script fills {agent}, {names}, {time} ...: the page carries the catalog's text as it is.
    zh = console_strings("zh")
    assert zh["event_taken"] == "{agent} 接手了会话"
    assert "{names}" in zh["fill_in_one"]
    assert "WhatsApp" in zh["wa_window_closed"]
    assert "{time}" in zh["wa_window_closed"]


async def test_a_chinese_agent_gets_the_console_words_in_chinese(client: httpx.AsyncClient) -> None:
    page = await client.get("/agent", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert page.status_code == 200
    data = re.search(r'<script type="application/json" id="console-strings">(.*?)</script>', page.text, re.S)
    assert data is not None
    strings = json.loads(data.group(1))
    english = console_strings("en")
    for key in ("event_taken", "event_resolved", "fill_in_many", "wa_window_never", "file_not_kept",
                "download_file", "refund_outside_policy", "cart_link_add"):
        assert strings[key] != english[key], key
    assert "退款" in page.text  # the refund dialog's labels are on the page in Chinese too
