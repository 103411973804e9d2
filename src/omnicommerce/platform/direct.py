"""Hot statements sent straight to libpq, compiled once.

SQLAlchemy Core costs tens of microseconds per ``Connection.execute`` on top of the driver: the
cache-key walk, the execution context, and a result built from ``cursor.description`` (which
psycopg materialises column by column on every statement). A checkout runs two dozen statements,
so on PostgreSQL the statements on that path go through :func:`execute` instead: each is
compiled once by SQLAlchemy (per set of parameter names, which decide an INSERT's columns and an
UPDATE's ``SET``), then sent by :mod:`omnicommerce.platform.wire` on the connection's own
transaction (prepared once per connection, with the transaction's BEGIN, and COMMIT when asked,
in the same round trip); rows come back as named tuples built from the compiled statement's
columns, with the column types' result processing (:class:`~omnicommerce.platform.db.UTCDateTime`)
applied.

Everything else stays as SQLAlchemy does it: errors are translated (``IntegrityError``,
``OperationalError``, disconnects invalidate the pool) and ``before_cursor_execute`` listeners
see each statement (the statement counts in tests and benchmarks stay honest). An expanding
``IN`` is rendered per call for the sizes of its lists. SQLite takes the ordinary path.

Only statements built once (module constants) may come here: the compiled form is kept per
statement object for the life of the process.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg.pq import ExecStatus
from psycopg.pq.abc import PGresult
from sqlalchemy import bindparam
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert, ValuesBase

from omnicommerce.platform.wire import Wire

Params = Mapping[str, Any]
TUPLES_OK = ExecStatus.TUPLES_OK


@dataclass(slots=True)
class _Plan:
    sql: str
    defaults: dict[str, Any]  # literal binds SQLAlchemy put in the statement (e.g. ``version + 1``)
    # Builds a row from a tuple; None until known (SQL text: named from ``cursor.description``)
    row: Callable[[Sequence[Any]], Any] | None
    types: tuple[Any, ...]  # the result columns' SQLAlchemy types (none for SQL text)
    # Result processing per column, from the types and the driver's type codes: known after the
    # first execution (``cursor.description`` is read that once).
    processors: tuple[tuple[int, Callable[[Any], Any]], ...] | None = None
    # Set when the statement has an expanding ``IN``: rendered per call for the list sizes given.
    expanding: SQLCompiler | None = None
    # The expanding parameters' names, and the rendered statements by list sizes (None: a
    # literal-execute parameter puts values in the text, so nothing can be reused).
    expanding_names: tuple[str, ...] = ()
    rendered: dict[tuple[int, ...], tuple[str, dict[str, list[str]]]] | None = None

    def args(self, params: Params) -> dict[str, Any]:
        return {**self.defaults, **params} if self.defaults else dict(params)


class Result:
    """The part of SQLAlchemy's ``CursorResult`` the repositories use."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise LookupError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def all(self) -> list[Any]:
        return self._rows

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


_PLANS: dict[tuple[int, tuple[str, ...], int], tuple[Executable, _Plan]] = {}
_MAX_PLANS = 2_000  # far above the hot statements; reaching it means a per-call statement came here


def execute(
    conn: Connection,
    stmt: Executable,
    params: Params | Sequence[Params] | None = None,
    *,
    ends_transaction: bool = False,
) -> Any:
    """``conn.execute(stmt, params)``, straight to libpq on PostgreSQL (see the module's doc).
    Several parameter sets for an INSERT are sent as one multi-row INSERT, compiled once per
    number of rows (up to :data:`MAX_ROWS`; more, or other statements, go through SQLAlchemy).

    ``ends_transaction``: the caller commits right after this statement. On PostgreSQL the
    ``COMMIT`` then goes with the statement, in the same round trip, and the caller's
    ``conn.commit()`` finds nothing left to send; elsewhere that commit does the work."""
    if params is not None and not isinstance(params, Mapping):
        if len(params) == 1:
            params = params[0]
        elif conn.dialect.name == "postgresql" and _fits_rows(stmt, params):
            plan = _plan_for(conn, stmt, params[0], rows=len(params))
            return _run(conn, plan, plan.args(_numbered(params)), ends_transaction=ends_transaction)
        else:
            return conn.execute(stmt, list(params))
    if conn.dialect.name != "postgresql":
        return conn.execute(stmt, params)
    given: Params = params or {}
    plan = _plan_for(conn, stmt, given)
    return _run(conn, plan, plan.args(given), ends_transaction=ends_transaction)


