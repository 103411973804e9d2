"""One statement to PostgreSQL in one round trip, through libpq (psycopg's ``pq`` layer).

:mod:`omnicommerce.platform.direct` sends the hot statements here instead of through a psycopg
cursor. Per statement this saves psycopg's query conversion and prepared-statement bookkeeping
(about 50 µs of CPU on the bench machine), and it saves round trips, each of which costs both
processes a system call and a wake-up (about 100 µs of CPU in all):

- the ``BEGIN`` of a transaction goes in the same network write as its first statement, where
  psycopg sends it on its own and waits for the answer;
- a statement may carry the transaction's ``COMMIT`` with it (the outbox insert that ends a unit
  of work does);
- a statement is prepared on a connection the first time it runs there, in the same round trip.

This uses libpq's pipeline mode for those few commands, then leaves it: the connection is an
ordinary psycopg connection before and after, whose own ``commit`` and ``rollback`` see the
transaction status the server reports (a ``commit`` after a statement that committed sends
nothing). Statements are named ``omni_<n>`` per connection, apart from psycopg's own ``_pg3_<n>``;
prepared statements need session-level connections, or pgbouncer 1.21+ with
``max_prepared_statements`` set (docs/deploy.md).

Beside the public ``psycopg.pq`` and ``psycopg.adapt.Transformer``, this drives psycopg's
generators with ``Connection.wait`` as psycopg's cursors do, and asks the connection for the
BEGIN psycopg would send (``_get_tx_start_command``), so pyproject.toml keeps psycopg to one minor
version.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import errors, pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.generators import execute, fetch_many, send
from psycopg.pq.abc import PGconn, PGresult

COMMAND_OK = pq.ExecStatus.COMMAND_OK
FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC
IDLE = pq.TransactionStatus.IDLE
COMMIT = b"COMMIT"
# "cached plan must not change result type", "prepared statement does not exist"
_STALE = frozenset({"0A000", "26000"})


class Wire:
    """The statements prepared on one driver connection, and its adapters (dumpers and loaders
    found once per Python type and column type)."""

    def __init__(self, dbapi: psycopg.Connection[Any]) -> None:
        self.pgconn: PGconn = dbapi.pgconn
        self.transformer = Transformer(dbapi)
        self._prepared: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        self._names = itertools.count()

    def run(
        self,
        dbapi: psycopg.Connection[Any],
        sql: str,
        args: Mapping[str, Any],
        *,
        ends_transaction: bool = False,
    ) -> PGresult:
        """Run ``sql`` (pyformat placeholders, as SQLAlchemy compiles for psycopg) with ``args``;
        its result, or the psycopg error the server answered. A connection not in autocommit
        mode begins its transaction first if none is open, and commits it after the statement when
        ``ends_transaction``."""
        then_commit = ends_transaction and not dbapi.autocommit
        if self.pgconn.pipeline_status:  # never left so by this module; refuse rather than hang
            _abandon_pipeline(dbapi)
            raise psycopg.OperationalError("the connection was left in pipeline mode")
        query, names = _dollar_form(sql)
        tx = self.transformer
        params = tx.dump_sequence([args[name] for name in names], _auto(len(names)))
        types = tuple(tx.types or ())
        formats = tx.formats
        in_transaction = dbapi.autocommit or self.pgconn.transaction_status != IDLE
        name = self._prepared.get((query, types))
        if name is not None and in_transaction and not then_commit:
            self.pgconn.send_query_prepared(name, params, param_formats=formats)
            result = dbapi.wait(execute(self.pgconn))[-1]
            if result.status == FATAL_ERROR:
                raise self._failure(result, (query, types))
            return result
        # The BEGIN psycopg itself would send for this connection's settings (kept by psycopg).
        before = [] if in_transaction else [dbapi._get_tx_start_command()]
        return self._pipelined(dbapi, before, query, types, name, params, formats, then_commit)

    def _pipelined(
        self,
        dbapi: psycopg.Connection[Any],
        before: list[bytes],
        query: bytes,
        types: tuple[int, ...],
        name: bytes | None,
        params: Sequence[Any],
        formats: Sequence[pq.Format] | None,
        then_commit: bool,
    ) -> PGresult:
        """BEGIN, PREPARE, the statement and COMMIT as needed, sent together; the statement's
        result, or the first error (the commands after it were skipped by the server)."""
        pgconn = self.pgconn
        to_prepare = name is None
        if name is None:
            name = b"omni_%d" % next(self._names)
        commands = len(before) + to_prepare + 1 + then_commit
        pgconn.enter_pipeline_mode()
        try:
            for command in before:
                pgconn.send_query_params(command, None)
            if to_prepare:
                pgconn.send_prepare(name, query, param_types=types)
            pgconn.send_query_prepared(name, params, param_formats=formats)
            if then_commit:
                pgconn.send_query_params(COMMIT, None)
            pgconn.pipeline_sync()
            results = dbapi.wait(_pipeline_results(pgconn, commands))
            pgconn.exit_pipeline_mode()
        except BaseException:
            _abandon_pipeline(dbapi)
            raise
        failed = next((r for r in results if r.status == FATAL_ERROR), None)
        if to_prepare and results[len(before)].status == COMMAND_OK:
            self._prepared[(query, types)] = name
        if failed is not None:
            raise self._failure(failed, (query, types))
        return results[len(before) + to_prepare]

    def _failure(self, result: PGresult, key: tuple[bytes, tuple[int, ...]]) -> psycopg.Error:
        """The error the server answered. A statement that no longer fits its preparation (a
        migration changed a column's type) or is gone is prepared afresh next time; this
        execution fails, as psycopg's own prepared statements do."""
        error = errors.error_from_result(result, encoding=self.transformer.encoding)
        if error.sqlstate in _STALE:
            self._prepared.pop(key, None)
        return error

    def rows(self, result: PGresult, make_row: Callable[[Sequence[Any]], Any]) -> list[Any]:
        """The result's rows, each built by ``make_row`` from the loaded column values."""
        tx = self.transformer
        tx.set_pgresult(result)
        return tx.load_rows(0, result.ntuples, make_row)


def _pipeline_results(pgconn: PGconn, commands: int) -> Any:
    """Send what is queued, then collect one result per command and the sync's."""
    yield from send(pgconn)
    results: list[PGresult] = []
    for _ in range(commands):
        results.extend((yield from fetch_many(pgconn)))
    synced = yield from fetch_many(pgconn)
    assert synced and synced[0].status == PIPELINE_SYNC, synced
    return results


def _abandon_pipeline(dbapi: psycopg.Connection[Any]) -> None:
    """After a failure part way (the connection dropped, an interrupt, results left unread):
    leave pipeline mode, or close a connection that cannot leave it, which the pool then
    replaces. A connection left in pipeline mode would hang its next user: its commands would
    wait for a sync that never comes."""
    try:
        dbapi.pgconn.exit_pipeline_mode()
    except psycopg.Error:
        dbapi.close()


_PLACEHOLDER = re.compile(r"%%|%\(([^)]+)\)s|%")


@lru_cache(maxsize=4096)
def _dollar_form(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """``sql`` with ``%(name)s`` as ``$n`` (a name used twice is one parameter) and ``%%`` as
    ``%``, and the parameter names in ``$n`` order."""
    names: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        name = match.group(1)
        if name is None:
            raise ValueError(f"a lone % in a statement for the wire: {sql[:200]!r}")
        return f"${names.setdefault(name, len(names) + 1)}"

    query = _PLACEHOLDER.sub(number, sql)
    return query.encode(), tuple(names)


@lru_cache(maxsize=64)
def _auto(count: int) -> list[PyFormat]:
    return [PyFormat.AUTO] * count
