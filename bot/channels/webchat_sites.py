"""Storefronts that embed the web chat (`<script src=".../widget.js" data-shop="...">`): which origins may frame it,
and identity verification of their logged-in customers.

A storefront's server signs what it vouches for with the site's identity secret, HMAC-SHA256 in hex (as Intercom and
Chatwoot do), and the page passes it to `ShopTalk.identify(...)`. The signed text is canonical: the customer id alone,
or, when the page also gives the customer's e-mail, `customer_id + "\n" + email` (ids cannot hold a newline, so the
two never run together); docs/webchat-identity.md shows it in Python, Node and PHP. A verified customer chats in a
session of their own, whose id is derived from the customer id with a key only this server holds: the same
conversation (and the same shopper, so their orders need no e-mail proof) on every device, and an id nobody can
guess. A signed e-mail also links the storefront's own orders placed with that e-mail to that shopper. An unsigned or
badly signed identity is refused and the chat stays anonymous.

The identity secret is kept encrypted (AES-256-GCM, key `security.data_encryption_key`, the shop name as associated
data so a sealed secret cannot be moved to another site); it is shown once, when made or rotated, and never logged.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.models import WebchatSite
from commerce.orders import service as orders
from commerce.shoppers import service as shoppers
from kit.clock import utcnow
from kit.errors import InvalidInput, NotFound
from kit.settings import Settings, data_encryption_key

log = logging.getLogger(__name__)

SHOP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
SIGNATURE = re.compile(r"^[0-9a-fA-F]{64}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}$")
MAX_ORIGINS = 50
SEALED_PREFIX = "v1:"


class SiteNotFound(NotFound):
    code = "webchat_site_not_found"


class SecretUnreadable(Exception):
    """A sealed secret this server's key does not open (the data encryption key changed)."""


class SecretBox:
    """Seals and opens the sites' identity secrets with AES-256-GCM: "v1:" + base64url(nonce + ciphertext + tag)."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def of(cls, settings: Settings) -> SecretBox:
        return cls(data_encryption_key(settings))

    @staticmethod
    def _context(shop: str) -> bytes:
        return b"shoptalk webchat identity secret\x00" + shop.encode()

    def seal(self, plain: str, *, shop: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, plain.encode(), self._context(shop))
        return SEALED_PREFIX + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    def open(self, sealed: str, *, shop: str) -> str:
        if not sealed.startswith(SEALED_PREFIX):
            raise SecretUnreadable("not a sealed secret")
        body = sealed[len(SEALED_PREFIX):]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return self._aead.decrypt(raw[:12], raw[12:], self._context(shop)).decode()
        except (InvalidTag, ValueError) as exc:
            raise SecretUnreadable("the data encryption key does not open this secret") from exc


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


async def rotate_identity_secret(session: AsyncSession, *, shop: str, box: SecretBox) -> str:
    """A new identity secret for the site (returned once, stored sealed; signatures made with the old one stop
    verifying)."""
    site = await get_site(session, shop=shop)
    secret = secrets.token_urlsafe(32)
    site.identity_secret = box.seal(secret, shop=site.shop)
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


def signed_text(customer_id: str, email: str | None = None) -> str:
    """The canonical text a storefront signs: the customer id, or the id and the e-mail on two lines."""
    return customer_id if not email else f"{customer_id}\n{email}"


def identity_signature(secret: str, customer_id: str, email: str | None = None) -> str:
    """What the storefront's server computes: hex HMAC-SHA256 of the canonical text under the site's secret."""
    return hmac.new(secret.encode(), signed_text(customer_id, email).encode(), hashlib.sha256).hexdigest()


def identity_verified(site: WebchatSite, *, box: SecretBox, customer_id: str, signature: str,
                      email: str | None = None) -> bool:
    """True only for a well-formed customer id (and e-mail, if given) signed with this site's current secret
    (compared in constant time). A secret the key cannot open verifies nothing (and is logged, never shown)."""
    if not site.identity_secret or not CUSTOMER_ID.match(customer_id) or not SIGNATURE.match(signature):
        return False
    if email is not None and not EMAIL.match(email):
        return False
    try:
        secret = box.open(site.identity_secret, shop=site.shop)
    except SecretUnreadable:
        log.error("web chat site %s: its identity secret cannot be decrypted with the configured "
                  "SHOPTALK_SECURITY__DATA_ENCRYPTION_KEY; rotate the secret or restore the key", site.shop)
        return False
    return hmac.compare_digest(identity_signature(secret, customer_id, email), signature.lower())


async def link_verified_email(session: AsyncSession, *, session_id: str, email: str) -> int:
    """A verified customer's signed e-mail: it becomes an identity of the shopper behind their chat session, and the
    storefront's orders placed with that e-mail and no shopper yet become theirs (order status then needs no
    e-mail or postcode question). Returns how many orders were linked; an e-mail already another shopper's links
    nothing."""
    shopper = await shoppers.shopper_for_identity(session, kind="webchat", external_id=session_id)
    address = email.strip().lower()
    try:
        await shoppers.link_identity(session, shopper_id=shopper.id, kind="email", external_id=address)
    except InvalidInput:
        log.warning("web chat: a verified e-mail is already another shopper's; no orders linked")
        return 0
    if shopper.email is None:
        shopper.email = address
    linked = await orders.link_guest_orders(session, email=address, shopper_id=shopper.id)
    await session.flush()
    return linked
