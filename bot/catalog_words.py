"""The catalog's words kept live in the NLU: a product added in the back office is a product word on the next
message, not at the next restart.

`CatalogWords.refresh(nlu)` runs before each parse (`bot.engine.understand`). It looks at the catalog again when
this process wrote products, variants, categories or search controls since its last look
(`commerce.search.catalog_generation`, moved by the engine's write listener), or when `ttl` seconds passed (another
process's writes). A look is one cheap fingerprint (`commerce.search.catalog_version`: two small statements in
their own read session); only when it moved are the words read again and taught (`teach_catalog_words`).
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from bot.deps import teach_catalog_words
from commerce.search.service import catalog_generation, catalog_version
from kit.db import Database, database_unavailable_cause

log = logging.getLogger(__name__)

# Seconds another process's catalog change may take to reach this process's NLU (one fingerprint read at most this
# often while nothing changes here).
VOCABULARY_TTL = 5.0


class CatalogWords:
    def __init__(self, database: Database, *, ttl: float = VOCABULARY_TTL,
                 clock: Callable[[], float] = time.monotonic,
                 generation: Callable[[], int] = catalog_generation) -> None:
        self.database = database
        self.ttl = ttl
        self.clock = clock
        self.generation = generation
        self.version: tuple[object, ...] | None = None
        self.checked_at = -math.inf
        self.seen_generation: int | None = None
        self.reloads = 0  # how many times the words were read and taught again
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self.seen_generation == self.generation() and self.clock() - self.checked_at < self.ttl

    async def refresh(self, nlu: Any) -> bool:
        """Teach `nlu` the catalog's words again if the catalog changed; True when it did."""
        if self._fresh():
            return False
        async with self._lock:
            if self._fresh():
                return False  # another message looked meanwhile
            generation, checked_at = self.generation(), self.clock()
            try:
                async with self.database.sessions() as session:
                    version = await catalog_version(session)
                    changed = version != self.version
                    if changed:
                        await teach_catalog_words(nlu, session)
                        self.version = version
                        self.reloads += 1
            except Exception as exc:
                # The database is down: keep the words known so far; the turn itself then meets the outage in its
                # unit of work and answers 503 database_unavailable (the shopper's client resends), not a 500.
                cause = database_unavailable_cause(exc, from_database=True)
                if cause is None:
                    raise
                log.warning("catalog words not refreshed: %s", cause)
                return False
            self.seen_generation, self.checked_at = generation, checked_at
            return changed
