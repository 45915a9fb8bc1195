"""Schema migrations: the Alembic environment (env.py) for every package's version branch, and `upgrade` (what
`shoptalk migrate` and the tests run)."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from api.migrations.registry import PACKAGES, load_all_models

ROOT = Path(__file__).resolve().parents[2]


def version_locations() -> list[str]:
    return [str(ROOT / p / "migrations" / "versions") for p in PACKAGES
            if (ROOT / p / "migrations" / "versions").is_dir()]


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "api" / "migrations"))
    cfg.set_main_option("version_locations", " ".join(version_locations()))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision of every package (alembic heads)."""
    load_all_models()
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))

    def run(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")

    async with engine.begin() as connection:
        await connection.run_sync(run)
