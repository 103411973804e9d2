"""Our PostgreSQL connections plan prepared statements generically and keep the options the
URL gives."""

from __future__ import annotations

from sqlalchemy import text

from omnicommerce.platform.db import make_engine
from tests.conftest import PG_ADMIN_URL


def test_connections_plan_generically_and_keep_the_urls_own_options() -> None:
    host_and_db = PG_ADMIN_URL.split("://", 1)[1]
    engine = make_engine(f"postgresql+psycopg://{host_and_db}?options=-c%20statement_timeout%3D4321")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_generic_plan"
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "4321ms"
    finally:
        engine.dispose()
