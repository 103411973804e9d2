"""The SQL of staff accounts: conditional updates on ``version``, refresh token rotation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Row

from omnicommerce.platform.db import conflict_insert
from omnicommerce.platform.refresh_tokens import RefreshTokens
from omnicommerce.platform.staff.models import staff_refresh_tokens as tokens
from omnicommerce.platform.staff.models import staff_users as users

AnyRow = Row[Any]

REFRESH_TOKENS = RefreshTokens(tokens, id_prefix="srt", secret_prefix="omsr_")


def insert_user(conn: Connection, values: dict[str, Any]) -> bool:
    """False when the e-mail is taken (one statement, no race between a check and the insert)."""
    stmt = (
        conflict_insert(users, conn.dialect.name)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["email"])
        .returning(users.c.id)  # rowcount is not reliable for ON CONFLICT on every driver
    )
    return conn.execute(stmt).first() is not None


def by_id(conn: Connection, staff_id: str) -> AnyRow | None:
    return conn.execute(select(users).where(users.c.id == staff_id)).first()


def by_email(conn: Connection, email: str) -> AnyRow | None:
    return conn.execute(select(users).where(users.c.email == email)).first()


def listing(
    conn: Connection, *, after: str | None, limit: int, role: str | None, location: str | None
) -> list[AnyRow]:
    conds = [
        c
        for c in (
            users.c.id > after if after else None,
            users.c.role == role if role else None,
            users.c.location_id == location if location else None,
        )
        if c is not None
    ]
    stmt = select(users).where(*conds).order_by(users.c.id).limit(limit)
    return list(conn.execute(stmt).all())


def update_user(conn: Connection, staff_id: str, *, version: int, values: dict[str, Any]) -> bool:
    """Compare-and-set: False when another change came first."""
    res = conn.execute(
        update(users).where(users.c.id == staff_id, users.c.version == version).values(**values)
    )
    return res.rowcount == 1


def active_admins(conn: Connection) -> int:
    """Locked (PostgreSQL) so that two admins demoting each other at once cannot both succeed:
    the second waits, then no longer counts the first. SQLite runs one writer at a time anyway."""
    stmt = select(users.c.id).where(users.c.role == "admin", users.c.active.is_(True)).with_for_update()
    return len(conn.execute(stmt).all())


def mark_signed_in(conn: Connection, staff_id: str, *, now: datetime, password_hash: str | None) -> None:
    values: dict[str, Any] = {"last_sign_in_at": now}
    if password_hash is not None:  # argon2 parameters were raised since it was made
        values["password_hash"] = password_hash
    conn.execute(update(users).where(users.c.id == staff_id).values(**values))


def revoke_all(conn: Connection, staff_id: str, *, now: datetime) -> None:
    conn.execute(
        update(tokens)
        .where(tokens.c.staff_id == staff_id, tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
