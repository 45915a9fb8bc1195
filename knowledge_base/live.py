"""The process's live FAQ index: follows the change log so an edit answers within a second everywhere."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from kit.db import Database
from kit.tasks import cancel_and_wait
from knowledge_base import repository
from knowledge_base.index import (
    DIM,
    HybridIndex,
    IndexedEntry,
    Retrieval,
    Weights,
    fold_rows,
    stored_rows,
    texts_to_embed,
)
from knowledge_base.models import FaqEntry
from nlu.embedder import Embedder, get_embedder

log = logging.getLogger(__name__)
# A PostgreSQL sequence hands out ids before commit; a missing id may still appear this long.
GAP_WAIT_SECONDS = 10.0
LOAD_BATCH = 2_000


class _LocalCommits:
    """How many transactions of this process committed FAQ changes: an index that has not seen the latest
    catches up before answering (read-your-writes in a process); other processes' changes arrive by polling."""

    count = 0


@event.listens_for(Session, "after_commit")
def _count_local_commit(session: Session) -> None:
    if session.info.pop(repository.CHANGED, False):
        _LocalCommits.count += 1


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_change(session: Session) -> None:
    session.info.pop(repository.CHANGED, None)


def _indexed(entry: FaqEntry) -> IndexedEntry:
    return IndexedEntry(entry_id=entry.id, group_key=entry.group_key, language=entry.language,
                        questions=tuple(entry.questions), answer=entry.answer, version=entry.version,
                        countries=frozenset(entry.countries), channels=frozenset(entry.channels))


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("FAQ index move to IVF failed; exact search goes on", exc_info=task.exception())


