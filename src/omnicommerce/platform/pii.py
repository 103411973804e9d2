"""Personal data in stored JSON and text: what counts as PII, how it is redacted for an erasure
request, and how rows are turned into plain JSON for an export.

Pure helpers (plus one SQL condition builder), shared by every context's privacy functions so
that export and erasure treat JSON columns, outbox payloads and webhook bodies the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Column, ColumnElement, Table, bindparam, false, func, or_, select, update
from sqlalchemy.engine import Connection, Row

ERASED = "[erased]"

# Keys whose string values are personal data wherever they appear in a stored document.
PII_KEYS = frozenset(
    {
        "name",
        "first_name",
        "last_name",
        "firstName",
        "lastName",
        "full_name",
        "email",
        "phone",
        "address",
        "line1",
        "line2",
        "street",
        "city",
        "postal_code",
        "postalCode",
        "zip",
        "ip",
        "car",
        "arrival_car",
        "birthday",
        "date_of_birth",
        "user_id",
        "userId",
        "anonymous_id",
        "anonymousId",
    }
)
# Keys whose value of any type (a point, a list) locates the person: set to null.
LOCATING_KEYS = frozenset({"ship_to", "geo", "location_point", "coordinates"})
# Shorter terms would match unrelated text ("NY", "Al").
MIN_TERM_LENGTH = 3


def usable_terms(terms: Iterable[str]) -> list[str]:
    """The person's identifying strings worth searching for, lower-cased, longest first."""
    out = {t.strip().lower() for t in terms if isinstance(t, str) and len(t.strip()) >= MIN_TERM_LENGTH}
    return sorted(out, key=lambda t: (-len(t), t))


def mentions(text: str, terms: Collection[str]) -> bool:
    lowered = text.lower()
    return any(t in lowered for t in terms)


def redact(value: Any, terms: Collection[str], *, key: str | None = None) -> Any:
    """``value`` with every string under a PII key, and every string mentioning one of ``terms``
    (lower-cased, see :func:`usable_terms`), replaced by :data:`ERASED`; structure is kept so
    consumers of the document still parse it."""
    if isinstance(value, Mapping):
        return {
            _redacted_key(str(k), terms): None if k in LOCATING_KEYS else redact(v, terms, key=str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, terms, key=key) for v in value]
    if isinstance(value, str) and value and (key in PII_KEYS or mentions(value, terms)):
        return ERASED
    return value


def _redacted_key(key: str, terms: Collection[str]) -> str:
    # A person's data used as a key (a map by email, say) goes too.
    return ERASED if mentions(key, terms) else key


def redact_json_text(text: str, terms: Collection[str]) -> str:
    """A stored JSON document redacted by :func:`redact` (``text`` itself when nothing in it is
    personal); text that is not JSON is erased whole when it mentions a term (it cannot be
    redacted part by part safely)."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        return ERASED if mentions(text, terms) else text
    redacted = redact(document, terms)
    return text if redacted == document else orjson.dumps(redacted).decode()


def mentions_any(column: Any, needles: Iterable[str]) -> ColumnElement[bool]:
    """SQL: ``column`` contains one of ``needles`` (case-insensitive on both databases). A scan,
    meant for rare admin work such as erasure, never for request paths."""
    conditions = [func.lower(column).contains(n.lower(), autoescape=True) for n in needles if n]
    return or_(*conditions) if conditions else false()


def decoded(value: Any) -> Any:
    """A column value as plain JSON: datetimes as ISO text, JSON text columns parsed."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def record(row: Row[Any] | Mapping[str, Any], *, omit: Collection[str] = ()) -> dict[str, Any]:
    """A table row as a JSON-able dict for an export (``omit``: secrets such as hashes)."""
    mapping = row._mapping if isinstance(row, Row) else row
    return {str(k): decoded(v) for k, v in mapping.items() if k not in omit}


def redact_documents(
    conn: Connection,
    table: Table,
    key: Column[Any],
    document: Column[Any],
    *,
    mentioning: Collection[str],
    terms: Collection[str],
    also: Mapping[str, Any] | None = None,
) -> int:
    """Redact (:func:`redact_json_text`) the ``document`` column of every row of ``table`` that
    mentions one of ``mentioning`` (the person's ids and contacts), setting the columns in
    ``also`` on the rows changed; returns how many. One scan and one executemany."""
    if not mentioning:
        return 0
    rows = conn.execute(select(key, document).where(mentions_any(document, mentioning))).all()
    changed = []
    for row_key, text in rows:
        redacted = redact_json_text(text, terms)
        if redacted != text:
            changed.append({"row_key": row_key, "new_text": redacted})
    if changed:
        conn.execute(
            update(table)
            .where(key == bindparam("row_key"))
            .values({document.name: bindparam("new_text"), **(also or {})}),
            changed,
        )
    return len(changed)


def rows_where(conn: Connection, table: Table, condition: ColumnElement[bool]) -> list[dict[str, Any]]:
    """Every row of ``table`` matching ``condition``, as export records."""
    return [record(r) for r in conn.execute(select(table).where(condition))]


def scrub_rows(
    conn: Connection,
    table: Table,
    condition: ColumnElement[bool],
    *,
    clear: Collection[str] = (),
    documents: Collection[str] = (),
    terms: Collection[str] = (),
    bump_version: bool = False,
) -> int:
    """Erase personal data in the rows of ``table`` matching ``condition``: ``clear`` columns
    set to null, ``documents`` (JSON text columns) redacted by :func:`redact_json_text`, and
    ``version`` raised when the table is written by compare-and-set (so a writer holding the
    old row fails instead of writing the data back). One read, one executemany; returns the rows."""
    key = next(iter(table.primary_key.columns))
    rows = conn.execute(select(key, *(table.c[d] for d in documents)).where(condition)).all()
    if not rows:
        return 0
    values: dict[str, Any] = dict.fromkeys(clear)
    values.update({d: bindparam(f"new_{d}") for d in documents})
    if bump_version:
        values["version"] = table.c.version + 1
    params = [
        {
            "row_key": row[0],
            **{f"new_{d}": _redacted_or_none(row[i + 1], terms) for i, d in enumerate(documents)},
        }
        for row in rows
    ]
    conn.execute(update(table).where(key == bindparam("row_key")).values(values), params)
    return len(rows)


def _redacted_or_none(text: str | None, terms: Collection[str]) -> str | None:
    return None if text is None else redact_json_text(text, terms)
