"""``platform.wire``: statements sent through libpq keep every transaction rule of a psycopg
cursor — the BEGIN sent with the first statement really opens the transaction, with the
connection's isolation level; a statement that ends the transaction commits it exactly when it
succeeds — and their preparation lives as long as the connection. PostgreSQL only (SQLite never
takes this path)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError

from omnicommerce.platform import direct
from omnicommerce.platform.db import Database
from omnicommerce.platform.wire import _dollar_form
from tests.conftest import _create_pg_database, _drop_pg_database

notes = Table(
    "wire_notes",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("body", String(40), nullable=True),
)
INSERT = insert(notes)
BY_ID = select(notes.c.id, notes.c.body).where(notes.c.id == bindparam("id"))
ISOLATION = text("SELECT current_setting('transaction_isolation') AS level")


@pytest.fixture(scope="module")
def pg() -> Iterator[Database]:
    name, url = _create_pg_database()
    db = Database(url, pool_size=2)
    try:
        with db.engine.begin() as conn:
            notes.create(conn)
        yield db
    finally:
        db.dispose()
        _drop_pg_database(name)


@pytest.fixture
def empty(pg: Database) -> Database:
    with pg.engine.begin() as conn:
        conn.execute(notes.delete())
    return pg


def _ids(db: Database) -> list[int]:
    with db.engine.connect() as conn:
        return sorted(conn.execute(select(notes.c.id)).scalars())


def _dbapi(conn: Any) -> psycopg.Connection[Any]:
    return conn.connection.dbapi_connection  # type: ignore[no-any-return]


def test_the_begin_sent_with_the_first_statement_opens_the_transaction(empty: Database) -> None:
    with empty.uow() as uow:
        direct.execute(uow.conn, INSERT, {"id": 1, "body": "a"})
        assert _dbapi(uow.conn).pgconn.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert _ids(empty) == []  # not visible to others before the commit
        uow.rollback()
    assert _ids(empty) == []


def test_the_begin_carries_the_connections_isolation_level(empty: Database) -> None:
    with empty.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            assert direct.execute(conn, ISOLATION).scalar() == "repeatable read"
    with empty.uow() as uow:
        assert direct.execute(uow.conn, ISOLATION).scalar() == "read committed"


def test_a_statement_that_ends_the_transaction_commits_it_in_the_same_round_trip(empty: Database) -> None:
    with empty.uow() as uow:
        direct.execute(uow.conn, INSERT, {"id": 1, "body": "a"})
        both = [{"id": 2, "body": "b"}, {"id": 3, "body": "c"}]
        direct.execute(uow.conn, INSERT, both, ends_transaction=True)
        assert _dbapi(uow.conn).pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert _ids(empty) == [1, 2, 3]  # committed before the caller's commit, which sends nothing
        uow.commit()
    assert _ids(empty) == [1, 2, 3]


def test_a_failing_statement_that_would_end_the_transaction_commits_nothing(empty: Database) -> None:
    with empty.uow() as uow:
        direct.execute(uow.conn, INSERT, {"id": 1, "body": "a"})
        with pytest.raises(IntegrityError):
            direct.execute(uow.conn, INSERT, {"id": 1, "body": "again"}, ends_transaction=True)
    assert _ids(empty) == []
    with empty.uow() as uow:  # the connection came back to the pool in working order
        direct.execute(uow.conn, INSERT, {"id": 2, "body": "b"}, ends_transaction=True)
        uow.commit()
    assert _ids(empty) == [2]


def test_ending_a_read_in_autocommit_sends_no_commit_of_its_own(empty: Database) -> None:
    with empty.uow(readonly=True) as uow:
        assert direct.execute(uow.conn, BY_ID, {"id": 1}, ends_transaction=True).first() is None
        assert direct.execute(uow.conn, BY_ID, {"id": 1}).first() is None


def test_a_statement_is_prepared_once_per_connection_and_survives_rollbacks(empty: Database) -> None:
    with empty.engine.connect() as conn:
        for i in range(6):
            with conn.begin() as tx:
                direct.execute(conn, INSERT, {"id": 10 + i, "body": None if i == 0 else "x"})
                for n in range(6):  # psycopg would prepare it from the fifth time: it prepares nothing
                    conn.execute(text("SELECT CAST(:n AS int)"), {"n": n})
                tx.rollback()  # psycopg used to drop every prepared statement here
        assert direct.execute(conn, BY_ID, {"id": 10}).first() is None
        conn.rollback()
        prepared = conn.execute(text("SELECT name, statement FROM pg_prepared_statements")).all()
    assert all(name.startswith("omni_") for name, _ in prepared), prepared
    inserts = [s for _, s in prepared if s.startswith("INSERT INTO wire_notes")]
    assert 1 <= len(inserts) <= 2  # one per set of parameter types (a NULL body may differ)
    assert sum(s.startswith("SELECT wire_notes.id") for _, s in prepared) == 1


def test_values_of_any_size_and_nulls_arrive_as_given(empty: Database) -> None:
    with empty.uow() as uow:
        for i, body in [(1, None), (2, "é ünïcode ✓"), (3, "100%"), (2**31 - 1, "")]:
            direct.execute(uow.conn, INSERT, {"id": i, "body": body})
        uow.commit()
    with empty.uow(readonly=True) as uow:
        got = {i: direct.execute(uow.conn, BY_ID, {"id": i}).one().body for i in (1, 2, 3, 2**31 - 1)}
    assert got == {1: None, 2: "é ünïcode ✓", 3: "100%", 2**31 - 1: ""}


def test_a_statement_whose_preparation_went_stale_is_prepared_afresh(pg: Database) -> None:
    """A migration that changes a column's type makes a prepared SELECT of it fail once per
    connection; the next execution prepares it again."""
    stale = Table("wire_stale", MetaData(), Column("id", Integer, primary_key=True), Column("n", Integer))
    read = select(stale.c.n).where(stale.c.id == bindparam("id"))
    with pg.engine.begin() as conn:
        stale.create(conn)
        conn.execute(stale.insert(), {"id": 1, "n": 5})
    try:
        with pg.engine.connect() as conn:
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            assert direct.execute(auto, read, {"id": 1}).scalar() == 5
            with pg.engine.begin() as other:
                other.execute(text("ALTER TABLE wire_stale ALTER COLUMN n TYPE bigint"))
            with pytest.raises(Exception, match="cached plan must not change result type"):
                direct.execute(auto, read, {"id": 1})
            assert direct.execute(auto, read, {"id": 1}).scalar() == 5
    finally:
        with pg.engine.begin() as conn:
            stale.drop(conn)


@pytest.mark.parametrize(
    ("sql", "query", "names"),
    [
        ("SELECT %(a)s, %(b)s, %(a)s", b"SELECT $1, $2, $1", ("a", "b")),
        ("SELECT '100%%' WHERE x LIKE %(p)s", b"SELECT '100%' WHERE x LIKE $1", ("p",)),
        ("SELECT 1", b"SELECT 1", ()),
    ],
)
def test_placeholders_become_numbered_parameters(sql: str, query: bytes, names: tuple[str, ...]) -> None:
    assert _dollar_form(sql) == (query, names)


def test_a_lone_percent_is_refused() -> None:
    with pytest.raises(ValueError, match="lone %"):
        _dollar_form("SELECT %s")


def test_a_connection_left_in_pipeline_mode_is_refused_and_never_hangs(empty: Database) -> None:
    """A connection in pipeline mode with a command queued would wait forever for a sync; the
    wire refuses it and closes it, and SQLAlchemy's pool replaces it."""
    with empty.engine.connect() as conn:
        dbapi = _dbapi(conn)
        dbapi.pgconn.enter_pipeline_mode()
        dbapi.pgconn.send_query_params(b"SELECT 1", None)
        with pytest.raises(Exception, match="pipeline mode"):
            direct.execute(conn, BY_ID, {"id": 1})
        assert dbapi.closed
    with empty.engine.connect() as conn:  # the pool hands out a working connection again
        assert direct.execute(conn, BY_ID, {"id": 1}).first() is None
