"""Alembic environment: the metadata of every context, on the configured database."""

from __future__ import annotations

from alembic import context

import omnicommerce.tables  # noqa: F401  (registers every table on the metadata)
from omnicommerce.platform.db import make_nullpool_engine, metadata

config = context.config


def run_migrations_online() -> None:
    engine = make_nullpool_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
