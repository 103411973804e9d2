"""Segment SQL: rules compiled to one boolean expression over a root profile, membership written
set-based (``INSERT … SELECT`` and ``DELETE … NOT IN``), and the segment rows themselves.

A rule reads the customers context's tables: computed traits are kept per account, so a trait
sums the profile and the accounts merged into it; events already point at their root profile.
Membership writes are conflict-safe and ``RETURNING`` the rows they changed: the events emitted
are exactly the changes made, even when an incremental and a full evaluation overlap.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    Text,
    and_,
    case,
    cast,
    delete,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from omnicommerce.customers.models import (
    customer_channels,
    customer_events,
    customer_order_stats,
    customer_traits,
    customers,
)
from omnicommerce.customers.repository import AnyRow
from omnicommerce.customers.segments.domain import (
    EventCondition,
    Group,
    Not,
    Rule,
    TraitCondition,
    event_names,
    property_name,
    window_start,
)
from omnicommerce.customers.segments.models import segment_members, segments
from omnicommerce.platform.db import UTCDateTime, conflict_insert

profile = customers.alias("profile")  # the root profile a rule is evaluated for
account = customers.alias("account")  # one of its accounts (itself, or merged into it)

_OPS: Mapping[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


# --- rules as SQL --------------------------------------------------------------------------------


def condition(rule: Rule, *, now: datetime, aliases: Mapping[str, str], dialect: str) -> ColumnElement[bool]:
    """``rule`` as a predicate on :data:`profile` (correlated subqueries, no per-customer loop)."""
    if isinstance(rule, Group):
        parts = [condition(r, now=now, aliases=aliases, dialect=dialect) for r in rule.rules]
        return and_(*parts) if rule.kind == "all" else or_(*parts)
    if isinstance(rule, Not):
        return not_(condition(rule.rule, now=now, aliases=aliases, dialect=dialect))
    if isinstance(rule, TraitCondition):
        return _trait(rule)
    return _event(rule, now, aliases, dialect)


def _over_accounts(
    table: Table, column: ColumnElement[Any], *where: ColumnElement[bool]
) -> ColumnElement[Any]:
    """The sum of ``column`` over the profile's own row and those of the accounts merged into it:
    two correlated sums, each on an index (an ``OR`` of the two would scan)."""
    own = select(func.coalesce(func.sum(column), 0)).where(table.c.customer_id == profile.c.id, *where)
    merged = (
        select(func.coalesce(func.sum(column), 0))
        .select_from(table.join(account, account.c.id == table.c.customer_id))
        .where(account.c.merged_into == profile.c.id, *where)
    )
    return own.scalar_subquery() + merged.scalar_subquery()


def _trait(rule: TraitCondition) -> ColumnElement[bool]:
    if rule.trait == "channels":
        ch = customer_channels.c
        own = select(ch.channel).where(ch.customer_id == profile.c.id, ch.channel == rule.value)
        merged = (
            select(ch.channel)
            .select_from(customer_channels.join(account, account.c.id == ch.customer_id))
            .where(account.c.merged_into == profile.c.id, ch.channel == rule.value)
        )
        return or_(exists(own), exists(merged))
    if rule.trait == "event_count":
        total = _over_accounts(customer_traits, customer_traits.c.event_count)
    else:
        stats = customer_order_stats.c
        column = stats.order_count if rule.trait == "order_count" else stats.lifetime_value
        currency = [] if rule.currency is None else [stats.currency == rule.currency]
        total = _over_accounts(customer_order_stats, column, *currency)
    return _OPS[rule.op](total, rule.value)


def _event_field(key: str, dialect: str) -> ColumnElement[Any]:
    """A filterable column, or an event property as text (``domain.property_text``: integers
    as decimal text on both databases)."""
    name = property_name(key)
    if name is None:
        column: ColumnElement[Any] = getattr(customer_events.c, key)
        return column
    payload = customer_events.c.payload
    if dialect == "postgresql":
        properties = cast(payload, JSONB).op("->")(literal("properties", Text))
        text = properties.op("->>", return_type=Text)(literal(name, Text))
        kind = func.jsonb_typeof(properties.op("->")(literal(name, Text)))
        integer = and_(kind == "number", text.regexp_match("^-?[0-9]+$"))
        return case((or_(kind == "string", integer), text), else_=None)
    path = f'$.properties."{name}"'  # name is [A-Za-z0-9_]: nothing to escape
    kind = func.json_type(payload, path)
    return case((kind.in_(("text", "integer")), cast(func.json_extract(payload, path), Text)), else_=None)


def _event(
    rule: EventCondition, now: datetime, aliases: Mapping[str, str], dialect: str
) -> ColumnElement[bool]:
    ev = customer_events.c
    where = [ev.customer_id == profile.c.id]
    names = event_names(rule, aliases)
    if names is not None:
        where.append(ev.name.in_(names))
    where += [_event_field(key, dialect).in_(values) for key, values in rule.where]
    since = window_start(rule, now)
    if since is not None:
        where.append(ev.timestamp >= since)
    # "at least one" and "none" are the usual questions: EXISTS stops at the first row.
    if (rule.op, rule.count) in ((">=", 1), (">", 0), ("!=", 0)):
        return exists(select(ev.id).where(*where))
    if (rule.op, rule.count) in (("=", 0), ("<", 1), ("<=", 0)):
        return not_(exists(select(ev.id).where(*where)))
    if (rule.op, rule.count) == (">=", 0):
        return true()
    if (rule.op, rule.count) == ("<", 0):
        return false()
    counted = select(func.count()).select_from(customer_events).where(*where).scalar_subquery()
    return _OPS[rule.op](counted, rule.count)


def matching(predicate: ColumnElement[bool]) -> Select[Any]:
    """The ids of the root profiles the predicate holds for."""
    return select(profile.c.id).where(profile.c.merged_into.is_(None), predicate)


def count_matching(conn: Connection, predicate: ColumnElement[bool]) -> int:
    return int(conn.execute(select(func.count()).select_from(matching(predicate).subquery())).scalar_one())


def sample_matching(conn: Connection, predicate: ColumnElement[bool], limit: int) -> list[str]:
    if limit == 0:
        return []
    return list(conn.execute(matching(predicate).order_by(profile.c.id).limit(limit)).scalars())


def evaluate_profiles(
    conn: Connection, predicates: Mapping[str, ColumnElement[bool]], customer_ids: Collection[str]
) -> dict[str, set[str]]:
    """For each of these profiles that is a root: the segments (of ``predicates``) it matches.
    One statement for any number of profiles and segments."""
    if not predicates or not customer_ids:
        return {}
    seg_ids = list(predicates)
    columns = [case((predicates[s], 1), else_=0).label(f"m{i}") for i, s in enumerate(seg_ids)]
    rows = conn.execute(
        select(profile.c.id, *columns).where(
            profile.c.id.in_(sorted(customer_ids)), profile.c.merged_into.is_(None)
        )
    )
    return {row[0]: {s for i, s in enumerate(seg_ids) if row[i + 1]} for row in rows}


# --- membership ----------------------------------------------------------------------------------


def add_matching_members(
    conn: Connection, segment_id: str, predicate: ColumnElement[bool], now: datetime
) -> list[str]:
    """Insert every matching root profile not yet a member; returns the ids added."""
    sm = segment_members.c
    not_member = ~exists(
        select(sm.customer_id).where(sm.segment_id == segment_id, sm.customer_id == profile.c.id)
    )
    source = select(
        literal(segment_id).label("segment_id"),
        profile.c.id,
        literal(now, UTCDateTime()).label("added_at"),
    ).where(profile.c.merged_into.is_(None), predicate, not_member)
    stmt = (
        conflict_insert(segment_members, conn.dialect.name)
        .from_select(["segment_id", "customer_id", "added_at"], source)
        .on_conflict_do_nothing()
        .returning(sm.customer_id)
    )
    return sorted(conn.execute(stmt).scalars())


def remove_unmatched_members(conn: Connection, segment_id: str, predicate: ColumnElement[bool]) -> list[str]:
    """Delete the members the predicate no longer holds for; returns the ids removed."""
    sm = segment_members.c
    stmt = (
        delete(segment_members)
        .where(sm.segment_id == segment_id, sm.customer_id.not_in(matching(predicate)))
        .returning(sm.customer_id)
    )
    return sorted(conn.execute(stmt).scalars())


def memberships(conn: Connection, customer_ids: Collection[str]) -> set[tuple[str, str]]:
    """(segment id, customer id) of these profiles' current memberships."""
    sm = segment_members.c
    rows = conn.execute(select(sm.segment_id, sm.customer_id).where(sm.customer_id.in_(sorted(customer_ids))))
    return {(r.segment_id, r.customer_id) for r in rows}