class LiveFaqIndex:
    """HybridIndex kept in step with the database by polling `kb_changes` (and before each answer)."""

    def __init__(self, database: Database, *, embedder: Embedder | None = None, poll_interval: float = 0.2,
                 weights: Weights | None = None, ann_from_rows: int = 30_000) -> None:
        self.database = database
        self.ann_from_rows = ann_from_rows
        self.embedder = embedder or get_embedder()
        self.poll_interval = poll_interval
        self.index = HybridIndex(weights, ann_from_rows=ann_from_rows, build_inline=False)
        self.cursor = 0
        self._gaps: dict[int, float] = {}
        # When the last sync began and how many local commits it had seen (see `_behind`).
        self._synced_at = -float("inf")
        self._synced_commits = -1
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._ivf_task: asyncio.Task[None] | None = None
        self.loaded = False
        self.vectors_saved = 0  # re-embedded entries (older row layout) whose vectors this process stored

    async def start(self) -> None:
        await self.reload()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        for task in (self._task, self._ivf_task):
            await cancel_and_wait(task)
        self._task = self._ivf_task = None

    async def reload(self) -> None:
        """Rebuild from the database (at start); later changes arrive through `sync`."""
        async with self._lock:
            index = HybridIndex(self.index.weights, ann_from_rows=self.ann_from_rows, build_inline=False)
            reembedded: list[tuple[int, int, bytes]] = []
            async with self.database.sessions() as session:
                # Read the cursor first: a change committed during the load is applied again, harmlessly.
                cursor = await repository.latest_change(session)
                after = 0
                while True:
                    batch = await repository.published_entries(session, after_id=after, batch=LOAD_BATCH)
                    if not batch:
                        break
                    await self._upsert(index, batch, reembedded)
                    if reembedded:
                        # Stored once, so the next start reads them instead of embedding again. In a unit of
                        # work of its own, per batch (`sync` never stores: it may run inside a caller's
                        # transaction, where a second writer would wait on it).
                        await self._store_vectors(reembedded)
                        reembedded.clear()
                    if index.vectors.ivf_due:
                        # Not serving yet (the old index does): build here, on a worker thread.
                        await index.move_to_ivf()
                    after = batch[-1].id
            self.index, self.cursor, self._gaps, self.loaded = index, cursor, {}, True

    async def _upsert(self, index: HybridIndex, entries: Sequence[FaqEntry],
                      reembedded: list[tuple[int, int, bytes]] | None = None) -> None:
        missing = [e for e in entries if e.vectors is None or e.vectors_version != e.version
                   or len(e.vectors) != stored_rows(len(e.questions)) * DIM * 4]  # older row layout
        fresh: dict[int, npt.NDArray[np.float32]] = {}
        if missing:
            texts = [texts_to_embed(e.questions, e.answer) for e in missing]
            rows = await self.embedder.embed_many([t for group in texts for t in group])
            start = 0
            for entry, group in zip(missing, texts, strict=True):
                fresh[entry.id] = fold_rows(rows[start:start + len(group)], len(entry.questions))
                start += len(group)
            if reembedded is not None:
                reembedded.extend((e.id, e.version, fresh[e.id].tobytes()) for e in missing)
        for entry in entries:
            if entry.id in fresh:
                vectors = fresh[entry.id]
            else:
                assert entry.vectors is not None
                vectors = np.frombuffer(entry.vectors, dtype=np.float32).reshape(-1, DIM)
            index.upsert(_indexed(entry), vectors)

    async def _store_vectors(self, rows: list[tuple[int, int, bytes]]) -> None:
        """Save vectors re-embedded here (an older row layout or none stored), so no process embeds them again."""
        try:
            async with self.database.unit_of_work() as session:
                self.vectors_saved += await repository.store_vectors(session, rows)
        except Exception:  # noqa: BLE001 - the index still serves them; the next start tries again
            log.warning("could not store %d re-embedded FAQ vector blocks", len(rows), exc_info=True)

    def _start_ivf_move(self) -> None:
        """Move the serving index to IVF on a worker thread once it is large; exact search serves meanwhile."""
        previous = self._ivf_task
        failed = previous is not None and previous.done() and (previous.cancelled() or previous.exception())
        if self.index.vectors.ivf_due and not failed and (previous is None or previous.done()):
            self._ivf_task = asyncio.get_running_loop().create_task(self.index.move_to_ivf())
            self._ivf_task.add_done_callback(_log_failure)

    async def sync(self, session: AsyncSession | None = None) -> int:
        """Apply every change committed since the last sync; returns how many entries changed."""
        async with self._lock:
            if session is not None:
                return await self._sync(session)
            async with self.database.sessions() as own:
                return await self._sync(own)

    def _behind(self) -> bool:
        """Whether an answer must catch up first: this process committed a change the index has not seen,
        or no sync (the poller's or an answer's) began within the poll interval."""
        return (self._synced_commits != _LocalCommits.count
                or time.monotonic() - self._synced_at >= self.poll_interval)

    async def _sync(self, session: AsyncSession) -> int:
        now = time.monotonic()
        commits = _LocalCommits.count
        self._gaps = {gap: seen for gap, seen in self._gaps.items() if now - seen < GAP_WAIT_SECONDS}
        changes = await repository.changes_after(session, self.cursor, self._gaps)
        self._synced_at, self._synced_commits = now, commits
        if not changes:
            return 0
        newest = max(change for change, _entry in changes)
        known = {change for change, _entry in changes}
        for missing in range(self.cursor + 1, newest):
            if missing not in known:
                self._gaps.setdefault(missing, now)
        for change in known:
            self._gaps.pop(change, None)
        self.cursor = max(self.cursor, newest)
        entry_ids = {entry for _change, entry in changes}
        entries = {e.id: e for e in await repository.entries_by_id(session, entry_ids)}
        live = [e for e in entries.values() if e.status == "published" and e.deleted_at is None]
        live_ids = {e.id for e in live}
        for entry_id in entry_ids - live_ids:
            self.index.remove(entry_id)
        await self._upsert(self.index, [e for e in live if self.index.version_of(e.id) != e.version])
        self._start_ivf_move()
        return len(entry_ids)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a failed poll is retried on the next tick
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # Stopped mid-query: closing the session raised in place of the CancelledError (seen as
                    # PendingRollbackError at shutdown). That is the stop, not a failed poll.
                    raise asyncio.CancelledError from None
                log.exception("FAQ index poll failed")

    async def search(self, question: str, *, language: str, country: str | None = None,
                     channel: str | None = None, embedding: npt.NDArray[np.float32] | None = None,
                     k: int = 5, session: AsyncSession | None = None) -> Retrieval:
        """Top-k matches; with a session every match is checked live (a deleted or unpublished entry is never
        served), and the index first catches up when it may be behind (`_behind`): so an edit answers at once
        in the process that made it and within the poll interval in every other."""
        if session is not None and self._behind():
            await self.sync(session)
        if embedding is None:
            embedding = await self.embedder.embed(question)
        result = self.index.search(question, embedding, language=language, country=country, channel=channel,
                                   k=k + 2)
        if session is not None:
            # The database decides: an entry deleted or unpublished a moment ago is never served.
            current = await repository.live_versions(session, [m.entry_id for m in result.matches])
            kept = [m for m in result.matches if current.get(m.entry_id) == m.version]
        else:
            kept = list(result.matches)
        kept = kept[:k]
        return Retrieval(decision=self.index.decide(kept), matches=kept)
