"""An imported English-only Rasa project and a shopper writing Chinese: understood through the multilingual
heads, told once (in Chinese) that the assistant answers in English, then answered in English."""
from __future__ import annotations

import pytest

from bot import i18n
from bot.rasa.assistant import Assistant
from bot.rasa.project import RasaProject
from nlu.service import NluService
from tests.bot.rasa.conftest import Chat

NOTICE_ZH = "抱歉，我只能用英语回答。"


@pytest.fixture(scope="module")
def english_assistant(project: RasaProject, tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    parser = NluService(models_dir=tmp_path_factory.mktemp("rasa-nlu"), data_paths=[], default_language="en")
    parser.train(data=project.nlu)
    return Assistant(project, parser=parser)


def test_the_notice_is_written_in_the_shoppers_language_when_a_catalog_has_it() -> None:
    assert i18n.other_language_notice("zh", "en") == NOTICE_ZH
    assert i18n.other_language_notice("es", "en-US") == "Lo siento, solo puedo responder en inglés."
    # no ShopTalk catalog for Korean: the notice falls back to English
    assert i18n.other_language_notice("ko", "en") == "Sorry, I can only answer in English."
    assert i18n.other_language_notice("en", "en_US") is None
    assert i18n.other_language_notice(None, "en") is None
    assert i18n.other_language_notice("en", "zh") == "Sorry, I can only answer in Chinese."


async def test_a_chinese_shopper_is_told_once_then_answered_in_english(english_assistant: Assistant) -> None:
    assert english_assistant.project.language == "en"
    chat = Chat(english_assistant, "zh-shopper")
    first = await chat.say("嗨，你好")
    assert first[0].startswith(NOTICE_ZH + "\n\n")
    # the English-only project understood the Chinese greeting (the conversation-start rule answers it)
    assert first[0].removeprefix(NOTICE_ZH + "\n\n") == "Welcome to the cake shop! How are you today?"
    second = await chat.say("非常感谢")
    assert second == ["You're welcome."]  # said once: no second notice
    assert sum(NOTICE_ZH in text for text in (*first, *second)) == 1


async def test_a_shopper_in_the_projects_language_gets_no_notice(english_assistant: Assistant) -> None:
    chat = Chat(english_assistant, "en-shopper")
    assert await chat.say("hello there") == ["Welcome to the cake shop! How are you today?"]
    assert await chat.say("thanks a lot") == ["You're welcome."]
