"""The reply catalogs: complete in every language, plural forms, and Spanish and Japanese shoppers answered in their
language."""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.plurals import get_plural

from bot import i18n
from bot.conversations.models import Conversation
from bot.handoff.inbox import QueueNotice
from kit.db import Database
from nlu.entities import COUNTRY_NAME_LANGUAGES
from tests.bot.checkout_flow import give_address
from tests.bot.conftest import Say, texts
from tests.bot.test_conversation import place_anna_order_with_ref

LOCALES_DIR = Path(i18n.__file__).parent / "locales"


def _forms(message: object) -> tuple[str, ...]:
    string = message.string  # type: ignore[attr-defined]
    return tuple(string) if isinstance(string, (tuple, list)) else (string,)


def test_every_language_listed_has_a_catalog_and_every_catalog_is_listed() -> None:
    assert sorted(path.name for path in LOCALES_DIR.iterdir() if path.is_dir()) == sorted(i18n.LANGUAGES)
    # A shopper of every reply language can name a country in it (nlu cannot import the list from bot).
    assert set(i18n.LANGUAGES) <= set(COUNTRY_NAME_LANGUAGES)
    for language in i18n.LANGUAGES:
        catalog = i18n.read_catalog(language)
        assert str(catalog.locale) == language
        # The header's plural rule is babel's for the language: a wrong Plural-Forms would pick wrong forms.
        assert catalog.plural_forms == get_plural(language).plural_forms, language


@pytest.mark.parametrize("language", [code for code in i18n.LANGUAGES if code != i18n.DEFAULT_LOCALE])
def test_every_catalog_has_every_key_with_the_same_placeholders_as_english(language: str) -> None:
    english = {m.id if isinstance(m.id, str) else m.id[0]: m for m in i18n.read_catalog("en") if m.id}
    catalog = i18n.read_catalog(language)
    other = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalog if m.id}
    assert set(other) == set(english), set(other) ^ set(english)
    for key, source in english.items():
        message = other[key]
        assert not message.fuzzy, key
        assert message.pluralizable == source.pluralizable, key
        forms = _forms(message)
        assert len(forms) == (catalog.num_plurals if message.pluralizable else 1), key
        wanted = set().union(*(i18n.placeholders(form) for form in _forms(source)))
        for form in forms:
            assert form, key
            assert i18n.placeholders(form) == wanted, (key, form)
            form.format(**dict.fromkeys(wanted, "x"))  # no stray braces


def test_plural_forms_follow_the_count() -> None:
    assert i18n.t("en", "wait.seconds", n=1, count=1) == "1 second"
    assert i18n.t("en", "wait.seconds", n=30, count=30) == "30 seconds"
    assert i18n.t("es", "wait.minutes", n=1, count=1) == "1 minuto"
    assert i18n.t("es", "wait.minutes", n=4, count=4) == "4 minutos"
    assert i18n.t("zh", "wait.minutes", n=1, count=1) == i18n.t("zh", "wait.minutes", n=4, count=1) == "1 分钟"
    assert i18n.t("ja", "wait.minutes", n=1, count=1) == "1分"
    assert i18n.t("ja", "wait.minutes", n=4, count=4) == "4分"
    with pytest.raises(TypeError):
        i18n.t("en", "wait.seconds", count=2)  # a plural entry needs its count
    with pytest.raises(KeyError):
        i18n.t("es", "no.such.key")


def test_locale_names_from_channels() -> None:
    assert i18n.supported_locale("zh-hans") == "zh"
    assert i18n.supported_locale("zh_CN") == "zh"
    assert i18n.supported_locale("en-GB") == "en"
    assert i18n.supported_locale("es-419") == "es"
    assert i18n.supported_locale("ja-JP") == "ja"
    assert i18n.supported_locale("de") is None
    assert i18n.supported_locale(None) is None
    assert i18n.t("de", "thanks") == "You're welcome!"
    assert i18n.t("zh", "thanks") == "不客气！"
    assert i18n.t("es", "thanks") == "¡De nada!"
    assert i18n.t("ja", "thanks") == "どういたしまして！"


