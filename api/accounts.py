"""Accounts of the back office and the agent console: what each role may do, invitations, the TOTP second
factor (RFC 6238), sign-in with it, the audit log and uploaded product images.

The accounts themselves (`handoff_agents`: email, name, role, argon2id hash) and their sessions are
`bot.handoff.agents`; the tables here (`api/models.py`) hold what only the back office needs.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.models import AccountTotp, AuditEvent, Invitation, UploadedImage
from bot.handoff import agents, rules
from bot.handoff.errors import WrongCredentials
from bot.handoff.models import Agent
from commerce.money import known_currencies, minor_units
from kit.clock import as_utc, utcnow
from kit.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from kit.text import is_email_address

ROLES = agents.ROLES
ROLE_NAMES = {"owner": "Owner", "staff": "Merchant staff", "supervisor": "Supervisor", "agent": "Agent"}
# What each role may do in the back office (the console checks supervisor on its own).
PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset({"dashboard", "catalog", "prices", "stock", "orders", "search", "faq", "faq_review", "team",
                        "tokens", "audit", "console", "shipping", "taxes", "rates", "channels", "rules", "insights",
                        "templates"}),
    "staff": frozenset({"dashboard", "catalog", "prices", "stock", "orders", "search", "faq", "shipping", "rates",
                        "channels", "insights"}),
    "supervisor": frozenset({"dashboard", "faq", "faq_review", "console", "rules", "insights"}),
    "agent": frozenset({"dashboard", "console"}),
}
# Refunds move money (issue 23): staff refund within the destination's return policy; only a supervisor or the owner
# may override it (with a reason, audited). Supervisors refund from the agent console.
PERMISSIONS["owner"] = PERMISSIONS["owner"] | {"refunds", "refund_override"}
PERMISSIONS["staff"] = PERMISSIONS["staff"] | {"refunds"}
PERMISSIONS["supervisor"] = PERMISSIONS["supervisor"] | {"refunds", "refund_override"}
INVITATION_TTL = timedelta(days=7)
TOTP_STEP = 30
TOTP_DIGITS = 6
MAX_IMAGE_BYTES = 2 * 1024 * 1024
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


class SecondFactorRequired(Unauthorized):
    code = "totp_required"
    title = "Second factor required"


class NotAllowed(Forbidden):
    code = "not_allowed"
    title = "Not allowed for your role"


def may(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())


def require(role: str, permission: str) -> None:
    """Forbidden (403, nothing changed) unless the role has the permission."""
    if not may(role, permission):
        raise NotAllowed(f"Your role ({ROLE_NAMES.get(role, role)}) may not do this; ask the shop's owner.",
                         permission=permission)


def actor_of(agent: Agent) -> str:
    return f"{agent.name} <{agent.email}>"


def token_actor(token_id: int, name: str) -> str:
    """How the audit log names a change made with an API token (a machine, or a script someone runs)."""
    return f"API token {token_id} ({name})"


# ------------------------------------------------------------------------------------------------ TOTP

def new_totp_secret() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _secret_bytes(secret: str) -> bytes:
    padded = secret.upper() + "=" * (-len(secret) % 8)
    return base64.b32decode(padded)


def hotp(key: bytes, counter: int, *, digits: int = TOTP_DIGITS, digest: str = "sha1") -> str:
    """RFC 4226 HOTP value of `counter`."""
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** digits).zfill(digits)


def totp_step(at: datetime, *, step: int = TOTP_STEP) -> int:
    return int(as_utc(at).timestamp()) // step


def totp(secret: str, at: datetime, *, digits: int = TOTP_DIGITS) -> str:
    """RFC 6238 TOTP (HMAC-SHA1, 30 s steps) of a base32 secret at a time."""
    return hotp(_secret_bytes(secret), totp_step(at), digits=digits)


def matching_step(secret: str, code: str, at: datetime, *, after_step: int = 0) -> int | None:
    """The time step (now, one before or one after: clock drift) whose code this is, if newer than `after_step`
    (a code is accepted once)."""
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != TOTP_DIGITS:
        return None
    now = totp_step(at)
    key = _secret_bytes(secret)
    for step in (now, now - 1, now + 1):
        if step > after_step and hmac.compare_digest(hotp(key, step), code):
            return step
    return None


def totp_uri(secret: str, *, account: str, issuer: str = "ShopTalk") -> str:
    return (f"otpauth://totp/{quote(issuer)}:{quote(account)}?secret={secret}&issuer={quote(issuer)}"
            f"&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP}")


async def totp_of(session: AsyncSession, *, account_id: int) -> AccountTotp | None:
    return await session.get(AccountTotp, account_id)


async def start_totp(session: AsyncSession, *, account_id: int) -> str:
    """A new pending secret (replaces a pending one; a confirmed factor must be turned off first)."""
    row = await totp_of(session, account_id=account_id)
    if row is not None and row.confirmed_at is not None:
        raise Conflict("Two-step sign-in is already on; turn it off first.", code="totp_already_on")
    secret = new_totp_secret()
    if row is None:
        session.add(AccountTotp(account_id=account_id, secret=secret, last_step=0))
    else:
        row.secret, row.last_step = secret, 0
    await session.flush()
    return secret


async def confirm_totp(session: AsyncSession, *, account_id: int, code: str) -> None:
    row = await totp_of(session, account_id=account_id)
    if row is None:
        raise NotFound("Start setting up two-step sign-in first.", code="totp_not_started")
    step = matching_step(row.secret, code, utcnow(), after_step=row.last_step)
    if step is None:
        raise InvalidInput("That code is not the current one; check the phone's clock and try again.",
                           code="totp_wrong_code", field="code")
    row.confirmed_at, row.last_step = utcnow(), step
    await session.flush()


async def disable_totp(session: AsyncSession, *, account_id: int) -> None:
    row = await totp_of(session, account_id=account_id)
    if row is not None:
        await session.delete(row)
        await session.flush()


async def sign_in(session: AsyncSession, *, email: str, password: str, code: str | None,
                  ttl_seconds: int) -> tuple[Agent, str]:
    """Password, then the TOTP code when the account has one; opens a session (console and back office)."""
    agent = await agents.check_password(session, email=email, password=password)
    factor = await totp_of(session, account_id=agent.id)
    if factor is not None and factor.confirmed_at is not None:
        if not code:
            raise SecondFactorRequired("Enter the 6-digit code from your authenticator app.")
        step = matching_step(factor.secret, code, utcnow(), after_step=factor.last_step)
        if step is None:
            raise WrongCredentials("Wrong email, password or code.")
        factor.last_step = step
    return agent, await agents.open_session(session, agent=agent, ttl_seconds=ttl_seconds)


# ----------------------------------------------------------------------------------------- invitations

def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def invite(session: AsyncSession, *, by: Agent, email: str, role: str) -> tuple[Invitation, str]:
    """Invite someone to the shop with a role (owner only); returns the row and the link token (shown once)."""
    require(by.role, "team")
    email = email.strip()
    if not is_email_address(email):
        raise InvalidInput(f"{email!r} is not an email address.", code="invalid_email", field="email")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}.", code="unknown_role", field="role")
    if await agents.agent_by_email(session, email=email) is not None:
        raise Conflict(f"{email} already has an account.", code="account_exists", field="email")
    token = secrets.token_urlsafe(24)
    now = utcnow()
    row = Invitation(shop_id=by.shop_id, email=email, role=role, token_hash=_hash(token), invited_by=by.id,
                     created_at=now, expires_at=now + INVITATION_TTL)
    session.add(row)
    await session.flush()
    return row, token


async def invitation_for(session: AsyncSession, *, token: str) -> Invitation:
    row = await session.scalar(select(Invitation).where(Invitation.token_hash == _hash(token)))
    if row is None or row.revoked_at is not None:
        raise NotFound("This invitation is not valid; ask for a new one.", code="invitation_not_found")
    if row.accepted_at is not None:
        raise Conflict("This invitation was already used; sign in instead.", code="invitation_used")
    if as_utc(row.expires_at) <= utcnow():
        raise Conflict("This invitation has expired; ask for a new one.", code="invitation_expired")
    return row


async def accept_invitation(session: AsyncSession, *, token: str, name: str, password: str) -> Agent:
    """Create the invited account (argon2id password); the invitation works once."""
    row = await invitation_for(session, token=token)
    agent = await agents.create_agent(session, email=row.email, name=name, role=row.role, password=password,
                                      shop_id=row.shop_id)
    row.accepted_at = utcnow()
    await session.flush()
    return agent


async def pending_invitations(session: AsyncSession, *, shop_id: int) -> Sequence[Invitation]:
    return (await session.scalars(
        select(Invitation).where(Invitation.shop_id == shop_id, Invitation.accepted_at.is_(None),
                                 Invitation.revoked_at.is_(None), Invitation.expires_at > utcnow())
        .order_by(Invitation.id.desc()))).all()


async def team(session: AsyncSession, *, shop_id: int) -> Sequence[Agent]:
    return await agents.accounts_of_shop(session, shop_id=shop_id)


# ------------------------------------------------------------------------------------------- audit log

AUDIT_AREAS = ("catalog", "price", "stock", "orders", "search", "faq", "rules", "tokens", "team", "shipping", "taxes",
               "rates", "channels")


async def record(session: AsyncSession, *, actor: str, area: str, action: str, subject: str,
                 details: dict[str, Any] | None = None) -> None:
    """Write one audit event in the caller's transaction (so it exists exactly when the change does)."""
    assert area in AUDIT_AREAS, area
    session.add(AuditEvent(at=utcnow(), actor=actor[:200], area=area, action=action[:40], subject=subject[:200],
                           details=details or {}))
    await session.flush()


