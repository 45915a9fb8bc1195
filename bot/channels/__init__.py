"""Channel adapters: verify, dedupe and normalise inbound updates; render and send outbound replies.

Each adapter only translates; the conversation engine (`bot.handle_inbound`) does the talking.
"""
from __future__ import annotations

from bot.commands import parse_command

# Commands that are simply a menu button under another name; other commands go to the engine as typed.
COMMAND_PAYLOADS = {"orders": "menu:order"}


def command_payload(text: str | None) -> str | None:
    """The button payload a typed command stands for ("/orders" -> "menu:order"), if any."""
    command = parse_command(text)
    return COMMAND_PAYLOADS.get(command.name) if command is not None else None
