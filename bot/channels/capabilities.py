"""The channel contract: what each channel can show, and one degradation of rich replies by that declaration.

A reply (`OutboundMessage`: text, buttons, product cards) is planned into channel-neutral parts - text with
buttons, a list to pick from, an image with a caption - that fit the channel's declared limits. Each channel's
renderer then only translates parts into its wire format. Nothing here (and no renderer) asks which channel it
is: a new channel is a `Capabilities` value, its renderer and its tests.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

from bot.i18n import t
from bot.messages import Button, OutboundMessage, ProductCard

LengthUnit = Literal["chars", "utf16", "utf8"]
HTTP_URL = re.compile(r"^https?://[^\s]{1,2040}$")


@dataclass(frozen=True)
class Capabilities:
    """What one channel can show. A limit of 0 means the channel has no such thing."""

    max_text: int  # longest text message, in `unit`
    unit: LengthUnit = "chars"
    long_text: Literal["split", "shorten"] = "split"  # what a longer text becomes: several messages, or cut
    max_buttons: int = 0  # reply buttons on one message
    button_title: int = 64  # characters of a button's title
    link_buttons: bool = True  # a URL button is a button (else a link in the text)
    max_list_rows: int = 0  # rows of one pick-from-a-list message
    list_row_title: int = 24
    list_row_description: int = 72
    list_label: int = 20  # characters of the button that opens the list
    interactive_text: int = 0  # longest text of a message carrying buttons or a list (0: max_text)
    images: bool = False  # an image with a caption
    max_caption: int = 0
    buttons_on_images: bool = False  # an image message may carry the card's buttons
    text_links: Literal["none", "url", "menu"] = "none"  # links inside text: plain URLs, or menu links too
    cards: bool = False  # the client draws product cards itself (rendered whole, nothing degraded)
    articles: bool = False  # a card with a page to open becomes an article (title, description, picture, link)

    def measure(self, text: str) -> int:
        if self.unit == "utf16":
            return len(text.encode("utf-16-le")) // 2
        if self.unit == "utf8":
            return len(text.encode("utf-8"))
        return len(text)


@dataclass(frozen=True)
class ListRow:
    payload: str
    title: str
    description: str = ""


@dataclass(frozen=True)
class TextPart:
    text: str
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class ListPart:
    text: str
    label: str
    rows: tuple[ListRow, ...]


@dataclass(frozen=True)
class ImagePart:
    url: str
    caption: str
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class ArticlePart:
    """A product card as a link preview the shopper taps to open its page (WeChat's 图文 news message)."""

    title: str
    description: str
    url: str
    image_url: str = ""


Part = TextPart | ListPart | ImagePart | ArticlePart
CardUrl = Callable[[ProductCard], str | None]


@dataclass
class _Plan:
    caps: Capabilities
    locale: str | None
    parts: list[Part] = field(default_factory=list)
    card_url: CardUrl | None = None


def clip(text: str, limit: int, caps: Capabilities) -> str:
    """`text` cut to at most `limit` (in the channel's unit), an ellipsis marking the cut."""
    if caps.measure(text) <= limit:
        return text
    kept: list[str] = []
    used = 0
    room = limit - caps.measure("…")
    for char in text:
        width = caps.measure(char)
        if used + width > room:
            break
        kept.append(char)
        used += width
    return "".join(kept).rstrip() + "…"


def split(text: str, limit: int, caps: Capabilities) -> list[str]:
    """`text` in pieces of at most `limit` (the channel's unit), cut at a line or word break in a piece's
    second half when there is one."""
    pieces: list[str] = []
    rest = text
    while caps.measure(rest) > limit:
        size, used = 0, 0
        for char in rest:
            width = caps.measure(char)
            if used + width > limit:
                break
            used += width
            size += 1
        window = rest[:size]
        cut = max(window.rfind("\n"), window.rfind(" "), window.rfind("。"))
        cut = size if cut < size // 2 else cut + 1
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def fit_text(text: str, caps: Capabilities, limit: int | None = None) -> list[str]:
    """The messages a text becomes under the channel's rule: split, or shortened to one."""
    limit = limit or caps.max_text
    if caps.long_text == "shorten":
        return [clip(text, limit, caps)]
    return split(text, limit, caps)


def menu_link(title: str, payload: str) -> str:
    """A WeChat-style menu link: pressing it sends `title` back as a message carrying `payload` as its menu id."""
    return (f'<a href="weixin://bizmsgmenu?msgmenucontent={quote(title)}&msgmenuid={quote(payload, safe="")}">'
            f"{title}</a>")


def _button_lines(buttons: list[Button], caps: Capabilities) -> list[str]:
    """Buttons the channel cannot show as buttons, as lines of text the shopper can still act on."""
    lines: list[str] = []
    for number, button in enumerate(buttons, start=1):
        if button.url and caps.text_links != "none":
            lines.append(f"{button.title}: {button.url}")
        elif button.payload and caps.text_links == "menu":
            lines.append(menu_link(button.title, button.payload))
        elif button.url:
            lines.append(f"{number}. {button.title}: {button.url}")
        else:
            lines.append(f"{number}. {button.title} ({button.payload or button.title})")
    return lines


def _add_text(plan: _Plan, text: str, buttons: list[Button]) -> None:
    """A text with its buttons: as buttons, a list, or lines of text - whichever the channel can show."""
    caps = plan.caps
    shown = [b for b in buttons if not b.url or caps.link_buttons]
    as_lines = [b for b in buttons if b not in shown]
    widget: Part | None = None
    interactive_limit = caps.interactive_text or caps.max_text
    if shown and len(shown) <= caps.max_buttons and all(len(b.title) <= caps.button_title for b in shown):
        widget = TextPart("", tuple(shown))
    elif shown and caps.max_list_rows and not any(b.url for b in shown):
        rows = [ListRow(b.payload or b.title, clip(b.title, caps.list_row_title, caps),
                        clip(b.title, caps.list_row_description, caps) if len(b.title) > caps.list_row_title
                        else "") for b in shown]
        label = clip(t(plan.locale, "channel_list_button"), caps.list_label, caps)
        widget = ListPart("", label, tuple(rows))
    elif shown and caps.max_buttons:
        # Too many (or too long) for buttons and no lists: the first ones as buttons, titles cut.
        widget = TextPart("", tuple(b.model_copy(update={"title": clip(b.title, caps.button_title, caps)})
                                    for b in shown[:caps.max_buttons]))
        as_lines.extend(shown[caps.max_buttons:])
    else:
        as_lines = buttons
    if as_lines:
        text = "\n".join([text, "", *_button_lines(as_lines, caps)]) if text else "\n".join(
            _button_lines(as_lines, caps))
    pieces = fit_text(text or "…", caps)
    if widget is not None and caps.measure(pieces[-1]) > interactive_limit:
        pieces = pieces[:-1] + fit_text(pieces[-1], caps, interactive_limit)
    for piece in pieces[:-1]:
        plan.parts.append(TextPart(piece))
    last = pieces[-1]
    if isinstance(widget, ListPart):
        for start in range(0, len(widget.rows), caps.max_list_rows):
            # More rows than one list holds: the next list follows with the same text's continuation mark.
            plan.parts.append(ListPart(last if start == 0 else "…", widget.label,
                                       widget.rows[start:start + caps.max_list_rows]))
    elif isinstance(widget, TextPart):
        plan.parts.append(TextPart(last, widget.buttons))
    else:
        plan.parts.append(TextPart(last))


def card_text(card: ProductCard) -> str:
    return "\n".join(x for x in (card.title, card.subtitle, card.price_text) if x)


def _add_card(plan: _Plan, card: ProductCard) -> None:
    caps = plan.caps
    url = (card.image_url or "").strip()
    page = (plan.card_url(card) or "").strip() if caps.articles and plan.card_url is not None else ""
    if HTTP_URL.match(page):
        description = "\n".join(x for x in (card.subtitle, card.price_text) if x)
        plan.parts.append(ArticlePart(clip(card.title, 64, caps), clip(description, 120, caps), page,
                                      url if HTTP_URL.match(url) else ""))
        if card.buttons:  # the card's buttons follow as what the channel can show of them
            _add_text(plan, card.title, list(card.buttons))
        return
    if caps.images and HTTP_URL.match(url):
        fits = (caps.buttons_on_images and len(card.buttons) <= caps.max_buttons
                and all(not b.url and len(b.title) <= caps.button_title for b in card.buttons))
        caption = _caption(card, caps)
        if fits or not card.buttons:
            plan.parts.append(ImagePart(url, caption, tuple(card.buttons)))
            return
        plan.parts.append(ImagePart(url, caption))
        _add_text(plan, card.title, list(card.buttons))
        return
    _add_text(plan, card_text(card), list(card.buttons))


def _caption(card: ProductCard, caps: Capabilities) -> str:
    """Title, subtitle and price within the caption limit: the price kept whole, the title and subtitle cut."""
    limit = caps.max_caption or caps.max_text
    price = clip(card.price_text or "", limit // 4, caps)
    room = limit - caps.measure(price) - 2
    title = clip(card.title, max(1, room // 2 if card.subtitle else room), caps)
    subtitle = clip(card.subtitle or "", max(0, room - caps.measure(title)), caps)
    return "\n".join(x for x in (title, subtitle, price) if x)


def plan(message: OutboundMessage, caps: Capabilities, *, card_url: CardUrl | None = None) -> list[Part]:
    """The parts one reply becomes on a channel that can show `caps`: its text (split or shortened, its buttons
    as buttons, a list or lines of text), then each product card (an article when the channel shows articles and
    `card_url` gives the card a page, else an image with a caption, or text)."""
    planned = _Plan(caps, message.locale, card_url=card_url)
    _add_text(planned, message.text, list(message.buttons))
    for card in message.cards:
        _add_card(planned, card)
    return planned.parts


def as_text(parts: list[Part], caps: Capabilities) -> list[str]:
    """The parts as plain texts for a fallback path that can send only text (buttons become lines)."""
    texts: list[str] = []
    for part in parts:
        if isinstance(part, ListPart):
            lines = [part.text] + [f"{n}. {row.title} ({row.payload})" for n, row in enumerate(part.rows, 1)]
            texts.extend(fit_text("\n".join(lines), caps))
        elif isinstance(part, ImagePart):
            texts.extend(fit_text("\n".join([part.caption, part.url]), caps))
        elif isinstance(part, ArticlePart):
            texts.extend(fit_text("\n".join(x for x in (part.title, part.description, part.url) if x), caps))
        else:
            body = "\n".join([part.text, *_button_lines(list(part.buttons), caps)]) if part.buttons else part.text
            texts.extend(fit_text(body, caps))
    return texts