async def save_rules_audited(session: AsyncSession, *, shop_id: int, new: rules.EscalationRules,
                             actor: str) -> tuple[rules.EscalationRules, dict[str, Any]]:
    """Save the shop's hand-off rules and audit what changed (before and after per field), wherever they are edited:
    the back office's rules page and the agent console's PUT /api/v1/agent/rules. Returns the saved rules and what
    changed."""
    before = (await rules.rules_of(session, shop_id=shop_id)).model_dump(mode="json")
    saved = await rules.save_rules(session, shop_id=shop_id, rules=new)
    changed = {k: {"before": before[k], "after": v} for k, v in saved.model_dump(mode="json").items()
               if before.get(k) != v}
    if changed:
        await record(session, actor=actor, area="rules", action="hand-off rules changed", subject=f"shop {shop_id}",
                     details=changed)
    return saved, changed


async def audit_events(session: AsyncSession, *, area: str | None = None, subject: str | None = None,
                       limit: int = 50, offset: int = 0) -> tuple[int, Sequence[AuditEvent]]:
    query = select(AuditEvent)
    counted = select(func.count()).select_from(AuditEvent)
    if area:
        query, counted = query.where(AuditEvent.area == area), counted.where(AuditEvent.area == area)
    if subject:
        query, counted = query.where(AuditEvent.subject == subject), counted.where(AuditEvent.subject == subject)
    total = int(await session.scalar(counted) or 0)
    rows = (await session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit).offset(offset))).all()
    return total, rows


