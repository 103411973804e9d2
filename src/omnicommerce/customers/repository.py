"""The customers context's SQL (Core). Services call these; nothing else touches the tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import Row, insert, or_, select, update
from sqlalchemy.engine import Connection

from omnicommerce.customers.models import customers, otp_codes, refresh_tokens
from omnicommerce.platform.db import DIALECTS, conflict_insert

AnyRow: TypeAlias = Row[*tuple[Any, ...]]  # a row of any width (Row[Any] means one column)

IMPORT_CHUNK = 500  # rows per multi-row INSERT: well under SQLite's and PG's parameter limits

_PUBLIC = [c for c in customers.c if c.name != "password_hash"]


def insert_customer(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(customers).values(**values))


def insert_customer_unless_email_taken(conn: Connection, values: Mapping[str, Any]) -> str | None:
    """``INSERT … ON CONFLICT (email) DO NOTHING RETURNING id``: the new id, or None when the
    (normalised) email already belongs to a customer. Any other conflict still raises."""
    return conn.execute(_INSERT_UNLESS_EMAIL_TAKEN[conn.dialect.name], dict(values)).scalar()


# Built once per dialect; the values come as execute parameters.
_INSERT_UNLESS_EMAIL_TAKEN = {
    d: conflict_insert(customers, d)
    .on_conflict_do_nothing(index_elements=[customers.c.email])
    .returning(customers.c.id)
    for d in DIALECTS
}


def insert_customers(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    for start in range(0, len(rows), IMPORT_CHUNK):
        conn.execute(insert(customers), list(rows[start : start + IMPORT_CHUNK]))


def get(conn: Connection, customer_id: str) -> AnyRow | None:
    return conn.execute(
        select(*_PUBLIC, customers.c.password_hash.is_not(None).label("has_password")).where(
            customers.c.id == customer_id
        )
    ).first()


def id_by_email(conn: Connection, email: str) -> str | None:
    return conn.execute(select(customers.c.id).where(customers.c.email == email)).scalar()


def credentials(conn: Connection, field: str, value: str) -> AnyRow | None:
    """id and password hash by normalised email or phone (the only read that sees the hash)."""
    column = customers.c[field]
    return conn.execute(select(customers.c.id, customers.c.password_hash).where(column == value)).first()


def which_taken(
    conn: Connection, email: str | None, phone: str | None, *, exclude: str | None = None
) -> list[str]:
    """Which of the given contacts already belong to another customer."""
    conds = []
    if email is not None:
        conds.append(customers.c.email == email)
    if phone is not None:
        conds.append(customers.c.phone == phone)
    if not conds:
        return []
    stmt = select(customers.c.email, customers.c.phone).where(or_(*conds))
    if exclude is not None:
        stmt = stmt.where(customers.c.id != exclude)
    taken = set()
    for row in conn.execute(stmt):
        if email is not None and row.email == email:
            taken.add("email")
        if phone is not None and row.phone == phone:
            taken.add("phone")
    return sorted(taken)


def search(
    conn: Connection, *, email: str | None, phone: str | None, q: str | None, after: str | None, limit: int
) -> list[AnyRow]:
    stmt = select(*_PUBLIC, customers.c.password_hash.is_not(None).label("has_password"))
    if email is not None:
        stmt = stmt.where(customers.c.email == email)
    if phone is not None:
        stmt = stmt.where(customers.c.phone == phone)
    if q:
        pattern = _escape_like(q.strip()) + "%"
        stmt = stmt.where(
            or_(
                customers.c.email.ilike(pattern, escape="\\"),
                customers.c.first_name.ilike(pattern, escape="\\"),
                customers.c.last_name.ilike(pattern, escape="\\"),
            )
        )
    if after is not None:
        stmt = stmt.where(customers.c.id > after)
    return list(conn.execute(stmt.order_by(customers.c.id).limit(limit + 1)))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def update_customer(conn: Connection, customer_id: str, values: Mapping[str, Any]) -> bool:
    res = conn.execute(
        update(customers)
        .where(customers.c.id == customer_id)
        .values(**values, version=customers.c.version + 1)
    )
    return res.rowcount == 1


def set_password_hash(conn: Connection, customer_id: str, password_hash: str) -> None:
    conn.execute(update(customers).where(customers.c.id == customer_id).values(password_hash=password_hash))


# --- refresh tokens --------------------------------------------------------------------------


def insert_refresh_token(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(refresh_tokens).values(**values))


def refresh_token_by_hash(conn: Connection, token_hash: str) -> AnyRow | None:
    return conn.execute(select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)).first()


def claim_refresh_token(conn: Connection, token_id: str, *, replaced_by: str, now: datetime) -> bool:
    """Revoke one live token; False if a concurrent refresh got there first (conditional UPDATE)."""
    res = conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.id == token_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now, replaced_by=replaced_by)
    )
    return res.rowcount == 1


def revoke_family(conn: Connection, family_id: str, *, now: datetime) -> None:
    conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


# --- one-time codes --------------------------------------------------------------------------


def insert_otp(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(otp_codes).values(**values))


def latest_otp(conn: Connection, customer_id: str, channel: str, *, now: datetime) -> AnyRow | None:
    return conn.execute(
        select(otp_codes)
        .where(
            otp_codes.c.customer_id == customer_id,
            otp_codes.c.channel == channel,
            otp_codes.c.consumed_at.is_(None),
            otp_codes.c.expires_at > now,
        )
        .order_by(otp_codes.c.created_at.desc(), otp_codes.c.id.desc())
        .limit(1)
    ).first()


def count_otp_attempt(conn: Connection, otp_id: str, *, max_attempts: int) -> bool:
    """Spend one attempt; False once the code has used them all (conditional UPDATE, race-safe)."""
    res = conn.execute(
        update(otp_codes)
        .where(
            otp_codes.c.id == otp_id, otp_codes.c.attempts < max_attempts, otp_codes.c.consumed_at.is_(None)
        )
        .values(attempts=otp_codes.c.attempts + 1)
    )
    return res.rowcount == 1


def consume_otp(conn: Connection, otp_id: str, *, now: datetime) -> bool:
    res = conn.execute(
        update(otp_codes)
        .where(otp_codes.c.id == otp_id, otp_codes.c.consumed_at.is_(None))
        .values(consumed_at=now)
    )
    return res.rowcount == 1
