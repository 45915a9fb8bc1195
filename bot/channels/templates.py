"""WhatsApp message templates the merchant registered (back office and API): name, language, parameter count.

The rows in `bot_whatsapp_templates` are the truth; the SHOPTALK_WHATSAPP__TEMPLATES setting seeds them (a name
set there and not registered in the database counts, with 0 parameters), so existing configurations keep working.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.models import WhatsAppTemplate
from kit.clock import utcnow
from kit.errors import InvalidInput, NotFound

NAME = re.compile(r"[a-z0-9_]{1,512}")  # Meta's rule: lowercase letters, digits and underscores
LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")  # en, en_US, zh_CN, pt_BR
MAX_PARAMETERS = 20


@dataclass(frozen=True)
class Template:
    name: str
    language: str
    parameter_count: int
    seeded: bool = False  # from the setting, not registered in the database


async def registered(session: AsyncSession, *, seed: dict[str, str]) -> dict[str, Template]:
    """Every template that may be sent: the registered ones, and the setting's others (0 parameters)."""
    rows = (await session.scalars(select(WhatsAppTemplate).order_by(WhatsAppTemplate.name))).all()
    found = {r.name: Template(r.name, r.language, r.parameter_count) for r in rows}
    for name, language in seed.items():
        found.setdefault(name, Template(name, language, 0, seeded=True))
    return dict(sorted(found.items()))


def _checked(name: str, language: str, parameter_count: int) -> tuple[str, str]:
    name, language = name.strip(), language.strip()
    if not NAME.fullmatch(name):
        raise InvalidInput("A template name is lowercase letters, digits and underscores, as approved by Meta.",
                           code="template_name_invalid", field="name")
    if not LANGUAGE.fullmatch(language):
        raise InvalidInput("The language is a code like en, en_US or zh_CN.", code="template_language_invalid",
                           field="language")
    if not 0 <= parameter_count <= MAX_PARAMETERS:
        raise InvalidInput(f"A template has 0 to {MAX_PARAMETERS} parameters.", code="template_parameters_invalid",
                           field="parameter_count")
    return name, language


async def save_template(session: AsyncSession, *, name: str, language: str, parameter_count: int) -> Template:
    """Register (or change) a template; InvalidInput names the field that is wrong."""
    name, language = _checked(name, language, parameter_count)
    row = await session.get(WhatsAppTemplate, name, with_for_update=True)
    if row is None:
        row = WhatsAppTemplate(name=name, language=language, parameter_count=parameter_count, updated_at=utcnow())
        session.add(row)
    else:
        row.language, row.parameter_count, row.updated_at = language, parameter_count, utcnow()
    await session.flush()
    return Template(name, language, parameter_count)


async def remove_template(session: AsyncSession, *, name: str) -> None:
    row = await session.get(WhatsAppTemplate, name)
    if row is None:
        raise NotFound(f"No registered template {name!r}.", code="template_not_found")
    await session.delete(row)
    await session.flush()
