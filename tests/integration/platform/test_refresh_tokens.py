"""Refresh token rotation against the real databases, on the staff table (the customers' differs
only in its owner columns). The services' own tests cover the rules through their APIs."""

from __future__ import annotations

import contextlib
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from omnicommerce.platform import clock, ids, refresh_tokens
from omnicommerce.platform.db import Database, transaction
from omnicommerce.platform.refresh_tokens import InvalidRefreshToken, RefreshTokenReused
from omnicommerce.platform.staff.models import staff_refresh_tokens as table
from omnicommerce.platform.staff.repository import REFRESH_TOKENS

OWNER = {"staff_id": "stf_1", "staff_version": 1}


def _issue(db: Database) -> str:
    with transaction(db) as uow:
        return REFRESH_TOKENS.issue(uow.conn, owner=OWNER, ttl_seconds=3600)


def _live(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(table.c.id).where(table.c.revoked_at.is_(None))).scalars())


def test_a_rotation_stays_in_its_family_and_stores_only_hashes(db: Database) -> None:
    first = _issue(db)
    with transaction(db) as uow:
        spent = REFRESH_TOKENS.spend(uow.conn, first)
        second = REFRESH_TOKENS.issue(uow.conn, owner=OWNER, ttl_seconds=3600, after=spent)
    assert first.startswith("omsr_") and second.startswith("omsr_") and first != second
    with db.engine.connect() as conn:
        rows = conn.execute(select(table)).all()
    assert len({r.family_id for r in rows}) == 1
    assert [r.id for r in rows if r.revoked_at is None] == [spent.successor_id]
    assert {r.replaced_by for r in rows} == {spent.successor_id, None}
    assert all(r.token_hash not in (first, second) and len(r.token_hash) == 64 for r in rows)


def test_revoked_expired_and_unknown_tokens_are_refused_without_touching_the_family(db: Database) -> None:
    first = _issue(db)
    other = _issue(db)  # another sign-in: a family of its own
    with transaction(db) as uow:
        spent = REFRESH_TOKENS.spend(uow.conn, first)
        second = REFRESH_TOKENS.issue(uow.conn, owner=OWNER, ttl_seconds=3600, after=spent)
    with db.uow() as uow, pytest.raises(InvalidRefreshToken, match="unknown"):
        REFRESH_TOKENS.spend(uow.conn, "omsr_nothing")
    later = clock.now() + timedelta(hours=2)
    clock.set_clock(lambda: later)
    with db.uow() as uow, pytest.raises(InvalidRefreshToken, match="expired") as expired:
        REFRESH_TOKENS.spend(uow.conn, second)
    assert type(expired.value) is InvalidRefreshToken
    # The spent one is reuse even when expired: its family (and only its family) is revoked.
    with db.uow() as uow:
        with pytest.raises(RefreshTokenReused):
            REFRESH_TOKENS.spend(uow.conn, first)
        uow.commit()
    assert len(_live(db)) == 1  # `other`'s
    clock.set_clock(lambda: later - timedelta(hours=2))
    with db.uow() as uow, pytest.raises(InvalidRefreshToken, match="revoked") as revoked:
        REFRESH_TOKENS.spend(uow.conn, second)
    assert type(revoked.value) is InvalidRefreshToken
    with transaction(db) as uow:
        REFRESH_TOKENS.spend(uow.conn, other)


@pytest.mark.parametrize("racers", [2, 4])
def test_racing_refreshes_of_one_token_rotate_once_and_end_the_family(
    db: Database, monkeypatch: pytest.MonkeyPatch, racers: int
) -> None:
    token = _issue(db)
    # Every racer pauses between reading the token and claiming it until all have read it (or 1 s
    # passed, where the database serialises them sooner): without the conditional claim, each
    # would see it live and rotate it.
    all_read = threading.Barrier(racers)

    def new_id_after_all_read(prefix: str) -> str:
        with contextlib.suppress(threading.BrokenBarrierError):
            all_read.wait(timeout=1.0)
        return ids.new_id(prefix)

    monkeypatch.setattr(refresh_tokens, "new_id", new_id_after_all_read)
    outcomes: list[str] = []

    def refresh() -> None:
        with db.uow() as uow:
            try:
                spent = REFRESH_TOKENS.spend(uow.conn, token)
                REFRESH_TOKENS.issue(uow.conn, owner=OWNER, ttl_seconds=3600, after=spent)
                outcomes.append("rotated")
            except RefreshTokenReused:
                outcomes.append("reused")
            uow.commit()

    threads = [threading.Thread(target=refresh) for _ in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["reused"] * (racers - 1) + ["rotated"]
    assert _live(db) == []  # the winner's successor died with the family
