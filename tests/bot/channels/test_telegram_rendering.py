from __future__ import annotations

from bot.channels.telegram import (
    CALLBACK_DATA_LIMIT,
    TEXT_LIMIT,
    callback_data_for,
    render,
    split_text,
)
from bot.messages import Button, OutboundMessage, ProductCard
from tests.bot.channels.telegram_double import parse_html, utf16_len


def test_short_text_is_one_piece() -> None:
    assert split_text("hello") == ["hello"]


def test_long_text_splits_at_4096_without_losing_a_character() -> None:
    text = " ".join(f"word{i}" for i in range(3000))  # ~26,000 characters
    pieces = split_text(text)
    assert len(pieces) > 1
    assert all(utf16_len(p) <= TEXT_LIMIT for p in pieces)
    assert "".join(pieces) == text
    # Breaks fall between words, not inside them.
    assert all(p.endswith(" ") for p in pieces[:-1])


def test_split_counts_emoji_as_two_units_like_telegram() -> None:
    text = "😀" * 3000  # 6000 UTF-16 units
    pieces = split_text(text)
    assert [utf16_len(p) for p in pieces] == [4096, 1904]
    assert "".join(pieces) == text


def test_unbroken_text_is_cut_hard() -> None:
    text = "x" * 10_000
    assert [len(p) for p in split_text(text)] == [4096, 4096, 1808]


def test_dynamic_text_is_escaped_so_telegram_shows_it_literally() -> None:
    reply = OutboundMessage(channel="telegram", recipient_id="1", text="<b>bold</b> & <script>alert(1)</script>",
                            cards=[ProductCard(sku="A-1", product_id=1, title="Kettle <i>Pro</i>",
                                               price_text="€ 5 & up")])
    parts = render(reply)
    assert parse_html(parts[0].html_text) == "<b>bold</b> & <script>alert(1)</script>"
    assert parse_html(parts[1].html_text) == "Kettle <i>Pro</i>\n€ 5 & up"
    assert parts[1].html_text.startswith("<b>Kettle &lt;i&gt;Pro&lt;/i&gt;</b>")


def test_callback_data_fits_in_64_bytes() -> None:
    short = "cart:add:KET-1"
    assert callback_data_for(short) == short
    long = "search:" + "电水壶" * 30  # 277 bytes of UTF-8
    data = callback_data_for(long)
    assert len(data.encode()) <= CALLBACK_DATA_LIMIT
    assert data.startswith("~")
    assert callback_data_for(long) == data  # the same payload always maps to the same token
    # A payload that itself looks like a token is never taken for one.
    assert callback_data_for("~abc") != "~abc"


def test_buttons_ride_on_the_last_piece() -> None:
    reply = OutboundMessage(channel="telegram", recipient_id="1", text="y" * 5000,
                            buttons=[Button(title="Cart", payload="/cart"), Button(title="Site", url="https://x.test")])
    parts = render(reply)
    assert len(parts) == 2
    assert parts[0].keyboard is None
    keyboard = parts[1].keyboard
    assert keyboard is not None
    assert [b.text for row in keyboard.inline_keyboard for b in row] == ["Cart", "Site"]
