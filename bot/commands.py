"""Slash commands ("/start", "/orders@ShopBot", "/help me"): the one reading every channel and the engine use."""
from __future__ import annotations

import re
from typing import NamedTuple

_COMMAND = re.compile(r"/(\S*)\s*(.*)", re.DOTALL)


class Command(NamedTuple):
    name: str  # lower case, without the "/" and a "@botname" suffix
    args: str  # the rest of the message, stripped


def parse_command(text: str | None) -> Command | None:
    """The command a message starting with "/" names; None for any other text, or a "/" with no name."""
    match = _COMMAND.match(text or "")
    if match is None:
        return None
    name = match[1].split("@", 1)[0].lower()
    return Command(name, match[2].strip()) if name else None