MAX_ROWS = 20  # rows of a multi-row INSERT compiled once; events per transaction stay below it


def _fits_rows(stmt: Executable, params: Sequence[Params]) -> bool:
    """An INSERT whose parameter sets all name the same columns, not too many of them, and no
    column left out that SQLAlchemy would fill in itself (a Python-side default)."""
    if not isinstance(stmt, Insert) or not 1 < len(params) <= MAX_ROWS:
        return False
    names = params[0].keys()
    if any(c.default is not None and c.key not in names for c in stmt.table.columns):
        return False
    return all(p.keys() == names for p in params)


def _numbered(params: Sequence[Params]) -> dict[str, Any]:
    """Row ``i``'s value of column ``c`` as the parameter ``c_i`` (see :func:`_compile`)."""
    return {f"{name}_{i}": value for i, row in enumerate(params) for name, value in row.items()}


def _plan_for(conn: Connection, stmt: Executable, params: Params, *, rows: int = 1) -> _Plan:
    # An INSERT's columns and an UPDATE's SET come from the names of the parameters given.
    names = tuple(sorted(params)) if isinstance(stmt, ValuesBase) else ()
    key = (id(stmt), names, rows)
    found = _PLANS.get(key)
    if found is not None:
        return found[1]
    if len(_PLANS) >= _MAX_PLANS:
        raise RuntimeError("platform.direct.execute is for statements built once, not per call")
    plan = _compile(conn, stmt, names, rows)
    _PLANS[key] = (stmt, plan)  # the statement is kept alive, so its id is never reused
    return plan


def _compile(conn: Connection, stmt: Executable, names: tuple[str, ...], rows: int = 1) -> _Plan:
    dialect = conn.dialect
    if rows > 1:  # one VALUES tuple per row, its parameters numbered: ``c_0``, ``c_1``, …
        stmt = cast(Insert, stmt).values([{n: bindparam(f"{n}_{i}") for n in names} for i in range(rows)])
        names = tuple(f"{n}_{i}" for i in range(rows) for n in names)
        compiled = cast(SQLCompiler, cast(ClauseElement, stmt).compile(dialect=dialect))
    else:
        compiled = cast(
            SQLCompiler,
            cast(ClauseElement, stmt).compile(dialect=dialect, column_keys=list(names) if names else None),
        )
    given = set(names)
    defaults = {
        k: v for k, v in compiled.construct_params(_check=False).items() if k not in given and v is not None
    }
    columns = compiled._result_columns
    row = _row_type([c[0] for c in columns]) if columns else None
    plan = _Plan(compiled.string, defaults, row, tuple(c[3] for c in columns))
    if compiled.post_compile_params:
        plan.expanding = compiled
        plan.expanding_names = tuple(compiled.bind_names[b] for b in compiled.post_compile_params)
        if not any(b.literal_execute for b in compiled.post_compile_params):
            plan.rendered = {}
    return plan


def _row_type(names: list[str]) -> Callable[[Sequence[Any]], Any]:
    return cast(Any, namedtuple("Row", names, rename=True))._make