# ------------------------------------------------------------------------------------------ validation

def parse_price(text: str, currency: str, *, field: str) -> Decimal:
    """A price as typed in a form: a positive number with at most the currency's minor-unit decimals."""
    currency = currency.strip().upper()
    if currency not in known_currencies():
        raise InvalidInput(f"{currency!r} is not a currency we know (ISO 4217).", code="unknown_currency",
                           field="currency")
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidInput(f"{text!r} is not a number.", code="invalid_price", field=field) from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidInput("The price must be more than zero.", code="invalid_price", field=field)
    exponent = amount.as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    allowed = minor_units(currency)
    if decimals > allowed:
        raise InvalidInput(f"{currency} prices have at most {allowed} decimal places; {text.strip()} has {decimals}.",
                           code="price_decimals", field=field)
    return amount


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


async def store_image(session: AsyncSession, *, data: bytes, by: str) -> UploadedImage:
    """Keep an uploaded product image: PNG, JPEG, GIF or WebP by its bytes (not its name), at most 2 MB."""
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidInput(f"The image is {len(data) / 1_048_576:.1f} MB; the limit is "
                           f"{MAX_IMAGE_BYTES // 1_048_576} MB.", code="image_too_large", field="image")
    content_type = _sniff(data)
    if content_type is None:
        raise InvalidInput("That file is not a PNG, JPEG, GIF or WebP image.", code="not_an_image", field="image")
    row = UploadedImage(content_type=content_type, data=data, sha256=hashlib.sha256(data).hexdigest(),
                        uploaded_by=by[:200], created_at=utcnow())
    session.add(row)
    await session.flush()
    return row


def image_url(row: UploadedImage) -> str:
    return f"/media/{row.id}.{IMAGE_TYPES[row.content_type]}"


async def image(session: AsyncSession, *, image_id: int) -> UploadedImage:
    row = await session.get(UploadedImage, image_id)
    if row is None:
        raise NotFound("No such image.", code="image_not_found")
    return row
