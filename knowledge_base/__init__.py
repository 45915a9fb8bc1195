"""Knowledge base: the merchant's multilingual FAQ and its live hybrid retrieval.

Service API for the bot and the API (others never touch the tables or repositories):

* ``open_index(database)`` -> the process's ``LiveFaqIndex`` (loads, then follows edits every 200 ms)
* ``answer(index, question=, language=, country=, channel=, embedding=, session=)`` -> ``Retrieval``
  with ``decision`` ("answer", "suggest" = show as "did you mean", "none") and ``matches``
* drafts and review (``knowledge_base.drafts``): ``draft_state``, ``save_draft``, ``request_review``,
  ``publish_draft``, ``discard_draft``, ``awaiting_review``, ``missing_translations``, ``version_diff``
* entry services: ``create_entry``, ``update_entry``, ``set_status``, ``translate_entry``,
  ``restore_version``, ``delete_entry``, ``list_entries``, ``entry_history``, ``import_entries``,
  ``export_entries``, ``load_demo_faq``
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import Database
from knowledge_base.drafts import (
    DraftState,
    awaiting_review,
    discard_draft,
    draft_state,
    drafts_for,
    missing_translations,
    publish_draft,
    request_review,
    save_draft,
    version_diff,
)
from knowledge_base.index import HybridIndex, IndexedEntry, Match, Retrieval, Weights
from knowledge_base.live import LiveFaqIndex
from knowledge_base.service import (
    create_entry,
    delete_entry,
    entry_history,
    export_entries,
    get_entry,
    import_entries,
    list_entries,
    load_demo_faq,
    restore_version,
    set_status,
    translate_entry,
    translations_of,
    update_entry,
)

_indexes: dict[int, LiveFaqIndex] = {}


async def open_index(database: Database, *, poll_interval: float = 0.2) -> LiveFaqIndex:
    """The live index of this process for `database` (started on first call, shared afterwards)."""
    index = _indexes.get(id(database))
    if index is None or index.database is not database:
        index = LiveFaqIndex(database, poll_interval=poll_interval)
        await index.start()
        _indexes[id(database)] = index
    return index


async def close_index(database: Database) -> None:
    index = _indexes.pop(id(database), None)
    if index is not None:
        await index.stop()


async def answer(index: LiveFaqIndex, *, question: str, language: str, country: str | None = None,
                 channel: str | None = None, embedding: npt.NDArray[np.float32] | None = None,
                 session: AsyncSession | None = None, k: int = 5) -> Retrieval:
    """The FAQ's best answers for a shopper's question, in the shopper's language where translated.

    Pass the NLU's embedding of the message to skip a second forward pass, and the unit of work's
    session so the index catches up with edits and never serves an entry deleted a moment ago.
    """
    return await index.search(question, language=language, country=country, channel=channel,
                              embedding=embedding, k=k, session=session)


__all__ = [
    "DraftState", "awaiting_review", "discard_draft", "draft_state", "drafts_for", "missing_translations",
    "publish_draft", "request_review", "save_draft", "version_diff",
    "HybridIndex", "IndexedEntry", "LiveFaqIndex", "Match", "Retrieval", "Weights", "answer", "close_index",
    "create_entry", "delete_entry", "entry_history", "export_entries", "get_entry", "import_entries",
    "list_entries", "load_demo_faq", "open_index", "restore_version", "set_status", "translate_entry",
    "translations_of", "update_entry",
]