def insert_members(
    conn: Connection, pairs: Collection[tuple[str, str]], now: datetime
) -> set[tuple[str, str]]:
    """Add these (segment, customer) memberships; returns those this statement added (a
    concurrent evaluation may have added some first)."""
    if not pairs:
        return set()
    sm = segment_members.c
    rows = [{"segment_id": s, "customer_id": c, "added_at": now} for s, c in sorted(pairs)]
    stmt = (
        conflict_insert(segment_members, conn.dialect.name)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(sm.segment_id, sm.customer_id)
    )
    return {(r.segment_id, r.customer_id) for r in conn.execute(stmt)}


def delete_members(conn: Connection, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
    if not pairs:
        return set()
    sm = segment_members.c
    stmt = (
        delete(segment_members)
        .where(tuple_(sm.segment_id, sm.customer_id).in_(sorted(pairs)))
        .returning(sm.segment_id, sm.customer_id)
    )
    return {(r.segment_id, r.customer_id) for r in conn.execute(stmt)}


def members_page(conn: Connection, segment_id: str, *, after: str | None, limit: int) -> list[AnyRow]:
    sm = segment_members.c
    stmt = select(sm.customer_id, sm.added_at).where(sm.segment_id == segment_id)
    if after is not None:
        stmt = stmt.where(sm.customer_id > after)
    return list(conn.execute(stmt.order_by(sm.customer_id).limit(limit)))


def segments_of(conn: Connection, customer_id: str) -> list[AnyRow]:
    sm, s = segment_members.c, segments.c
    return list(
        conn.execute(
            select(s.id, s.name, sm.added_at)
            .select_from(segment_members.join(segments, segments.c.id == sm.segment_id))
            .where(sm.customer_id == customer_id)
            .order_by(s.name)
        )
    )


# --- segments ------------------------------------------------------------------------------------


def _size() -> Any:
    sm = segment_members.c
    return (
        select(func.count())
        .select_from(segment_members)
        .where(sm.segment_id == segments.c.id)
        .scalar_subquery()
        .label("size")
    )


def insert_segment(conn: Connection, values: Mapping[str, Any]) -> bool:
    """False when the name is taken (no exception, so the transaction stays usable)."""
    stmt = (
        conflict_insert(segments, conn.dialect.name)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(segments.c.id)
    )
    return conn.execute(stmt).first() is not None


def get_segment(conn: Connection, segment_id: str, *, lock: bool = False) -> AnyRow | None:
    """With ``lock`` (PostgreSQL): one full evaluation or rules change of a segment at a time.
    ``FOR NO KEY UPDATE``, so incremental evaluations, which key-share the row before adding
    members (:func:`hold_segments`), are not blocked by it (nor it by them: no deadlock)."""
    stmt = select(segments, _size()).where(segments.c.id == segment_id)
    if lock and conn.dialect.name == "postgresql":
        stmt = select(segments).where(segments.c.id == segment_id).with_for_update(key_share=True)
    return conn.execute(stmt).first()


def hold_segments(conn: Connection, segment_ids: Collection[str]) -> set[str]:
    """Those of these segments that still exist, key-share locked until commit on PostgreSQL (in
    id order) before members are added: a concurrent delete or rename then waits for this
    transaction, or this one waits for it *before* writing a member row another transaction
    might wait on. On SQLite (one writer at a time) a plain read."""
    stmt = select(segments.c.id).where(segments.c.id.in_(sorted(segment_ids))).order_by(segments.c.id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(read=True, key_share=True)
    return set(conn.execute(stmt).scalars())


def list_segments(conn: Connection, *, after: str | None, limit: int) -> list[AnyRow]:
    stmt = select(segments, _size())
    if after is not None:
        stmt = stmt.where(segments.c.id > after)
    return list(conn.execute(stmt.order_by(segments.c.id).limit(limit)))


def all_rules(conn: Connection) -> list[AnyRow]:
    return list(conn.execute(select(segments.c.id, segments.c.rules).order_by(segments.c.id)))


def windowed_ids(conn: Connection) -> list[str]:
    s = segments.c
    return list(conn.execute(select(s.id).where(s.windowed.is_(True)).order_by(s.id)).scalars())


def update_segment(conn: Connection, segment_id: str, values: Mapping[str, Any]) -> bool:
    """False when the new name belongs to another segment (checked inside a savepoint, so a
    concurrent rename loses cleanly instead of failing the transaction)."""
    try:
        with conn.begin_nested():
            conn.execute(update(segments).where(segments.c.id == segment_id).values(**values))
    except IntegrityError:
        return False
    return True


def set_evaluated(conn: Connection, segment_id: str, now: datetime) -> None:
    conn.execute(update(segments).where(segments.c.id == segment_id).values(evaluated_at=now))


def delete_segment(conn: Connection, segment_id: str) -> int | None:
    """Delete the segment and its memberships; returns how many members it had (None: no such segment)."""
    sm = segment_members.c
    removed = conn.execute(delete(segment_members).where(sm.segment_id == segment_id)).rowcount
    deleted = conn.execute(delete(segments).where(segments.c.id == segment_id)).rowcount
    return removed if deleted else None