def test_a_key_missing_from_a_catalog_falls_back_to_english(monkeypatch: pytest.MonkeyPatch) -> None:
    read = i18n.read_catalog

    def without_thanks(language: str):
        catalog = read(language)
        if language == "es":
            catalog.delete("thanks")
        return catalog

    monkeypatch.setattr(i18n, "read_catalog", without_thanks)
    i18n._translations.cache_clear()
    try:
        assert i18n.t("es", "thanks") == "You're welcome!"
        assert not i18n.has_text("es", "thanks")
        assert i18n.t("es", "goodbye") == "Hasta pronto, aquí estoy cuando me necesites."
    finally:
        monkeypatch.undo()
        i18n._translations.cache_clear()


def test_opening_time_is_written_the_shoppers_way() -> None:
    monday = datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    notice = QueueNotice(open_now=False, opens_at=monday, timezone="Europe/Berlin")
    assert "We open again Mon 09:00 (Europe/Berlin)" in notice.render("en")
    # Before the catalogs the Chinese text carried an English "Mon 09:00".
    assert "我们将于 周一09:00（Europe/Berlin）上班" in notice.render("zh")
    assert "Volvemos a abrir el lun, 9:00 (Europe/Berlin)" in notice.render("es")
    # babel writes the Japanese weekday after the time ("9:00 (月)"): the catalog puts the zone before it.
    assert "Europe/Berlin時間の9:00 (月)に対応を再開" in notice.render("ja")
    queued = QueueNotice(open_now=True, position=2, expected_wait_minutes=1)
    assert "la espera estimada es de 1 minuto." in queued.render("es")
    assert "現在2番目にお並びいただいており、待ち時間は約1分の見込みです。" in queued.render("ja")


async def test_a_spanish_shopper_is_answered_in_spanish(say: Say, shop: Database) -> None:
    # The words say Spanish (nlu language detection): the reply and its menu are Spanish.
    unclear = await say("¿Dónde está mi pedido?", sender="es-words")
    assert texts(unclear).startswith("Perdona, no estoy seguro de haberte entendido.")
    assert "Buscar productos" in [b.title for r in unclear.replies for b in r.buttons]
    async with shop.sessions() as session:
        conversation = (await session.execute(
            Conversation.__table__.select().where(Conversation.sender_id == "es-words"))).one()
        assert conversation.locale == "es"

    # A button press has no words: the channel's language (Telegram's language_code "es-ES") decides.
    one = await say(kind="callback", payload="cart:add:KET-1", sender="es-buttons", locale_hint="es-ES")
    assert "He añadido 1 unidad de Electric Kettle 1.7 L a tu carrito." in texts(one)
    two = await say(kind="callback", payload="cart:add:KET-1:2", sender="es-buttons")
    assert "He añadido 2 unidades de Electric Kettle 1.7 L a tu carrito." in texts(two)
    cart = await say(kind="callback", payload="cart:view", sender="es-buttons")
    assert texts(cart) == "Tu carrito:\n- 3 x Electric Kettle 1.7 L (black, KET-1): 149,70\xa0€\nSubtotal: 149,70\xa0€"


async def test_a_spanish_shopper_reads_order_dates_in_spanish(say: Say, shop: Database) -> None:
    number, ref = await place_anna_order_with_ref(shop)
    shown = texts(await say(kind="callback", payload=f"order:status:{ref}", sender="100001", locale_hint="es"))
    assert shown.startswith(f"Pedido #{number}: enviado.\nReferencia: {ref}\n")
    assert re.search(r"^- \d{1,2} [a-z]{3} \d{4}: pagado$", shown, re.M), shown
    assert "Transportista: DHL, número de seguimiento JD0146000062" in shown


