"""The channel contract: rich replies degrade by what a channel declares, the same code for every channel."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.channels import rest, telegram, webchat, wechat, whatsapp
from bot.channels.capabilities import (
    Capabilities,
    ImagePart,
    ListPart,
    TextPart,
    as_text,
    fit_text,
    plan,
)
from bot.messages import Button, OutboundMessage, ProductCard

CHANNELS = Path(__file__).resolve().parents[3] / "bot" / "channels"


def reply(text: str = "Here is what I found", buttons: int = 0, cards: list[ProductCard] | None = None,
          locale: str | None = "en") -> OutboundMessage:
    return OutboundMessage(channel="rest", recipient_id="s", text=text, locale=locale, cards=cards or [],
                           buttons=[Button(title=f"Option {i}", payload=f"opt:{i}") for i in range(buttons)])


def test_up_to_the_button_limit_buttons_stay_buttons() -> None:
    [part] = plan(reply(buttons=3), whatsapp.CAPABILITIES)
    assert isinstance(part, TextPart)
    assert [b.payload for b in part.buttons] == ["opt:0", "opt:1", "opt:2"]


def test_more_buttons_become_lists_of_at_most_the_declared_rows() -> None:
    parts = plan(reply(buttons=4), whatsapp.CAPABILITIES)
    assert [type(p) for p in parts] == [ListPart]
    parts = plan(reply(buttons=23), whatsapp.CAPABILITIES)
    assert [len(p.rows) for p in parts if isinstance(p, ListPart)] == [10, 10, 3]
    assert [r.payload for p in parts if isinstance(p, ListPart) for r in p.rows] == [f"opt:{i}" for i in range(23)]


def test_a_channel_without_buttons_or_lists_gets_lines_it_can_act_on() -> None:
    plain = Capabilities(max_text=1000)
    [part] = plan(reply(buttons=2), plain)
    assert isinstance(part, TextPart)
    assert not part.buttons
    assert "1. Option 0 (opt:0)" in part.text
    [menu] = plan(reply(buttons=1), wechat.CAPABILITIES)
    assert isinstance(menu, TextPart)
    assert "weixin://bizmsgmenu" in menu.text
    assert "msgmenuid=opt%3A0" in menu.text


def test_a_channel_with_few_buttons_and_no_lists_keeps_the_first_and_lists_the_rest() -> None:
    caps = Capabilities(max_text=1000, max_buttons=2, button_title=20)
    [part] = plan(reply(buttons=5), caps)
    assert isinstance(part, TextPart)
    assert [b.payload for b in part.buttons] == ["opt:0", "opt:1"]
    assert "3. Option 4 (opt:4)" in part.text


def test_long_text_is_split_or_shortened_by_the_channels_rule() -> None:
    text = "word " * 3000
    split = Capabilities(max_text=4096)
    pieces = fit_text(text, split)
    assert len(pieces) == 4
    assert all(len(p) <= 4096 for p in pieces)
    assert " ".join(pieces).split() == text.split()  # cut at spaces: no word broken, none lost
    short = Capabilities(max_text=200, long_text="shorten")
    [cut] = fit_text(text, short)
    assert len(cut) <= 200
    assert cut.endswith("…")


def test_lengths_are_measured_in_the_channels_unit() -> None:
    chinese = "电水壶" * 1000  # 3000 characters, 9000 UTF-8 bytes
    assert all(len(p.encode()) <= 2048 for p in fit_text(chinese, wechat.CAPABILITIES))
    assert len(fit_text(chinese, wechat.CAPABILITIES)) == 5
    assert len(fit_text(chinese, whatsapp.CAPABILITIES)) == 1
    emoji = "😀" * 3000  # 6000 UTF-16 units
    assert [len(p) for p in fit_text(emoji, telegram.CAPABILITIES)] == [2048, 952]


def test_a_message_with_buttons_keeps_its_text_within_the_interactive_limit() -> None:
    parts = plan(reply(text="x " * 1500, buttons=2), whatsapp.CAPABILITIES)
    assert isinstance(parts[-1], TextPart)
    assert parts[-1].buttons
    assert len(parts[-1].text) <= 1024
    assert "".join(p.text for p in parts if isinstance(p, TextPart)).count("x") == 1500


def test_cards_become_images_with_captions_or_text_by_declaration() -> None:
    card = ProductCard(sku="KET-1", product_id=1, title="Kettle " * 300, subtitle="Steel", price_text="€39.90",
                       image_url="https://img.example/k.jpg", buttons=[Button(title="Add to cart", payload="add:1")])
    parts = plan(reply(cards=[card]), whatsapp.CAPABILITIES)
    image = parts[-1]
    assert isinstance(image, ImagePart)
    assert image.url == "https://img.example/k.jpg"
    assert len(image.caption) <= 1024
    assert image.caption.endswith("€39.90")  # the price is kept whole
    assert [b.payload for b in image.buttons] == ["add:1"]
    texts = as_text(plan(reply(cards=[card]), wechat.CAPABILITIES), wechat.CAPABILITIES)
    assert any("€39.90" in t for t in texts)
    assert any("msgmenuid=add%3A1" in t for t in texts)
    no_image = card.model_copy(update={"image_url": "ftp://nope"})
    assert not any(isinstance(p, ImagePart) for p in plan(reply(cards=[no_image]), whatsapp.CAPABILITIES))


def test_every_channel_declares_its_capabilities() -> None:
    for module in (telegram, webchat, rest, whatsapp, wechat):
        assert isinstance(module.CAPABILITIES, Capabilities), module.__name__


@pytest.mark.parametrize("path", sorted(CHANNELS.glob("*.py")), ids=lambda p: p.name)
def test_no_channel_module_branches_on_a_channel_name(path: Path) -> None:
    names = {"telegram", "webchat", "rest", "whatsapp", "wechat"}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            constants = [c.value for c in (node.left, *node.comparators) if isinstance(c, ast.Constant)]
            assert not names & set(constants), f"{path.name}:{node.lineno} compares with a channel name"
