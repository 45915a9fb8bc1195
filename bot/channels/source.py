"""Where a shopper came from, as a channel reports it: the web chat's landing page and referrer (with the UTM
parameters of the landing page), Telegram's deep-link start parameter (t.me/<bot>?start=<parameter>). Kept on the
conversation's first message (its metadata) and shown in the agent console's shopper panel."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

MAX_URL_CHARS = 2000
MAX_VALUE_CHARS = 200
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign")
START_PARAMETER = re.compile(r"^/start(?:@\w+)?\s+([A-Za-z0-9_-]{1,64})$")


def _url(value: str | None) -> str | None:
    """An http(s) address without its fragment, or None (anything else a page could send is dropped)."""
    if not value or len(value) > MAX_URL_CHARS:
        return None
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts._replace(fragment="").geturl()


def visit_source(page: str | None, referrer: str | None) -> dict[str, str] | None:
    """The web chat's landing page, referrer and UTM parameters (utm_source/medium/campaign of the landing page);
    None when the widget sent nothing usable."""
    source: dict[str, str] = {}
    landing = _url(page)
    came = _url(referrer)
    if landing:
        source["landing_page"] = landing
        query = parse_qs(urlsplit(landing).query)
        for key in UTM_KEYS:
            if query.get(key) and query[key][0].strip():
                source[key] = query[key][0].strip()[:MAX_VALUE_CHARS]
    if came:
        source["referrer"] = came
    return source or None


def telegram_start(text: str | None) -> dict[str, str] | None:
    """The deep-link start parameter of a Telegram "/start <parameter>" message."""
    found = START_PARAMETER.match((text or "").strip())
    return {"start_parameter": found.group(1)} if found else None
