"""Database engine, the shared metadata, and the unit of work.

SQLite (the embedded default) runs in WAL mode and opens write transactions with
``BEGIN IMMEDIATE``: SQLite then serialises writers up front instead of failing a reader that
tries to upgrade, so conditional updates stay atomic under threads. PostgreSQL runs at READ
COMMITTED, where a conditional ``UPDATE … WHERE`` re-checks its predicate after a row-lock wait.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, MetaData, Table, create_engine, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from omnicommerce.platform.clock import as_utc

if TYPE_CHECKING:
    from omnicommerce.platform.events import Event

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use omnicommerce.platform.clock.now()")
        return value.astimezone(UTC).replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


DIALECTS = ("postgresql", "sqlite")


def conflict_insert(table: Table, dialect: str) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which offers ``on_conflict_do_nothing`` / ``_do_update`` on both databases."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 20) -> Engine:
    if is_sqlite(url):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _tune_sqlite(engine)
        return engine
    # No pre-ping: it costs a round trip per checkout. A connection that died with the server is
    # detected when used; SQLAlchemy then invalidates the pool, the request answers 503 (nothing was
    # committed) and the next one reconnects.
    # psycopg prepares nothing itself (``prepare_threshold``): the hot statements are prepared by
    # platform.wire, and psycopg would drop those with its own at every rollback (DEALLOCATE ALL).
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={"options": server_options(url), "prepare_threshold": None},
    )


def server_options(url: str) -> str:
    """The libpq ``options`` for our connections: any the URL gives (``?options=-c …``), then
    :data:`GENERIC_PLANS` (``connect_args`` replaces the URL's value rather than adding to it)."""
    given = make_url(url).query.get("options", ())  # a string, or a tuple when repeated
    own = [given] if isinstance(given, str) else list(given)
    return " ".join([*own, GENERIC_PLANS])


# platform.wire prepares each hot statement on a connection the first time. PostgreSQL then still
# plans it afresh for each execution while it guesses that a plan for the actual values beats
# the generic one, and for statements over ``unnest`` of array parameters it always guesses so
# (it assumes 100 elements where there are a handful): the stock reservation was re-planned on
# every call, 0.45 ms of server CPU each time. The statements prepared are the hot ones: short
# key lookups and writes, for which one generic plan is right; a query whose best plan depends on
# its values (a report over a skewed column) would want its own, and none is prepared.
GENERIC_PLANS = "-c plan_cache_mode=force_generic_plan"


def make_nullpool_engine(url: str) -> Engine:
    """A pool-less engine for one-off admin work (migrations, creating databases)."""
    engine = create_engine(url, poolclass=NullPool)
    if is_sqlite(url):
        _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get("omni_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


class Database:
    """One engine plus the hook the outbox relay listens on."""

    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self._commit_listeners: list[Callable[[], None]] = []

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def on_events_committed(self, listener: Callable[[], None]) -> None:
        self._commit_listeners.append(listener)

    def events_committed(self) -> None:
        for listener in self._commit_listeners:
            listener()

    def uow(self, *, readonly: bool = False) -> UnitOfWork:
        return UnitOfWork(self, readonly=readonly)

    @contextmanager
    def each_statement_commits(self) -> Iterator[Connection]:
        """A connection for statements that each stand on their own: on PostgreSQL every one
        commits by itself (no BEGIN and COMMIT round trips); on SQLite they run in one
        transaction, committed at the end of the block. Only for work where a failure part way
        leaves nothing half-done that a later statement was meant to complete."""
        if self.dialect != "postgresql":
            with self.engine.begin() as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    def dispose(self) -> None:
        self.engine.dispose()


class UnitOfWork:
    """One transaction. Services write through ``conn`` and ``emit``; only the entrypoint commits.

    Events emitted are written to the outbox in the same transaction at commit; if the unit of
    work is left without committing, everything — state, ledger rows and events — rolls back.
    """

    def __init__(self, db: Database, *, readonly: bool = False) -> None:
        self.db = db
        self.readonly = readonly
        self._conn: Connection | None = None
        self._events: list[Event] = []

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            conn = self.db.engine.connect()
            if self.readonly and self.db.dialect == "postgresql":
                # Reads need no transaction: skipping BEGIN/ROLLBACK saves two round trips.
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            elif self.readonly:
                conn = conn.execution_options(omni_readonly=True)
            conn.begin()
            self._conn = conn
        return self._conn

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def emit(self, event: Event) -> None:
        self._events.append(event)

    @property
    def pending_events(self) -> list[Event]:
        return list(self._events)

    def commit(self) -> None:
        from omnicommerce.platform.outbox import write_events

        had_events = bool(self._events)
        if had_events:  # on PostgreSQL the events' INSERT carries the COMMIT: one round trip
            write_events(self.conn, self._events, ends_transaction=True)
        if self._conn is not None:
            self._conn.commit()
        self._events.clear()
        if had_events:
            self.db.events_committed()

    def rollback(self) -> None:
        self._events.clear()
        if self._conn is not None:
            self._conn.rollback()

    def release(self) -> None:
        """Roll back and give the connection back to the pool now rather than at the end of the
        request, so that a request never holds two pooled connections at once (a request that
        does, in every worker thread at once, starves the pool)."""
        self.rollback()
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._events.clear()

    @property
    def ending_needs_io(self) -> bool:
        """Whether leaving now would talk to the database: only a write transaction still open
        on PostgreSQL must be rolled back over the wire (after a commit, for reads in autocommit,
        and on SQLite's in-process file, returning the connection sends nothing)."""
        return (
            self._conn is not None
            and not self.readonly
            and self.dialect == "postgresql"
            and self._conn.in_transaction()
        )

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.rollback()
        self.close()


@contextmanager
def transaction(db: Database) -> Iterator[UnitOfWork]:
    """For jobs and the CLI: commit if the block succeeds, roll back otherwise."""
    with db.uow() as uow:
        yield uow
        uow.commit()
