"""Channel adapters: verify, dedupe and normalise inbound updates; render and send outbound replies.

Each adapter only translates; the conversation engine (`bot.handle_inbound`) does the talking.
"""

# Commands that are simply a menu button under another name; other commands go to the engine as typed.
COMMAND_PAYLOADS = {"orders": "menu:order"}


def command_payload(text: str | None) -> str | None:
    """The button payload a typed command stands for ("/orders" -> "menu:order"), if any."""
    if not text or not text.startswith("/"):
        return None
    name = text.strip().split(" ", 1)[0][1:].split("@", 1)[0].lower()
    return COMMAND_PAYLOADS.get(name)