def _run(conn: Connection, plan: _Plan, args: dict[str, Any], *, ends_transaction: bool = False) -> Result:
    sql = plan.sql
    if plan.expanding is not None:
        sql, args = _expand(plan, plan.expanding, args)
    dbapi, wire = _wire(conn)
    _announce(conn, sql, args)
    try:
        result = wire.run(dbapi, sql, args, ends_transaction=ends_transaction)
    except psycopg.Error as exc:
        conn._handle_dbapi_exception(exc, sql, args, None, None)
        raise  # not reached: the handler raises SQLAlchemy's translation
    if result.status != TUPLES_OK:
        return Result([], _rowcount(result))
    if plan.processors is None:
        _learn(conn, plan, result)
    assert plan.row is not None
    make_row = plan.row if not plan.processors else tuple
    rows = wire.rows(result, make_row)
    return Result(_shape(plan, rows) if plan.processors else rows, _rowcount(result))


def _rowcount(result: PGresult) -> int:
    count = result.command_tuples
    return -1 if count is None else count


def _expand(plan: _Plan, compiled: SQLCompiler, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The statement rendered for these list sizes (once per sizes) and its flat parameters."""
    if plan.rendered is None:
        state = compiled.construct_expanded_state(args)
        return state.statement, dict(state.parameters)
    sizes = tuple(len(args[name]) for name in plan.expanding_names)
    rendered = plan.rendered.get(sizes)
    if rendered is None:
        state = compiled.construct_expanded_state(args)
        rendered = plan.rendered[sizes] = (state.statement, dict(state.parameter_expansion))
    sql, expansion = rendered
    flat = {k: v for k, v in args.items() if k not in expansion}
    for name, names in expansion.items():
        values = args[name]
        if values and isinstance(values[0], tuple):
            values = [v for row in values for v in row]
        flat.update(zip(names, values, strict=True))
    return sql, flat


def _learn(conn: Connection, plan: _Plan, result: PGresult) -> None:
    """What only the first result tells: the driver's type codes (for result processing) and,
    for SQL text, the column names."""
    if plan.row is None:
        plan.row = _row_type([(result.fname(i) or b"").decode() for i in range(result.nfields)])
    dialect = conn.dialect
    found = []
    for i, type_ in enumerate(plan.types[: result.nfields]):
        processor = type_.dialect_impl(dialect).result_processor(dialect, result.ftype(i))
        if processor is not None:
            found.append((i, processor))
    plan.processors = tuple(found)


def _shape(plan: _Plan, rows: list[Any]) -> list[Any]:
    """Rows loaded as tuples, with the columns' result processing applied, as named rows."""
    assert plan.row is not None and plan.processors
    shaped = []
    for r in rows:
        values = list(r)
        for i, processor in plan.processors:
            values[i] = processor(values[i])
        shaped.append(plan.row(values))
    return shaped


def _cursor(conn: Connection) -> Any:
    """The driver connection's cursor, which statement listeners are given (statements here do
    not run through it). It lives in the pool record's ``info``, which goes with the connection
    when that is closed."""
    pooled = conn.connection
    cursor = pooled.info.get(_CURSOR)
    if cursor is None or cursor.closed:
        cursor = pooled.info[_CURSOR] = pooled.dbapi_connection.cursor()  # type: ignore[union-attr]
    return cursor


_CURSOR = "omnicommerce.direct.cursor"
_WIRE = "omnicommerce.direct.wire"


def _wire(conn: Connection) -> tuple[psycopg.Connection[Any], Wire]:
    pooled = conn.connection
    dbapi = cast(psycopg.Connection[Any], pooled.dbapi_connection)
    wire: Wire | None = pooled.info.get(_WIRE)
    if wire is None or wire.pgconn is not dbapi.pgconn:
        wire = pooled.info[_WIRE] = Wire(dbapi)
    return dbapi, wire


def _announce(conn: Connection, sql: str, args: Any) -> None:
    """Let ``before_cursor_execute`` listeners (statement counters) see the statement."""
    if conn._has_events or conn.engine._has_events:
        conn.dispatch.before_cursor_execute(conn, _cursor(conn), sql, args, None, False)
