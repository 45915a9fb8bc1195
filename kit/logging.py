from __future__ import annotations

import logging
import re

_SECRET_PATTERNS = [
    # Telegram bot tokens, also inside a Bot API URL (".../bot123456:AAE.../sendMessage": no word boundary there)
    re.compile(r"(?<![0-9])\d{6,12}:[A-Za-z0-9_-]{30,}"),
    re.compile(r"\bst_[A-Za-z0-9_-]{20,}\b"),  # ShopTalk API tokens
    re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"),
    re.compile(r"(?i)(x-telegram-bot-api-secret-token:\s*)\S+"),
    re.compile(r"(?i)(password[=:]\s*)\S+"),
    re.compile(r"(?i)(x-shoptalk-signature:\s*)\S+"),  # the REST channel's HMAC signature header
    re.compile(r"([?&]session=)[^&\s\"']+"),  # web chat session tokens in socket URLs (uvicorn's access log)
    re.compile(r"([?&](?:signature|email|customer_id)=)[^&\s\"']+"),  # a signed identity in an older widget's URL
    re.compile(r"(://[^:/@\s]*:)[^@\s/]+(?=@)"),  # the password in a database or Redis URL
]


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "[redacted]", text)
        else:
            text = pattern.sub("[redacted]", text)
    return text


class RedactingFilter(logging.Filter):
    """Secrets never reach a log line, whatever a library decides to print."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned == message:
            return True
        # Redact the format and its arguments apart first: formatters such as uvicorn's access log read the
        # arguments themselves; only if a secret spans them is the record collapsed into its cleaned message.
        if isinstance(record.args, tuple) and isinstance(record.msg, str):
            msg, args = record.msg, record.args
            record.msg = redact(msg)
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
            if record.getMessage() == cleaned:
                return True
            record.msg, record.args = msg, args
        record.msg = cleaned
        record.args = None
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
