"""Imports every package's SQLAlchemy models so the metadata is complete (migrations, tests)."""
from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path

from kit.db import Base

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kit", "commerce", "nlu", "knowledge_base", "bot", "api")


def load_all_models() -> None:
    """Imports every `models.py` of our packages, and `kit.outbox`; found on disk, so no other module is imported."""
    importlib.import_module("kit.outbox")
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("models.py")):
            importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))


@cache
def table_packages() -> dict[str, str]:
    """Table name -> the package that owns its model."""
    load_all_models()
    owners: dict[str, str] = {}
    for mapper in Base.registry.mappers:
        table = mapper.local_table
        owners[str(getattr(table, "name", ""))] = mapper.class_.__module__.split(".", 1)[0]
    return owners
