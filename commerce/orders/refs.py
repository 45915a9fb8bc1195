"""Public order references: 10 random Crockford base32 characters (50 bits), shown as ST-7K3MQ-9XPAB.

Order numbers are sequential (anyone can name the next one); a public reference cannot be guessed, so knowing it
is a factor of its own when a shopper proves an order is theirs.
"""
from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
LENGTH = 10
PREFIX = "ST"
# What people mistype for Crockford's characters: O for 0, I and L for 1.
_CONFUSIONS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = re.compile(r"[\s\-_.]+")
_SHAPE = re.compile(rf"[{ALPHABET}]{{{LENGTH}}}")
# In running text a reference is recognised only in its grouped form, so words like "strongkettle" are not refs.
REF_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])ST[\s-]+([0-9A-Za-z]{5})[\s-]?([0-9A-Za-z]{5})(?![0-9A-Za-z])",
                         re.IGNORECASE)


def format_public_ref(body: str) -> str:
    return f"{PREFIX}-{body[:5]}-{body[5:]}"


def new_public_ref() -> str:
    """A fresh reference; always with a digit, so a typed one is told apart from a word."""
    while True:
        body = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        if any(c.isdigit() for c in body):
            return format_public_ref(body)


def parse_public_ref(text: str) -> str | None:
    """The canonical reference for what a person typed (any case, with or without the ST prefix, dashes or
    spaces, O/I/L for 0/1); None when it is not shaped like one."""
    squashed = _SEPARATORS.sub("", text.strip().lstrip("#")).upper()
    if len(squashed) == LENGTH + len(PREFIX) and squashed.startswith(PREFIX):
        squashed = squashed[len(PREFIX):]
    body = squashed.translate(_CONFUSIONS)
    if not _SHAPE.fullmatch(body):
        return None
    return format_public_ref(body)


def public_ref_in(text: str) -> str | None:
    """A reference the message names: the whole message shaped like one (with a digit, or grouped with the
    prefix), or an ST-XXXXX-XXXXX inside a sentence."""
    stripped = text.strip().lstrip("#").strip()
    whole = parse_public_ref(stripped)
    if whole is not None and not stripped.isdigit() and (
            any(c.isdigit() for c in stripped) or REF_IN_TEXT.fullmatch(stripped)):
        return whole
    match = REF_IN_TEXT.search(text)
    return parse_public_ref(match.group(1) + match.group(2)) if match else None
