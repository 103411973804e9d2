"""The Alembic migrations build exactly the schema the models declare, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from omnicommerce.platform.db import Database, metadata
from omnicommerce.platform.migrate import current


def test_migrated_schema_matches_the_models(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == [], f"models and migrations differ; generate a migration: {diff}"


def test_database_is_at_head(db: Database) -> None:
    assert current(db.url) is not None
