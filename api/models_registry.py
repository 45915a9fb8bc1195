"""Imports every package's SQLAlchemy models so the metadata is complete (migrations, tests)."""
from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from kit.db import Base

PACKAGES = ("kit", "commerce", "nlu", "knowledge_base", "bot", "api")


def load_all_models() -> None:
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if info.name.rsplit(".", 1)[-1] in ("models",) or info.name.endswith(".outbox"):
                importlib.import_module(info.name)


@cache
def table_packages() -> dict[str, str]:
    """Table name -> the package that owns its model."""
    load_all_models()
    owners: dict[str, str] = {}
    for mapper in Base.registry.mappers:
        table = mapper.local_table
        owners[str(getattr(table, "name", ""))] = mapper.class_.__module__.split(".", 1)[0]
    return owners
