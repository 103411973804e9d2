"""Counting the SQL statements a block sends, for the "no N+1" and statement-budget tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from omnicommerce.platform.db import Database


@contextmanager
def counting(db: Database, *, skip_begin: bool = False) -> Iterator[list[str]]:
    """Every statement sent while the block runs; ``skip_begin`` leaves out SQLite's own BEGIN."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not (skip_begin and statement.startswith("BEGIN")):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def count_statements(db: Database) -> Any:
    """Statements the block sends, SQLite's own BEGIN excluded (it is not ours)."""
    return counting(db, skip_begin=True)
