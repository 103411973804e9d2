"""The review queue: pairs the matcher was not sure of, for a person to decide. Accepting merges
the two profiles (journaled with the matcher's evidence and the reviewer); rejecting closes the
pair for good (its key stays, so it is never proposed again). Never commits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import orjson

from omnicommerce.customers import identity
from omnicommerce.customers import repository as repo
from omnicommerce.customers.events import IdentityReviewDecided
from omnicommerce.customers.schemas import MatchRecord, ReviewOut
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.errors import Conflict, NotFound
from omnicommerce.platform.web import Page, decode_cursor, page_of

ReviewStatus = Literal["pending", "accepted", "rejected"]


class ReviewNotFound(NotFound):
    code = "review-not-found"
    title = "Review not found"


class ReviewClosed(Conflict):
    code = "review-closed"
    title = "Review already decided"


class MergeRefused(Conflict):
    code = "merge-refused"
    title = "The identity rules refuse this merge"


def list_reviews(
    uow: UnitOfWork, actor: Principal, *, status: ReviewStatus | None, cursor: str | None, limit: int
) -> Page[ReviewOut]:
    actor.require(Scope.CUSTOMERS_READ)
    rows = repo.reviews(uow.conn, status=status, after=decode_cursor(cursor), limit=limit)
    return page_of([_review_out(r) for r in rows], limit, lambda r: r.id)


def accept(uow: UnitOfWork, actor: Principal, review_id: str) -> ReviewOut:
    """Merge the pair (the rules' limits and earlier splits still apply; trust does not: a
    person decided). The journal keeps the matcher's evidence and who accepted it."""
    actor.require(Scope.ADMIN)
    review = _pending(uow, review_id)
    evidence = {**orjson.loads(review.evidence), "review_id": review.id, "accepted_by": actor.id}
    (outcome,) = identity.merge_profiles(
        uow,
        identity.load_rules(uow),
        [identity.MergeRequest(review.left_id, review.right_id, evidence)],
        source=actor.id,
        check_trust=False,
    )
    if outcome.refusal is not None:
        raise MergeRefused(f"not merged: {outcome.refusal}")
    _decide(uow, actor, review_id, "accepted", outcome.merge_id)
    return _review_out(_get(uow, review_id))


def reject(uow: UnitOfWork, actor: Principal, review_id: str) -> ReviewOut:
    """Different people: the pair is closed and never proposed again."""
    actor.require(Scope.ADMIN)
    _pending(uow, review_id)
    _decide(uow, actor, review_id, "rejected", None)
    return _review_out(_get(uow, review_id))


def _decide(uow: UnitOfWork, actor: Principal, review_id: str, decision: str, merge_id: str | None) -> None:
    if not repo.decide_review(
        uow.conn, review_id, status=decision, by=actor.id, now=clock.now(), merge_id=merge_id
    ):
        raise ReviewClosed(f"review {review_id!r} was decided meanwhile")
    uow.emit(
        IdentityReviewDecided(
            review_id=review_id,
            decision="accepted" if decision == "accepted" else "rejected",
            merge_id=merge_id,
            by=actor.id,
        )
    )


def _get(uow: UnitOfWork, review_id: str) -> repo.AnyRow:
    row = repo.review(uow.conn, review_id)
    if row is None:
        raise ReviewNotFound(f"no review {review_id!r}")
    return row


def _pending(uow: UnitOfWork, review_id: str) -> repo.AnyRow:
    row = _get(uow, review_id)
    if row.status != "pending":
        raise ReviewClosed(f"review {review_id!r} was already {row.status}")
    return row


def _review_out(row: repo.AnyRow) -> ReviewOut:
    return ReviewOut(
        id=row.id,
        left_id=row.left_id,
        right_id=row.right_id,
        probability=row.probability,
        weight=row.weight,
        evidence=orjson.loads(row.evidence),
        source=row.source,
        origin=row.origin,
        status=row.status,
        created_at=row.created_at,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        merge_id=row.merge_id,
    )


# --- export ---------------------------------------------------------------------------------------


def export_matches(uow: UnitOfWork, actor: Principal) -> Iterator[MatchRecord]:
    """Every merge ever applied (deterministic or probabilistic; undone ones say so) and every
    proposal, with record ids, score and decision. Streamed from the database."""
    actor.require(Scope.CUSTOMERS_READ)
    for m in repo.all_merges(uow.conn):
        evidence = orjson.loads(m.evidence)
        probabilistic = evidence.get("method") == "probabilistic"
        yield MatchRecord(
            kind="merge",
            id=m.id,
            left_id=m.merged_id,
            right_id=m.survivor_id,
            method="probabilistic" if probabilistic else "deterministic",
            probability=evidence.get("probability") if probabilistic else None,
            weight=evidence.get("weight") if probabilistic else None,
            decision="undone" if m.undone_at is not None else "merged",
            source=m.source,
            created_at=m.created_at,
        )
    for r in repo.all_reviews(uow.conn):
        yield MatchRecord(
            kind="review",
            id=r.id,
            left_id=r.left_id,
            right_id=r.right_id,
            method="probabilistic",
            probability=r.probability,
            weight=r.weight,
            decision=r.status,
            source=r.source,
            created_at=r.created_at,
        )
