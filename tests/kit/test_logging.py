"""Secrets never reach a log line: what the redacting filter hides and what it leaves alone."""
from __future__ import annotations

import logging

import pytest

from kit.logging import RedactingFilter, redact


@pytest.mark.parametrize(("line", "secret"), [
    ('127.0.0.1:5123 - "WebSocket /ws/chat?session=Zm9vYmFy.c2lnbmF0dXJl" [accepted]', "Zm9vYmFy.c2lnbmF0dXJl"),
    ("GET /ws/chat?locale=en&session=abc123.def456 HTTP/1.1", "abc123.def456"),
    ("X-ShopTalk-Signature: t=1765000000,v1=9f2c0ddeadbeef", "t=1765000000,v1=9f2c0ddeadbeef"),
    ("cannot reach postgresql+asyncpg://shop:s3cret-pw@db.internal:5432/shop", "s3cret-pw"),
    ("redis://:hunter2hunter2@cache:6379/0 is down", "hunter2hunter2"),
    ("Authorization: Bearer st_abcdefghijklmnopqrstuvwxyz012345", "st_abcdefghijklmnopqrstuvwxyz012345"),
])
def test_secrets_are_hidden(line: str, secret: str) -> None:
    assert secret not in redact(line)
    assert "[redacted]" in redact(line)


@pytest.mark.parametrize("line", [
    "postgresql+asyncpg://postgres@127.0.0.1:5432/test",  # no password: nothing to hide
    "GET /api/v1/products?limit=20&cursor=abc HTTP/1.1",
    "shopper asked about order 10004 at 12:30",
    "docs at http://127.0.0.1:8000/docs@top",  # a port is not a password
])
def test_ordinary_lines_are_left_alone(line: str) -> None:
    assert redact(line) == line


def test_the_filter_rewrites_a_record_built_from_arguments() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s"', (
        "127.0.0.1", "WebSocket", "/ws/chat?session=tok.sig"), None)
    assert RedactingFilter().filter(record)
    assert "tok.sig" not in record.getMessage()


def test_uvicorns_access_log_hides_a_web_chat_session_token(capsys: pytest.CaptureFixture[str]) -> None:
    import logging.config

    from api.cli.process import uvicorn_log_config

    logging.config.dictConfig(uvicorn_log_config())
    try:
        logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
                                                 "/ws/chat?session=abcdef0123.s1gnature", "1.1", 101)
        logging.getLogger("uvicorn.error").info("connection open for /ws/chat?session=abcdef0123.s1gnature")
    finally:
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).handlers.clear()
    printed = capsys.readouterr()
    assert "/ws/chat?session=[redacted]" in printed.out
    assert "s1gnature" not in printed.out + printed.err
    assert "connection open" in printed.err
