"""Answers to checkout's questions, as a shopper types them: the e-mail, then the delivery address field by field
(the fields Google's address data requires for the country, in the order the bot asks)."""
from __future__ import annotations

from bot import HandleResult
from tests.bot.conftest import Say

ADDRESSES = {
    "DE": ("Anna Schmidt", "Unter den Linden 1", "Berlin", "10115", "030 1234567"),
    "US": ("Sam Lee", "1 Market St", "San Francisco", "CA", "94110", "415 555 0100"),
    "JP": ("Hanako Yamada", "1-1 Chiyoda", "Tokyo", "100-0001", "03-1234-5678"),
    "GB": ("Ann Smith", "10 Downing Street", "London", "SW1A 2AA", "020 7946 0000"),
    "CN": ("王芳", "建国门内大街 18 号", "东城区", "北京市", "100005", "13800138000"),
}


async def give_address(say: Say, country: str, *, sender: str = "100001", **kwargs: object) -> HandleResult:
    """Answer every address question for `country`; the last reply (the order summary)."""
    answers = ADDRESSES[country]
    for answer in answers[:-1]:
        await say(answer, sender=sender, **kwargs)
    return await say(answers[-1], sender=sender, **kwargs)
