"""The shopper is told when the FAQ answers in another language (the entry has no published translation in theirs),
and is not told once the translation is published: the real FAQ index, the engine and the catalogs."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import knowledge_base as kb
from bot import BotDeps
from bot.skills.faq import knowledge_base_source
from kit.db import Database
from kit.settings import Settings
from knowledge_base.schemas import FaqEntryIn, TranslationIn
from tests.bot.conftest import Say, TinyParser, texts


@pytest.fixture
async def faq_deps(shop: Database, tiny_parser: TinyParser) -> AsyncIterator[BotDeps]:
    yield BotDeps(settings=Settings(), nlu=tiny_parser, knowledge=await knowledge_base_source(shop))
    await kb.close_index(shop)


async def test_an_answer_in_another_language_says_so(say: Say, shop: Database, faq_deps: BotDeps) -> None:
    async with shop.unit_of_work() as session:
        entry = await kb.create_entry(session, author="test", data=FaqEntryIn(
            language="en", questions=["Do you offer gift wrapping?"], status="published",
            answer="Yes, gift wrapping costs 3 EUR per order."))
        chinese = await kb.translate_entry(session, entry_id=entry.id, author="test", data=TranslationIn(
            language="zh", questions=["有礼品包装吗？"], answer="有，礼品包装每单3欧元。", status="draft"))
        chinese_id = chinese.id
    before = texts(await say("有礼品包装吗？", sender="lang1", deps=faq_deps))
    assert "此回答目前只有英语版本" in before
    assert "gift wrapping costs 3 EUR" in before

    async with shop.unit_of_work() as session:
        await kb.set_status(session, entry_id=chinese_id, status="published", author="test")
    after = texts(await say("有礼品包装吗？", sender="lang2", deps=faq_deps))
    assert "礼品包装每单3欧元" in after
    assert "此回答目前只有" not in after
    english = texts(await say("Do you offer gift wrapping?", sender="lang3", deps=faq_deps))
    assert "gift wrapping costs 3 EUR" in english
    assert "only available in" not in english
