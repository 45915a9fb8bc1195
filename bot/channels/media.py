"""The media store: files shoppers send on a channel (WhatsApp image/document/audio/video, WeChat pictures).

Decision: the bytes are a blob in the database (`bot_channel_media.data`), not files on disk: every API process
serves them without a shared volume, they go with the database's backups, and the size limit per channel
(`media_max_bytes`, 16 MB on WhatsApp, 10 MB on WeChat) keeps the rows bounded. The webhook registers a media
row (`pending`) and queues a `media.<channel>` outbox event in the same transaction; the channel's fetcher
(`WhatsAppChannel.fetch_media`, `WeChatChannel.fetch_media`) downloads it with the outbox's retries and stores it
(`stored`) or records why not (`failed`: too large, checksum mismatch, the platform refused). The agent console
reads it through `GET /api/v1/agent/conversations/{id}/messages/{message_id}/media` (api/http/agent/media.py):
only with an agent session, and only images of a safe type are shown inline.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.models import ChannelMedia
from kit.clock import utcnow
from kit.db import Database
from kit.outbox import DeliveryError, OutboxEvent, enqueue

PENDING = "pending"
STORED = "stored"
FAILED = "failed"
# Shown inline in the console; anything else (SVG, HTML, PDF, ...) is only ever a download.
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
log = logging.getLogger(__name__)
MEDIA_KEY = "media"  # InboundMessage.metadata[MEDIA_KEY] = {"type", "id" | "MediaId", "mime_type", ...}


class MediaRefused(Exception):
    """The file cannot be kept (too large, wrong checksum): recorded as failed, not retried."""


@dataclass(frozen=True)
class MediaRef:
    """What a webhook says of a shopper's file."""

    channel: str
    media_key: str
    sender_id: str
    kind: str
    mime_type: str | None = None
    filename: str | None = None
    declared_sha256: str | None = None


def topic(channel: str) -> str:
    return f"media.{channel}"


async def register(session: AsyncSession, ref: MediaRef) -> bool:
    """Note a shopper's file and queue its fetch in the caller's transaction; False when already known (a replayed
    webhook)."""
    known = await session.scalar(select(ChannelMedia.id).where(ChannelMedia.channel == ref.channel,
                                                               ChannelMedia.media_key == ref.media_key))
    if known is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(ChannelMedia(channel=ref.channel, media_key=ref.media_key, sender_id=ref.sender_id,
                                     kind=ref.kind, status=PENDING, mime_type=ref.mime_type, filename=ref.filename,
                                     declared_sha256=ref.declared_sha256, created_at=utcnow()))
    except IntegrityError:  # the same webhook delivered twice at once
        return False
    await enqueue(session, topic=topic(ref.channel), idempotency_key=f"media:{ref.channel}:{ref.media_key}",
                  payload={"channel": ref.channel, "media_key": ref.media_key, "sender_id": ref.sender_id},
                  max_attempts=10)
    return True


def checksum_matches(data: bytes, declared: str | None) -> bool:
    """The platform's sha256 (hex, or base64 as WhatsApp's webhooks give it) against the bytes; no claim: True."""
    if not declared:
        return True
    digest = hashlib.sha256(data).digest()
    return declared.strip().lower() == digest.hex() or declared.strip() == base64.b64encode(digest).decode()


async def pending(session: AsyncSession, *, channel: str, media_key: str) -> ChannelMedia | None:
    return await session.scalar(select(ChannelMedia).where(ChannelMedia.channel == channel,
                                                           ChannelMedia.media_key == media_key))


async def store(session: AsyncSession, *, channel: str, media_key: str, data: bytes, mime_type: str | None,
                max_bytes: int, sha256_claims: Sequence[str | None] = ()) -> ChannelMedia:
    """Keep a fetched file; MediaRefused (and the row marked failed) when it breaks the size limit or a checksum."""
    row = await pending(session, channel=channel, media_key=media_key)
    if row is None:
        raise LookupError(f"no media {channel}:{media_key}")
    problem = None
    if len(data) > max_bytes:
        problem = f"the file is {len(data)} bytes; the limit is {max_bytes}"
    elif not all(checksum_matches(data, claim) for claim in (row.declared_sha256, *sha256_claims)):
        problem = "the file's sha256 does not match what the platform announced"
    if problem is not None:
        await fail(session, channel=channel, media_key=media_key, error=problem)
        raise MediaRefused(problem)
    row.data, row.size, row.sha256 = data, len(data), hashlib.sha256(data).hexdigest()
    row.mime_type = (mime_type or row.mime_type or "application/octet-stream").split(";")[0].strip().lower()
    row.status, row.error, row.stored_at = STORED, None, utcnow()
    await session.flush()
    return row


