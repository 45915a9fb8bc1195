"""Storefronts that embed the web chat (`<script src=".../widget.js" data-shop="...">`): which origins may frame it,
and identity verification of their logged-in customers.

A storefront's server signs its customer's id with the site's identity secret, HMAC-SHA256 in hex (as Intercom and
Chatwoot do), and the page passes id and signature to `ShopTalk.identify(...)`. A verified customer chats in a
session of their own, whose id is derived from the customer id with a key only this server holds: the same
conversation (and the same shopper, so their orders need no e-mail proof) on every device, and an id nobody can
guess. An unsigned or badly signed identity is refused and the chat stays anonymous.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.models import WebchatSite
from kit.clock import utcnow
from kit.errors import InvalidInput, NotFound

SHOP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
SIGNATURE = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_ORIGINS = 50


class SiteNotFound(NotFound):
    code = "webchat_site_not_found"


@dataclass(frozen=True)
class SiteView:
    """A site as the merchant and the loader see it: never the secret itself."""

    shop: str
    allowed_origins: list[str]
    identity_verification: bool


def normalize_origin(value: str) -> str:
    """`https://shop.example` as a browser sends it in `Origin`: scheme, host, port if not the default."""
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{text!r} is not an origin like https://shop.example.")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInput(f"{text!r} is not an origin: no path, query or user, only scheme://host[:port].")
    if "*" in text or any(c in text for c in " ;,'\""):
        raise InvalidInput(f"{text!r} is not an origin: wildcards and separators are not accepted.")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"{text!r} has an invalid port.") from exc
    default = 443 if parts.scheme == "https" else 80
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def check_shop(shop: str) -> str:
    if not SHOP_NAME.match(shop):
        raise InvalidInput("A shop name is 1-64 lowercase letters, digits, '-' or '_'.")
    return shop


class SiteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, shop: str) -> WebchatSite | None:
        return await self.session.scalar(select(WebchatSite).where(WebchatSite.shop == shop))

    async def all(self) -> list[WebchatSite]:
        return list(await self.session.scalars(select(WebchatSite).order_by(WebchatSite.shop)))

    def add(self, site: WebchatSite) -> None:
        self.session.add(site)


def view(site: WebchatSite) -> SiteView:
    return SiteView(shop=site.shop, allowed_origins=list(site.allowed_origins or []),
                    identity_verification=bool(site.identity_secret))


async def get_site(session: AsyncSession, *, shop: str) -> WebchatSite:
    """The site of a snippet's data-shop; SiteNotFound when the merchant has not set one up."""
    site = await SiteRepository(session).get(check_shop(shop))
    if site is None:
        raise SiteNotFound(f"No web chat site {shop!r}; the merchant sets it up at /api/v1/webchat/sites/{shop}.")
    return site


async def list_sites(session: AsyncSession) -> list[WebchatSite]:
    return await SiteRepository(session).all()


async def save_site(session: AsyncSession, *, shop: str, allowed_origins: list[str]) -> WebchatSite:
    """Create or update a site's allowed storefront origins (normalised, deduplicated, in the given order)."""
    if len(allowed_origins) > MAX_ORIGINS:
        raise InvalidInput(f"At most {MAX_ORIGINS} origins.")
    origins = list(dict.fromkeys(normalize_origin(o) for o in allowed_origins))
    repo = SiteRepository(session)
    site = await repo.get(check_shop(shop))
    if site is None:
        site = WebchatSite(shop=shop, allowed_origins=origins, identity_secret=None, updated_at=utcnow())
        repo.add(site)
    else:
        site.allowed_origins = origins
        site.updated_at = utcnow()
    await session.flush()
    return site


async def rotate_identity_secret(session: AsyncSession, *, shop: str) -> str:
    """A new identity secret for the site (returned once; signatures made with the old one stop verifying)."""
    site = await get_site(session, shop=shop)
    secret = secrets.token_urlsafe(32)
    site.identity_secret = secret
    site.updated_at = utcnow()
    await session.flush()
    return secret


async def disable_identity_verification(session: AsyncSession, *, shop: str) -> None:
    site = await get_site(session, shop=shop)
    site.identity_secret = None
    site.updated_at = utcnow()
    await session.flush()


def origin_allowed(site: WebchatSite, origin: str | None) -> bool:
    if not origin:
        return False
    try:
        return normalize_origin(origin) in (site.allowed_origins or [])
    except InvalidInput:
        return False


def identity_signature(secret: str, customer_id: str) -> str:
    """What the storefront's server computes: hex HMAC-SHA256 of the customer id under the site's secret."""
    return hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()


def identity_verified(site: WebchatSite, *, customer_id: str, signature: str) -> bool:
    """True only for a well-formed customer id signed with this site's current secret (constant-time)."""
    if not site.identity_secret or not CUSTOMER_ID.match(customer_id) or not SIGNATURE.match(signature):
        return False
    return hmac.compare_digest(identity_signature(site.identity_secret, customer_id), signature.lower())
