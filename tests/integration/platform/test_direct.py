"""``platform.direct.execute`` answers exactly what ``Connection.execute`` answers — rows, names,
types, row counts, errors — and every statement it sends is seen by statement listeners."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError

from omnicommerce.platform import direct
from omnicommerce.platform.db import Database
from omnicommerce.platform.idempotency import idempotency_records as t

KEYS = [f"k{i}" for i in range(8)]
T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)

BY_KEYS = select(t).where(t.c.scope == bindparam("scope"), t.c.key.in_(bindparam("keys", expanding=True)))
BY_PAIRS = select(t.c.key, t.c.status).where(
    tuple_(t.c.scope, t.c.key).in_(bindparam("pairs", expanding=True))
)
INSERT = insert(t)
UPDATE = update(t).where(t.c.key == bindparam("p_key")).values({t.c.status: t.c.status + 1})
RETURNING = update(t).where(t.c.key == bindparam("p_key")).values(status=7).returning(t.c.key, t.c.created_at)
TEXT = text("SELECT key AS k, status + 1 AS next_status FROM idempotency_records WHERE key = :key")


def _row(i: int) -> dict[str, Any]:
    return {
        "scope": "s",
        "key": KEYS[i],
        "fingerprint": "f",
        "status": i,
        "body": "{}",
        "created_at": T0 + timedelta(minutes=i),
    }


@pytest.fixture
def filled(db: Database) -> Database:
    with db.uow() as uow:
        for i in range(len(KEYS)):
            direct.execute(uow.conn, INSERT, _row(i))
        uow.commit()
    return db


def _both(db: Database, stmt: Any, params: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    with db.uow(readonly=True) as uow:
        ours = direct.execute(uow.conn, stmt, params).all()
        theirs = uow.conn.execute(stmt, params).all()
    return ours, theirs


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=st.lists(st.sampled_from([*KEYS, "absent"]), max_size=6))
def test_an_expanding_in_answers_the_same_rows_for_any_list(filled: Database, keys: list[str]) -> None:
    ours, theirs = _both(filled, BY_KEYS, {"scope": "s", "keys": keys})
    assert sorted(tuple(r) for r in ours) == sorted(tuple(r) for r in theirs)
    assert all(r.created_at.tzinfo is not None for r in ours)  # UTCDateTime's result processing
    if ours:
        assert list(ours[0]._fields) == list(theirs[0]._fields)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(st.sampled_from(["s", "x"]), st.sampled_from(KEYS)), max_size=5))
def test_a_tuple_in_answers_the_same_rows(filled: Database, pairs: list[tuple[str, str]]) -> None:
    ours, theirs = _both(filled, BY_PAIRS, {"pairs": pairs})
    assert sorted(ours) == sorted(tuple(r) for r in theirs)
    assert all(r.key in KEYS for r in ours)


def test_the_parameters_given_decide_what_an_update_sets(filled: Database) -> None:
    with filled.uow() as uow:
        assert direct.execute(uow.conn, UPDATE, {"p_key": "k1", "body": "a"}).rowcount == 1
        assert direct.execute(uow.conn, UPDATE, {"p_key": "k2", "fingerprint": "g"}).rowcount == 1
        assert direct.execute(uow.conn, UPDATE, {"p_key": "absent", "body": "b"}).rowcount == 0
        uow.commit()
    with filled.uow(readonly=True) as uow:
        rows = {r.key: r for r in uow.conn.execute(select(t))}
    assert (rows["k1"].status, rows["k1"].body, rows["k1"].fingerprint) == (2, "a", "f")
    assert (rows["k2"].status, rows["k2"].body, rows["k2"].fingerprint) == (3, "{}", "g")


def test_returning_and_text_statements_give_named_rows(filled: Database) -> None:
    with filled.uow() as uow:
        changed = direct.execute(uow.conn, RETURNING, {"p_key": "k3"}).one()
        assert (changed.key, changed.created_at) == ("k3", T0 + timedelta(minutes=3))
        assert direct.execute(uow.conn, RETURNING, {"p_key": "absent"}).first() is None
        row = direct.execute(uow.conn, TEXT, {"key": "k3"}).one()
        assert (row.k, row.next_status) == ("k3", 8)
        assert direct.execute(uow.conn, TEXT, {"key": "k4"}).scalar() == "k4"
        uow.commit()


def test_errors_are_sqlalchemys_and_the_transaction_rolls_back(filled: Database) -> None:
    with filled.uow() as uow:
        direct.execute(uow.conn, UPDATE, {"p_key": "k5", "body": "gone"})
        with pytest.raises(IntegrityError):
            direct.execute(uow.conn, INSERT, _row(0))  # the primary key is taken
        uow.rollback()
    with filled.uow(readonly=True) as uow:
        assert direct.execute(uow.conn, BY_KEYS, {"scope": "s", "keys": ["k5"]}).one().body == "{}"


def test_listeners_see_every_statement_once(filled: Database) -> None:
    seen: list[str] = []

    def count(*args: Any) -> None:
        if not args[2].startswith("BEGIN"):  # SQLite's own BEGIN IMMEDIATE
            seen.append(args[2])

    event.listen(filled.engine, "before_cursor_execute", count)
    try:
        with filled.uow() as uow:
            direct.execute(uow.conn, BY_KEYS, {"scope": "s", "keys": ["k1", "k2"]})
            direct.execute(uow.conn, UPDATE, {"p_key": "k1", "body": "a"})
            direct.execute(uow.conn, TEXT, {"key": "k1"})
            # Several rows are one multi-row INSERT, never one statement per row.
            direct.execute(uow.conn, INSERT, [_row(0) | {"key": f"n{i}"} for i in range(5)])
            uow.commit()
    finally:
        event.remove(filled.engine, "before_cursor_execute", count)
    assert len(seen) == 4
    with filled.uow(readonly=True) as uow:
        assert (
            len(direct.execute(uow.conn, BY_KEYS, {"scope": "s", "keys": [f"n{i}" for i in range(5)]}).all())
            == 5
        )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(statuses=st.lists(st.integers(-5, 500), min_size=2, max_size=direct.MAX_ROWS + 5))
def test_several_rows_insert_exactly_what_they_say(db: Database, statuses: list[int]) -> None:
    """Up to MAX_ROWS rows through one compiled multi-row INSERT, more through SQLAlchemy's."""
    scope = f"m-{uuid.uuid4().hex}"  # examples share the database
    rows = [
        {"scope": scope, "key": f"k{i}", "fingerprint": "f", "status": status, "body": f"b{i}",
         "created_at": T0 + timedelta(seconds=i)}
        for i, status in enumerate(statuses)
    ]  # fmt: skip
    with db.uow() as uow:
        direct.execute(uow.conn, INSERT, rows)
        uow.commit()
    with db.uow(readonly=True) as uow:
        stored = (
            uow.conn.execute(select(t).where(t.c.scope == scope).order_by(t.c.created_at)).mappings().all()
        )
    assert [dict(r) for r in stored] == rows


probe = Table(
    "direct_probe",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("note", String(20), nullable=False, default="[]"),  # filled in by SQLAlchemy when not given
)
PROBE_INSERT = insert(probe)


def test_several_rows_get_the_python_side_defaults(db: Database) -> None:
    with db.engine.begin() as conn:
        probe.create(conn)
    try:
        with db.uow() as uow:
            direct.execute(uow.conn, PROBE_INSERT, [{"id": i} for i in range(3)])
            direct.execute(uow.conn, PROBE_INSERT, [{"id": 10, "note": "a"}, {"id": 11, "note": "b"}])
            uow.commit()
        with db.uow(readonly=True) as uow:
            stored = uow.conn.execute(select(probe).order_by(probe.c.id)).all()
        assert [tuple(r) for r in stored] == [(0, "[]"), (1, "[]"), (2, "[]"), (10, "a"), (11, "b")]
    finally:
        with db.engine.begin() as conn:
            probe.drop(conn)