# What a channel's downloader returns: the bytes, their MIME type as the platform says, and checksums it announced.
Download = tuple[bytes, str | None, Sequence[str | None]]


async def fetch_into_store(database: Database, event: OutboxEvent, *, channel: str, max_bytes: int,
                           download: Callable[[str], Awaitable[Download]]) -> None:
    """A `media.<channel>` outbox handler's body: download the pending file and keep it. A permanent download error
    (or the last attempt) marks the row failed and re-raises for the outbox; a file that breaks the size limit or a
    checksum is recorded as failed and not retried."""
    media_key = str(event.payload["media_key"])
    async with database.sessions() as session:
        row = await pending(session, channel=channel, media_key=media_key)
        if row is None or row.status != PENDING:
            return
    try:
        data, mime_type, claims = await download(media_key)
    except DeliveryError as error:
        if error.permanent or event.attempts >= event.max_attempts:
            async with database.unit_of_work() as session:
                await fail(session, channel=channel, media_key=media_key, error=str(error))
        raise
    refused = None
    async with database.unit_of_work() as session:
        try:
            await store(session, channel=channel, media_key=media_key, data=data, mime_type=mime_type,
                        max_bytes=max_bytes, sha256_claims=claims)
        except MediaRefused as exc:  # recorded on the row for the agent; retrying cannot help
            refused = str(exc)
    if refused is not None:
        log.warning("%s media %s not kept: %s", channel, media_key, refused)


async def fail(session: AsyncSession, *, channel: str, media_key: str, error: str) -> None:
    row = await pending(session, channel=channel, media_key=media_key)
    if row is not None and row.status != STORED:
        row.status, row.error = FAILED, error[:2000]
        await session.flush()


def ref_of(metadata: dict[str, Any] | None) -> tuple[str, str] | None:
    """(kind, media key) of a stored inbound message's file, from its metadata."""
    media = (metadata or {}).get(MEDIA_KEY)
    if not isinstance(media, dict):
        return None
    key = media.get("id") or media.get("MediaId")
    return (str(media.get("type") or "file"), str(key)) if key else None


async def media_views(session: AsyncSession, *, conversation_id: int, channel: str,
                      messages: Sequence[tuple[int, dict[str, Any] | None]]) -> dict[int, dict[str, Any]]:
    """Per message id (of `messages`: id and stored content): what the console shows of its file."""
    refs = {message_id: ref for message_id, content in messages
            if (ref := ref_of((content or {}).get("metadata"))) is not None}
    if not refs:
        return {}
    rows = {row.media_key: row for row in (await session.scalars(
        select(ChannelMedia).where(ChannelMedia.channel == channel,
                                   ChannelMedia.media_key.in_([key for _, key in refs.values()])))).all()}
    views: dict[int, dict[str, Any]] = {}
    for message_id, (kind, key) in refs.items():
        row = rows.get(key)
        if row is None:
            continue
        views[message_id] = {
            "kind": kind, "status": row.status, "mime_type": row.mime_type, "filename": row.filename,
            "size": row.size, "error": row.error, "inline": row.mime_type in INLINE_TYPES and kind != "document",
            "url": f"/api/v1/agent/conversations/{conversation_id}/messages/{message_id}/media"}
    return views


async def file_of(session: AsyncSession, *, channel: str, sender_id: str,
                  metadata: dict[str, Any] | None) -> ChannelMedia | None:
    """The stored file of a message (None when it has none, or it is not stored yet, or is another sender's)."""
    ref = ref_of(metadata)
    if ref is None:
        return None
    row = await session.scalar(select(ChannelMedia).where(ChannelMedia.channel == channel,
                                                          ChannelMedia.media_key == ref[1]))
    if row is None or row.sender_id != sender_id or row.status != STORED:
        return None
    await session.refresh(row, ["data"])
    return row


def download_headers(row: ChannelMedia) -> dict[str, str]:
    """Headers that keep a shopper's file harmless in an agent's browser: a safe image inline, anything else an
    attachment (with its type, but octet-stream for anything a browser would render as a page: an SVG or HTML
    file never runs), never sniffed, sandboxed, private."""
    mime = row.mime_type or "application/octet-stream"
    inline = mime in INLINE_TYPES and row.kind != "document"
    extension = mime.split("/")[-1] if inline else "bin"
    name = row.filename or f"{row.kind}-{row.id}.{extension}"
    ascii_name = "".join(c if (c.isascii() and c.isalnum()) or c in "._-" else "_" for c in name)[:100] or "file"
    disposition = "inline" if inline else "attachment"
    renders = any(word in mime for word in ("html", "svg", "xml", "javascript", "ecmascript")) or \
        not _MIME.fullmatch(mime)
    return {"Content-Type": "application/octet-stream" if renders else mime,
            "Content-Disposition": f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600"}
