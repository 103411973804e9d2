"""Windowed segments age: "ordered in the last 90 days" loses a member on day 91 with no event
to trigger it. This job re-evaluates every segment with a ``within_days`` condition in full, one
transaction per segment, as of ``clock.now()`` (so a test moves time with a fixed clock)."""

from __future__ import annotations

from dataclasses import dataclass

from omnicommerce.customers.segments import service
from omnicommerce.customers.segments.domain import SegmentNotFound
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database, transaction
from omnicommerce.platform.scheduler import periodic


@dataclass(frozen=True, slots=True)
class RefreshResult:
    segments: int
    added: int
    removed: int


def refresh_windowed_segments(db: Database) -> RefreshResult:
    with db.uow(readonly=True) as uow:
        segment_ids = service.windowed_segment_ids(uow)
    added = removed = 0
    for segment_id in segment_ids:
        try:
            with transaction(db) as uow:
                changes = service.evaluate_segment(uow, segment_id)
        except SegmentNotFound:
            continue  # deleted since it was listed
        added += len(changes.added)
        removed += len(changes.removed)
    return RefreshResult(len(segment_ids), added, removed)


@periodic("customers.segments-refresh", every="segments_refresh_seconds")
def scheduled_refresh(db: Database, settings: Settings) -> str:
    """Re-evaluate segments with a time window, so members age out without an event of theirs."""
    result = refresh_windowed_segments(db)
    return f"windowed segments {result.segments}: members added {result.added}, removed {result.removed}"
