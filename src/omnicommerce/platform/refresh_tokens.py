"""Rotating refresh tokens: one implementation for customers and staff.

A refresh token is a random secret handed out once and stored only as its SHA-256. Each use spends
it and issues a successor (rotation); every token rotated from one sign-in shares a ``family_id``.
A spent token coming back means someone holds a copy, and nobody can tell the owner from the
thief: the whole family is revoked, so both sign in again (OAuth 2.0 Security BCP, §4.14).

The tables differ in who owns a token (a customer and channel; a staff user and account version)
and share the columns this module touches: ``id``, ``family_id``, ``token_hash``, ``created_at``,
``expires_at``, ``revoked_at`` and ``replaced_by``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, NoReturn

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import Connection, Row

from omnicommerce.platform import clock
from omnicommerce.platform.auth import hash_key
from omnicommerce.platform.errors import Unauthorized
from omnicommerce.platform.ids import new_id


class InvalidRefreshToken(Unauthorized):
    code = "invalid-refresh-token"
    title = "Invalid refresh token"


class RefreshTokenReused(InvalidRefreshToken):
    """A spent refresh token came back: its whole family is revoked. The caller must commit
    before re-raising it, or the revocation is lost with the rollback."""

    code = "refresh-token-reused"
    title = "Refresh token reused"


class Spent(NamedTuple):
    token: Row[Any]  # the presented token's row, owner columns included
    successor_id: str  # the id the token issued in its place must take


@dataclass(frozen=True)
class RefreshTokens:
    table: Table
    id_prefix: str  # of token ids: "rft", "srt"
    secret_prefix: str  # of the secrets handed out, so logs can redact them: "omr_", "omsr_"

    def issue(
        self,
        conn: Connection,
        *,
        owner: Mapping[str, Any],
        ttl_seconds: int,
        after: Spent | None = None,
    ) -> str:
        """Store a new token for ``owner`` (the table's own columns) and return its secret. With
        ``after``, it succeeds a spent token, in that token's family."""
        secret = self.secret_prefix + secrets.token_urlsafe(32)
        now = clock.now()
        token_id = after.successor_id if after else new_id(self.id_prefix)
        conn.execute(
            insert(self.table).values(
                id=token_id,
                family_id=after.token.family_id if after else token_id,
                token_hash=hash_key(secret),
                created_at=now,
                expires_at=now + timedelta(seconds=ttl_seconds),
                **owner,
            )
        )
        return secret

    def spend(self, conn: Connection, secret: str) -> Spent:
        """Revoke a live token and name its successor, which the caller then issues.

        Raises :class:`RefreshTokenReused` for a token already spent (the family is revoked), and
        :class:`InvalidRefreshToken` for one unknown, expired or revoked."""
        now = clock.now()
        t = self.table
        row = conn.execute(select(t).where(t.c.token_hash == hash_key(secret))).first()
        if row is None:
            raise InvalidRefreshToken("unknown refresh token; sign in again")
        if row.replaced_by is not None:
            self._revoke_family_for_reuse(conn, row.family_id, now)
        if row.revoked_at is not None:
            raise InvalidRefreshToken("refresh token revoked; sign in again")
        if row.expires_at <= now:
            raise InvalidRefreshToken("refresh token expired; sign in again")
        successor_id = new_id(self.id_prefix)
        claimed = conn.execute(
            update(t)
            .where(t.c.id == row.id, t.c.revoked_at.is_(None))
            .values(revoked_at=now, replaced_by=successor_id)
        )
        if claimed.rowcount != 1:
            # A concurrent refresh spent it a moment ago: the same token twice is reuse, whoever
            # came first.
            self._revoke_family_for_reuse(conn, row.family_id, now)
        return Spent(row, successor_id)

    def _revoke_family_for_reuse(self, conn: Connection, family_id: str, now: datetime) -> NoReturn:
        t = self.table
        conn.execute(
            update(t).where(t.c.family_id == family_id, t.c.revoked_at.is_(None)).values(revoked_at=now)
        )
        raise RefreshTokenReused("refresh token already used; every session of that sign-in is ended")
