"""Segment use cases. Never commits: the entrypoint (route, subscriber, job) does.

Membership is evaluated in SQL: in full (one ``INSERT … SELECT`` and one ``DELETE … NOT IN`` per
segment) when a segment is created or its rules change, and for the affected profiles only
(one statement for all segments) when their events, orders or merges arrive. Every membership
change is written with its ``segment.member_added`` / ``segment.member_removed`` event.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from omnicommerce.customers import repository as customers_repo
from omnicommerce.customers.segments import repository as repo
from omnicommerce.customers.segments.domain import (
    Rule,
    SegmentNameTaken,
    SegmentNotFound,
    is_windowed,
    parse_rule,
)
from omnicommerce.customers.segments.events import (
    SegmentCreated,
    SegmentDeleted,
    SegmentMemberAdded,
    SegmentMemberRemoved,
    SegmentUpdated,
)
from omnicommerce.customers.segments.schemas import (
    CustomerSegment,
    Segment,
    SegmentCreate,
    SegmentMember,
    SegmentPreview,
    SegmentUpdate,
)
from omnicommerce.customers.subscribers import TRACKED
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.ids import new_id

# A rule may name a published event type ("order.placed"); the timeline stores its track name.
EVENT_ALIASES: Mapping[str, str] = TRACKED


@dataclass(frozen=True, slots=True)
class MembershipChanges:
    added: list[tuple[str, str]]  # (segment id, customer id)
    removed: list[tuple[str, str]]


def preview(uow: UnitOfWork, rules: dict[str, Any], *, sample_size: int) -> SegmentPreview:
    """How many profiles a rule would hold now, and some of them; nothing is written."""
    rule = parse_rule(rules)
    predicate = repo.condition(rule, now=clock.now(), aliases=EVENT_ALIASES, dialect=uow.dialect)
    return SegmentPreview(
        size=repo.count_matching(uow.conn, predicate),
        sample=repo.sample_matching(uow.conn, predicate, sample_size),
        windowed=is_windowed(rule),
    )


def create_segment(uow: UnitOfWork, actor: Principal, cmd: SegmentCreate) -> Segment:
    rule = parse_rule(cmd.rules)
    now = clock.now()
    segment_id = new_id("seg")
    inserted = repo.insert_segment(
        uow.conn,
        {
            "id": segment_id,
            "name": cmd.name,
            "description": cmd.description,
            "rules": _dump(cmd.rules),
            "windowed": is_windowed(rule),
            "version": 1,
            "created_by": actor.id,
            "created_at": now,
            "updated_at": now,
            "evaluated_at": now,
        },
    )
    if not inserted:
        raise SegmentNameTaken(f"a segment named {cmd.name!r} already exists; choose another name")
    added, _ = _evaluate(uow, segment_id, rule)
    uow.emit(SegmentCreated(segment_id=segment_id, size=len(added)))
    return get_segment(uow, segment_id)


def update_segment(uow: UnitOfWork, actor: Principal, segment_id: str, cmd: SegmentUpdate) -> Segment:
    """Replace name, description and rules, then re-evaluate every profile against the new rules."""
    rule = parse_rule(cmd.rules)
    current = repo.get_segment(uow.conn, segment_id, lock=True)  # one rules change at a time
    if current is None:
        raise SegmentNotFound(f"no segment {segment_id!r}")
    changed = {
        "name": cmd.name,
        "description": cmd.description,
        "rules": _dump(cmd.rules),
        "windowed": is_windowed(rule),
        "version": current.version + 1,
        "updated_at": clock.now(),
    }
    if not repo.update_segment(uow.conn, segment_id, changed):
        raise SegmentNameTaken(f"a segment named {cmd.name!r} already exists; choose another name")
    _evaluate(uow, segment_id, rule)
    updated = get_segment(uow, segment_id)
    uow.emit(SegmentUpdated(segment_id=segment_id, segment_version=updated.version, size=updated.size))
    return updated


def delete_segment(uow: UnitOfWork, actor: Principal, segment_id: str) -> None:
    size = repo.delete_segment(uow.conn, segment_id)
    if size is None:
        raise SegmentNotFound(f"no segment {segment_id!r}")
    uow.emit(SegmentDeleted(segment_id=segment_id, size=size))


def get_segment(uow: UnitOfWork, segment_id: str) -> Segment:
    row = repo.get_segment(uow.conn, segment_id)
    if row is None:
        raise SegmentNotFound(f"no segment {segment_id!r}")
    return _to_segment(row)


def list_segments(uow: UnitOfWork, *, after: str | None, limit: int) -> list[Segment]:
    return [_to_segment(r) for r in repo.list_segments(uow.conn, after=after, limit=limit)]


def list_members(uow: UnitOfWork, segment_id: str, *, after: str | None, limit: int) -> list[SegmentMember]:
    get_segment(uow, segment_id)  # 404 for an unknown segment, not an empty page
    rows = repo.members_page(uow.conn, segment_id, after=after, limit=limit)
    return [SegmentMember(customer_id=r.customer_id, added_at=r.added_at) for r in rows]


def segments_of(uow: UnitOfWork, customer_id: str) -> list[CustomerSegment]:
    """The segments a profile belongs to, by name. A merged profile answers with its root's
    segments (the person is one customer); the caller checks the reader may see the profile."""
    rows = repo.segments_of(uow.conn, root_of(uow, customer_id))
    return [CustomerSegment(id=r.id, name=r.name, added_at=r.added_at) for r in rows]


def root_of(uow: UnitOfWork, customer_id: str) -> str:
    """The profile ``customer_id`` was merged into (itself when it is a root)."""
    return customers_repo.roots_of(uow.conn, [customer_id]).get(customer_id, customer_id)


def evaluate_segment(uow: UnitOfWork, segment_id: str) -> MembershipChanges:
    """Full re-evaluation of one segment as of now (the windowed job's unit of work)."""
    row = repo.get_segment(uow.conn, segment_id, lock=True)
    if row is None:
        raise SegmentNotFound(f"no segment {segment_id!r}")
    added, removed = _evaluate(uow, segment_id, _parsed(row.rules))
    return MembershipChanges([(segment_id, c) for c in added], [(segment_id, c) for c in removed])


def windowed_segment_ids(uow: UnitOfWork) -> list[str]:
    return repo.windowed_ids(uow.conn)


def reevaluate_customers(uow: UnitOfWork, customer_ids: Iterable[str]) -> MembershipChanges:
    """Bring these profiles' (and their roots') memberships in every segment up to date. A
    profile that is no longer a root (merged away) or no longer exists leaves all its segments."""
    given = {c for c in customer_ids if c}
    rows = repo.all_rules(uow.conn) if given else []
    if not rows:
        return MembershipChanges([], [])
    ids = given | set(customers_repo.roots_of(uow.conn, given).values())  # and where they were merged into
    now = clock.now()
    predicates = {
        r.id: repo.condition(_parsed(r.rules), now=now, aliases=EVENT_ALIASES, dialect=uow.dialect)
        for r in rows
    }
    matched = repo.evaluate_profiles(uow.conn, predicates, ids)
    wanted = {(s, c) for c, segs in matched.items() for s in segs}
    current = repo.memberships(uow.conn, ids)
    removed = sorted(repo.delete_members(uow.conn, current - wanted))
    joining = wanted - current
    if joining:  # a segment deleted since its rules were read takes no members
        alive = repo.hold_segments(uow.conn, {s for s, _ in joining})
        joining = {(s, c) for s, c in joining if s in alive}
    added = sorted(repo.insert_members(uow.conn, joining, now))
    _emit_changes(uow, added, removed)
    return MembershipChanges(added, removed)


def _evaluate(uow: UnitOfWork, segment_id: str, rule: Rule) -> tuple[list[str], list[str]]:
    now = clock.now()
    predicate = repo.condition(rule, now=now, aliases=EVENT_ALIASES, dialect=uow.dialect)
    removed = repo.remove_unmatched_members(uow.conn, segment_id, predicate)
    added = repo.add_matching_members(uow.conn, segment_id, predicate, now)
    repo.set_evaluated(uow.conn, segment_id, now)
    _emit_changes(uow, [(segment_id, c) for c in added], [(segment_id, c) for c in removed])
    return added, removed


def _emit_changes(
    uow: UnitOfWork, added: Collection[tuple[str, str]], removed: Collection[tuple[str, str]]
) -> None:
    for segment_id, customer_id in removed:
        uow.emit(SegmentMemberRemoved(segment_id=segment_id, customer_id=customer_id))
    for segment_id, customer_id in added:
        uow.emit(SegmentMemberAdded(segment_id=segment_id, customer_id=customer_id))


@lru_cache(maxsize=256)
def _parsed(stored: str) -> Rule:
    """Stored rules were validated when saved; parsed once per distinct document."""
    return parse_rule(orjson.loads(stored))


def _dump(rules: dict[str, Any]) -> str:
    return orjson.dumps(rules, option=orjson.OPT_SORT_KEYS).decode()


def _to_segment(row: Any) -> Segment:
    return Segment(
        id=row.id,
        name=row.name,
        description=row.description,
        rules=orjson.loads(row.rules),
        windowed=row.windowed,
        version=row.version,
        size=row.size,
        created_at=row.created_at,
        updated_at=row.updated_at,
        evaluated_at=row.evaluated_at,
    )
