"""Alembic, driven from code: ``omni db upgrade`` and the test fixtures call :func:`upgrade`.

Each context after the initial schema keeps its own branch of migrations (``0002_fulfillment``,
``0003_customer_data``, …, each revising ``0001``), so the default target is ``heads``: every
branch at its latest revision.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    """The applied revisions, comma-separated (one per branch), or None on an empty database."""
    from alembic.runtime.migration import MigrationContext

    from omnicommerce.platform.db import make_nullpool_engine

    engine = make_nullpool_engine(url)
    try:
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
            return ", ".join(sorted(heads)) or None
    finally:
        engine.dispose()
