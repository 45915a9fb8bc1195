"""The demo shop's whole bot, driven as shoppers drive it (shared by bench/product_qa.py and bench/shopper_words.py).

`demo_shop_bot()` migrates a scratch SQLite database, loads the demo shop and the cross-border defaults, trains the
real NLU from the shipped data with the catalog's words taught, opens the demo FAQ's index, and yields a `ShopBot`
whose `send` hands one message or button press to `bot.handle_inbound` in its own unit of work, as a channel does.
Import `_common` first.
"""
from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ShopBot:
    database: Any  # kit.db.Database
    deps: Any  # bot.BotDeps
    train_seconds: float
    product_id: dict[str, int] = field(default_factory=dict)  # slug -> id
    product_of_id: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (slug, category slug)

    async def send(self, sender: str, n: int, text: str | None = None, payload: str | None = None) -> Any:
        """One inbound (a text, or a button's payload) from `sender` as message number `n`: the HandleResult."""
        from bot import InboundMessage, handle_inbound

        inbound = InboundMessage(channel="rest", sender_id=sender, message_id=f"{sender}-{n}",
                                 kind="callback" if payload else "text", text=text, payload=payload)
        async with self.database.unit_of_work() as session:
            return await handle_inbound(session, inbound, deps=self.deps)


@asynccontextmanager
async def demo_shop_bot(prefix: str) -> AsyncIterator[ShopBot]:
    from api.demo.loader import load_demo
    from api.migrations import upgrade
    from bot import BotDeps
    from bot.deps import _encoder_of, teach_catalog_words
    from bot.skills.faq import knowledge_base_source
    from commerce.catalog.service import all_products, categories
    from commerce.cross_border import load_cross_border_defaults
    from kit.db import Database
    from kit.settings import Settings
    from nlu.service import NluService

    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}_"))
    database = Database(f"sqlite+aiosqlite:///{workdir / 'shop.db'}")
    try:
        await upgrade(database.engine)
        nlu = NluService(models_dir=workdir / "models")
        started = time.perf_counter()
        await asyncio.to_thread(nlu.ensure_model)
        train_s = time.perf_counter() - started
        async with database.unit_of_work() as session:
            await load_demo(session)
            await load_cross_border_defaults(session)
            await teach_catalog_words(nlu, session)
            products = await all_products(session)
            category_slug = {category.id: category.slug for category in await categories(session)}
        # The shop's FAQ answers as in the served app (`api.chat_runtime`): the cross-border and clarify paths ask it.
        deps = BotDeps(settings=Settings(data_dir=workdir), nlu=nlu, encoder=_encoder_of(nlu),
                       knowledge=await knowledge_base_source(database))
        yield ShopBot(database=database, deps=deps, train_seconds=round(train_s, 1),
                      product_id={p.slug: p.id for p in products},
                      product_of_id={p.id: (p.slug, category_slug[p.category_id])
                                     for p in products})
    finally:
        await database.dispose()