async def test_a_japanese_shopper_is_answered_in_japanese(say: Say, shop: Database) -> None:
    # Kana in the words say Japanese (nlu language detection): the reply and its menu are Japanese.
    unclear = await say("注文はどこですか？", sender="ja-words")
    assert texts(unclear).startswith("申し訳ありません、うまく理解できませんでした。")
    assert "商品を探す" in [b.title for r in unclear.replies for b in r.buttons]
    async with shop.sessions() as session:
        conversation = (await session.execute(
            Conversation.__table__.select().where(Conversation.sender_id == "ja-words"))).one()
        assert conversation.locale == "ja"

    # A button press has no words: the channel's language ("ja-JP") decides. One plural form for every count.
    one = await say(kind="callback", payload="cart:add:KET-1", sender="ja-buttons", locale_hint="ja-JP")
    assert "Electric Kettle 1.7 Lを1点カートに追加しました。" in texts(one)
    two = await say(kind="callback", payload="cart:add:KET-1:2", sender="ja-buttons")
    assert "Electric Kettle 1.7 Lを2点カートに追加しました。" in texts(two)
    cart = await say(kind="callback", payload="cart:view", sender="ja-buttons")
    assert texts(cart) == "カートの中身：\n- 3 x Electric Kettle 1.7 L（black, KET-1）：€149.70\n小計：€149.70"

    # Delivered to Japan the prices turn into yen, written babel's way for ja (the full-width sign, no decimals).
    await say(kind="callback", payload="checkout:start", sender="ja-buttons")
    await say("日本", sender="ja-buttons")
    await say("hanako@example.com", sender="ja-buttons")
    summary = texts(await give_address(say, "JP", sender="ja-buttons"))
    assert summary.startswith("ご注文前に内容をご確認ください：\n- 3 x Electric Kettle 1.7 L（black, KET-1）：￥")
    assert "送料（通常配送（追跡可能な小包）、" in summary
    assert re.search(r"^今お支払い：￥\d{1,3}(,\d{3})*$", summary, re.M), summary
    assert "お届け先：Hanako Yamada, 1-1 Chiyoda, 100-0001, 東京都, JP, +81312345678" in summary
    assert "確認メール：hanako@example.com" in summary


async def test_a_japanese_shopper_reads_order_dates_in_japanese(say: Say, shop: Database) -> None:
    number, ref = await place_anna_order_with_ref(shop)
    shown = texts(await say(kind="callback", payload=f"order:status:{ref}", sender="100001", locale_hint="ja"))
    assert shown.startswith(f"ご注文 #{number}：発送済み\n参照番号：{ref}\n")
    assert re.search(r"^- \d{4}/\d{2}/\d{2}：お支払い済み$", shown, re.M), shown
    assert "配送業者：DHL、追跡番号 JD0146000062" in shown


async def test_a_japanese_shopper_names_countries_in_katakana_and_kanji(say: Say, shop: Database) -> None:
    """Katakana country names are recognised, and a kanji-only answer (韓国) does not turn the reply Chinese."""
    await say(kind="callback", payload="cart:add:KET-1", sender="ja-countries", locale_hint="ja-JP")
    assert texts(await say(kind="callback", payload="checkout:start", sender="ja-countries")) == \
        "お届け先の国はどちらですか？"
    assert texts(await say("ドイツ", sender="ja-countries")) == \
        "ご注文確認メールの送信先メールアドレスを教えてください。"
    await say(kind="callback", payload="cart:add:KET-1", sender="ja-korea", locale_hint="ja-JP")
    await say(kind="callback", payload="checkout:start", sender="ja-korea")
    korea = texts(await say("韓国", sender="ja-korea"))
    assert korea == "ご注文確認メールの送信先メールアドレスを教えてください。", korea
    async with shop.sessions() as session:
        conversation = (await session.execute(
            Conversation.__table__.select().where(Conversation.sender_id == "ja-korea"))).one()
        assert (conversation.locale, conversation.country) == ("ja", "KR")

