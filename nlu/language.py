"""Message language from its script: Han characters mean Chinese; Latin words English, or Spanish when its words
outnumber English ones."""

from __future__ import annotations

import re

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")
# Frequent words of shoppers' messages that the other language rarely writes ("a", "no", "me", "y", "o", "es", "la",
# "al", "del" and "hola" are left out: English messages have them too, as words, codes or keys).
_SPANISH = frozenset(
    "el los las lo que qué por para con sin una unos unas son está están estoy hay pero mi mis tu "
    "tus su sus este esta esto ese esa eso gracias adiós dónde donde cuándo cuando cuánto cuánta cuanto cómo "
    "como quiero quisiera busco necesito tienen tienes puedo puede pedido pedidos envío envíos enviar precio "
    "precios devolución devolver carrito comprar talla negro negra rojo roja sí también favor ayuda persona "
    "buenos buenas días tardes noches".split())
_ENGLISH = frozenset(
    "the an of to in on at is are was my your you i it this that these those what where when how much many do does "
    "did can could would will please thanks thank hi hello hey and or but with for from order orders ship shipping "
    "price want need buy cart size black red help person good morning there have has".split())


def detect_language(text: str, *, default: str = "en") -> str:
    """'zh', 'ja', 'ko', 'es' or 'en'; `default` when the text has no letters (empty, digits, emoji)."""
    sample = text[:2_000]
    han = len(_HAN.findall(sample))
    kana = len(_KANA.findall(sample))
    hangul = len(_HANGUL.findall(sample))
    words = _LATIN_WORD.findall(sample)
    latin_words = len(words)
    if kana and kana + han >= latin_words:
        return "ja"
    if hangul and hangul >= latin_words:
        return "ko"
    # One Han character carries about as much as one Latin word.
    if han and han >= latin_words:
        return "zh"
    if latin_words:
        lowered = [word.lower() for word in words]
        spanish = sum(word in _SPANISH for word in lowered) + ("¿" in sample or "¡" in sample)
        return "es" if spanish > sum(word in _ENGLISH for word in lowered) else "en"
    return default
