"""Fixtures shared by every test layer.

Database-backed tests run once per database named in ``OMNI_TEST_DATABASES`` (default: both
SQLite and PostgreSQL). Each session builds its schema through the Alembic migrations, as a
deployment does; each test starts from empty tables and the four demo channels.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

import omnicommerce.tables  # noqa: F401
from omnicommerce.api.app import create_app
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Scope, create_api_key
from omnicommerce.platform.channels import Channel, upsert_channel
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database, metadata
from omnicommerce.platform.migrate import upgrade

PG_ADMIN_URL = os.environ.get("OMNI_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
DATABASES = [
    d.strip() for d in os.environ.get("OMNI_TEST_DATABASES", "sqlite,postgresql").split(",") if d.strip()
]

CHANNELS = [
    Channel("web", "Web shop", "online", "USD"),
    Channel("app", "Mobile app", "online", "USD"),
    Channel("pos", "Store POS", "store", "USD"),
    Channel("call_center", "Call center", "assisted", "USD"),
]


def _create_pg_database() -> tuple[str, str]:
    name = f"omni_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    host = PG_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0]
    return name, f"postgresql+psycopg://{host}/{name}"


def _drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "omni.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url
        return
    name, url = _create_pg_database()  # fails (not skips) when PostgreSQL is down
    try:
        upgrade(url)
        yield url
    finally:
        _drop_pg_database(name)


@pytest.fixture(scope="session")
def _shared_db(database_url: str) -> Iterator[Database]:
    db = Database(database_url, pool_size=10)
    yield db
    db.dispose()


def _empty_tables(db: Database) -> None:
    names = [t.name for t in reversed(metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))
        else:
            for n in names:
                conn.execute(text(f'DELETE FROM "{n}"'))


@pytest.fixture
def db(_shared_db: Database) -> Iterator[Database]:
    _empty_tables(_shared_db)
    with _shared_db.engine.begin() as conn:
        for channel in CHANNELS:
            upsert_channel(conn, channel)
    _shared_db._commit_listeners.clear()
    yield _shared_db
    clock.set_clock(None)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-0123456789abcdef0123",
        api_key_cache_seconds=0,
        rate_limit_enabled=False,
    )


@pytest.fixture
def app(db: Database, settings: Settings) -> FastAPI:
    return create_app(settings, db=db, run_relay=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def make_key(db: Database, *scopes: str, channel: str | None = None, location: str | None = None) -> str:
    with db.engine.begin() as conn:
        return create_api_key(
            conn, name="test", scopes=list(scopes), channel=channel, location=location
        ).secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def admin_headers(db: Database) -> dict[str, str]:
    return bearer(make_key(db, Scope.ADMIN))
