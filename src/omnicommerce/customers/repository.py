"""The customers context's SQL (Core). Services call these; nothing else touches the tables."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import (
    Row,
    String,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection

from omnicommerce.customers.domain import Identifier
from omnicommerce.customers.models import (
    customer_affinities,
    customer_attributes,
    customer_channels,
    customer_consents,
    customer_custom_traits,
    customer_events,
    customer_identities,
    customer_imports,
    customer_match_keys,
    customer_merges,
    customer_order_stats,
    customer_traits,
    customers,
    identity_reviews,
    identity_rules,
    otp_codes,
    refresh_tokens,
)
from omnicommerce.platform import direct
from omnicommerce.platform.db import DIALECTS, UTCDateTime, conflict_insert
from omnicommerce.platform.refresh_tokens import RefreshTokens

AnyRow: TypeAlias = Row[*tuple[Any, ...]]  # a row of any width (Row[Any] means one column)

IMPORT_CHUNK = 500  # rows per multi-row INSERT: well under SQLite's and PG's parameter limits

_PUBLIC = [c for c in customers.c if c.name != "password_hash"]


def insert_customer(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(customers).values(**values))


def insert_customer_unless_email_taken(conn: Connection, values: Mapping[str, Any]) -> str | None:
    """``INSERT … ON CONFLICT (email) DO NOTHING RETURNING id``: the new id, or None when the
    (normalised) email already belongs to a customer. Any other conflict still raises."""
    return direct.execute(conn, _INSERT_UNLESS_EMAIL_TAKEN[conn.dialect.name], dict(values)).scalar()


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


def fill_names(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Set first/last names where the profile has none (``b_id``, ``b_first``, ``b_last``), in id
    order. A profile whose names are already set is not written, so not locked: the identify calls
    of a known person do not queue behind every request that holds that profile."""
    if rows:
        conn.execute(_FILL_NAMES, sorted(rows, key=lambda r: str(r["b_id"])))


_FIRST, _LAST = bindparam("b_first", type_=String), bindparam("b_last", type_=String)
_FILL_NAMES = (
    update(customers)
    .where(
        customers.c.id == bindparam("b_id"),
        or_(
            and_(customers.c.first_name.is_(None), _FIRST.is_not(None)),
            and_(customers.c.last_name.is_(None), _LAST.is_not(None)),
        ),
    )
    .values(
        first_name=func.coalesce(customers.c.first_name, _FIRST),
        last_name=func.coalesce(customers.c.last_name, _LAST),
    )
)


def set_password_hash(conn: Connection, customer_id: str, password_hash: str) -> None:
    conn.execute(update(customers).where(customers.c.id == customer_id).values(password_hash=password_hash))


# --- refresh tokens --------------------------------------------------------------------------

REFRESH_TOKENS = RefreshTokens(refresh_tokens, id_prefix="rft", secret_prefix="omr_")


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


# --- identity graph ------------------------------------------------------------------------------


def identity_owners(conn: Connection, idents: Collection[Identifier]) -> dict[Identifier, AnyRow]:
    """Who owns each identifier now: rows with ``customer_id`` and ``origin_customer_id``.

    ``customer_id`` is read through the profile's ``merged_into``, so an identifier linked to a
    profile while a concurrent transaction merged that profile away still answers with the root."""
    if not idents:
        return {}
    rows = conn.execute(_IDENTITY_OWNERS, {"pairs": [(i.type, i.value) for i in idents]})
    return {Identifier(r.type, r.value): r for r in rows}


_IDENTITY_OWNERS = (
    select(
        customer_identities.c.type,
        customer_identities.c.value,
        func.coalesce(customers.c.merged_into, customer_identities.c.customer_id).label("customer_id"),
        customer_identities.c.origin_customer_id,
    )
    .join(customers, customers.c.id == customer_identities.c.customer_id)
    .where(
        tuple_(customer_identities.c.type, customer_identities.c.value).in_(
            bindparam("pairs", expanding=True)
        )
    )
)


def customers_by_contact(
    conn: Connection, emails: Collection[str], phones: Collection[str], ids: Collection[str] = ()
) -> list[AnyRow]:
    """Profiles whose account row carries one of these contacts or ids (made by sign-up, checkout
    or the POS before the identity graph saw them)."""
    c = customers.c
    conds = [
        col.in_(list(values)) for col, values in ((c.email, emails), (c.phone, phones), (c.id, ids)) if values
    ]
    if not conds:
        return []
    return list(conn.execute(select(c.id, c.email, c.phone, c.merged_into).where(or_(*conds))))


def insert_identities(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[Identifier]:
    """``INSERT … ON CONFLICT (type, value) DO NOTHING``: the identifiers this call claimed.
    Rows in (type, value) order, the order every claim takes its index entries in."""
    if not rows:
        return set()
    stmt = _INSERT_IDENTITIES[conn.dialect.name]
    ordered = sorted(rows, key=lambda r: (str(r["type"]), str(r["value"])))
    return {Identifier(r.type, r.value) for r in conn.execute(stmt, ordered)}


_INSERT_IDENTITIES = {
    d: conflict_insert(customer_identities, d)
    .on_conflict_do_nothing(index_elements=["type", "value"])
    .returning(customer_identities.c.type, customer_identities.c.value)
    for d in DIALECTS
}


def lock_identifiers(conn: Connection, idents: Collection[Identifier]) -> None:
    """On PostgreSQL, take a transaction-scoped advisory lock per identifier, all in one statement
    and in one global order (their keys ascending), before a request claims any of them.

    Two requests about to claim the same new identifiers then meet here, in the same order, and
    one waits for the other's commit; without it each claimed in its own event order and two
    batches naming the same two new people the other way round deadlocked (each waiting for
    the other's uncommitted INSERT), until PostgreSQL killed one after a second. SQLite runs one
    writer at a time: nothing to do."""
    if conn.dialect.name != "postgresql" or not idents:
        return
    conn.execute(_LOCK_KEYS, {"keys": identifier_lock_keys(idents)})


def identifier_lock_keys(idents: Collection[Identifier]) -> list[int]:
    """The advisory lock keys of these identifiers, ascending (the global lock order): a stable
    signed 64-bit hash of type and value (a collision only serialises two unrelated claims)."""
    return sorted(
        {
            int.from_bytes(
                hashlib.blake2b(f"{i.type}\x00{i.value}".encode(), digest_size=8).digest(), "big", signed=True
            )
            for i in idents
        }
    )


# unnest yields the keys in array order, so the locks are taken in that (ascending) order.
_LOCK_KEYS = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")


def identity_counts(conn: Connection, customer_ids: Collection[str]) -> dict[str, dict[str, int]]:
    ids = customer_identities.c
    wanted = sorted(customer_ids)
    counts: dict[str, dict[str, int]] = {cid: {} for cid in wanted}
    for start in range(0, len(wanted), IMPORT_CHUNK):
        rows = conn.execute(
            select(ids.customer_id, ids.type, func.count())
            .where(ids.customer_id.in_(wanted[start : start + IMPORT_CHUNK]))
            .group_by(ids.customer_id, ids.type)
        )
        for cid, itype, n in rows:
            counts[cid][itype] = n
    return counts


def identities_of(conn: Connection, customer_id: str) -> list[AnyRow]:
    ids = customer_identities.c
    return list(
        conn.execute(
            select(customer_identities).where(ids.customer_id == customer_id).order_by(ids.created_at)
        )
    )


def insert_profile(conn: Connection, values: Mapping[str, Any]) -> bool:
    """A new profile row unless its email or phone already names one (then False)."""
    return conn.execute(_INSERT_PROFILE[conn.dialect.name], dict(values)).scalar() is not None


_INSERT_PROFILE = {
    d: conflict_insert(customers, d).on_conflict_do_nothing().returning(customers.c.id) for d in DIALECTS
}


def insert_profiles(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """New profile rows, each unless its email or phone already names one: the ids inserted."""
    if not rows:
        return set()
    return set(conn.execute(_INSERT_PROFILE[conn.dialect.name], [dict(r) for r in rows]).scalars())


def delete_profile(conn: Connection, customer_id: str) -> None:
    """Remove a profile made a moment ago in this transaction, with the identifiers it claimed
    (left behind, they would point at no profile and block every later claim of them)."""
    conn.execute(delete(customer_identities).where(customer_identities.c.customer_id == customer_id))
    conn.execute(delete(customers).where(customers.c.id == customer_id))


def roots_of(conn: Connection, customer_ids: Collection[str]) -> dict[str, str]:
    """Each existing profile's surviving root (itself unless merged)."""
    c = customers.c
    ids = sorted(customer_ids)
    roots: dict[str, str] = {}
    for start in range(0, len(ids), IMPORT_CHUNK):
        rows = conn.execute(select(c.id, c.merged_into).where(c.id.in_(ids[start : start + IMPORT_CHUNK])))
        roots |= {r.id: r.merged_into or r.id for r in rows}
    return roots


def lock_roots(conn: Connection, customer_ids: Sequence[str]) -> set[str]:
    """Lock the profiles in id order (no deadlock between two merges) and return those that
    are still roots: a concurrent merge may have folded one away since it was read."""
    c = customers.c
    ids = sorted(customer_ids)
    held: set[str] = set()
    for start in range(0, len(ids), IMPORT_CHUNK):  # ascending chunks keep the global id order
        stmt = select(c.id, c.merged_into).where(c.id.in_(ids[start : start + IMPORT_CHUNK])).order_by(c.id)
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        held |= {r.id for r in conn.execute(stmt) if r.merged_into is None}
    return held


def hold_roots(conn: Connection, customer_ids: Collection[str]) -> dict[str, str]:
    """Each profile's root, with the rows locked ``FOR KEY SHARE`` until commit on PostgreSQL: a
    concurrent merge (which locks its profiles ``FOR UPDATE``) then waits, and moves what this
    transaction attaches to them once it is visible; an ordinary update of the row (a name filled
    in) does not wait. (SQLite runs one writer at a time; there it is a plain read.)"""
    c = customers.c
    stmt = select(c.id, c.merged_into).where(c.id.in_(sorted(customer_ids))).order_by(c.id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(read=True, key_share=True)
    return {r.id: r.merged_into or r.id for r in conn.execute(stmt)}


def fold_profiles(conn: Connection, pairs: Sequence[tuple[str, str]]) -> None:
    """Move everything of each merged profile (and what was merged into it) onto its survivor,
    pairs in order, as three executemany statements (a later pair sees the earlier ones)."""
    params = [{"b_survivor": s, "b_merged": m} for s, m in pairs]
    for start in range(0, len(params), IMPORT_CHUNK):
        chunk = params[start : start + IMPORT_CHUNK]
        conn.execute(_FOLD_PROFILES, chunk)
        conn.execute(_FOLD_IDENTITIES, chunk)
        conn.execute(_FOLD_EVENTS, chunk)


_FOLD_PROFILES = (
    update(customers)
    .where(or_(customers.c.id == bindparam("b_merged"), customers.c.merged_into == bindparam("b_merged")))
    .values(merged_into=bindparam("b_survivor"))
)
_FOLD_IDENTITIES = (
    update(customer_identities)
    .where(customer_identities.c.customer_id == bindparam("b_merged"))
    .values(customer_id=bindparam("b_survivor"))
)
_FOLD_EVENTS = (
    update(customer_events)
    .where(customer_events.c.customer_id == bindparam("b_merged"))
    .values(customer_id=bindparam("b_survivor"))
)


def split_profile(
    conn: Connection, *, root_id: str, customer_id: str, members: Collection[str]
) -> tuple[int, int]:
    """Give ``customer_id`` back what came from ``members`` (itself and the profiles merged into
    it): identities and events by their origin. Returns (identities, events) moved."""
    origins = list(members)
    conn.execute(update(customers).where(customers.c.id == customer_id).values(merged_into=None))
    others = [m for m in origins if m != customer_id]
    if others:
        conn.execute(update(customers).where(customers.c.id.in_(others)).values(merged_into=customer_id))
    ids = customer_identities.c
    moved_ids = conn.execute(
        update(customer_identities)
        .where(ids.customer_id == root_id, ids.origin_customer_id.in_(origins))
        .values(customer_id=customer_id)
    ).rowcount
    ev = customer_events.c
    moved_events = conn.execute(
        update(customer_events)
        .where(ev.customer_id == root_id, ev.origin_customer_id.in_(origins))
        .values(customer_id=customer_id)
    ).rowcount
    return moved_ids, moved_events


def insert_merges(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    for start in range(0, len(rows), IMPORT_CHUNK):
        conn.execute(insert(customer_merges), list(rows[start : start + IMPORT_CHUNK]))


def undone_pairs(conn: Connection, customer_ids: Collection[str]) -> set[frozenset[str]]:
    """Pairs among these profiles whose merge was undone (an admin said they differ)."""
    m = customer_merges.c
    ids = sorted(customer_ids)
    found: set[frozenset[str]] = set()
    for start in range(0, len(ids), IMPORT_CHUNK):
        chunk = ids[start : start + IMPORT_CHUNK]
        rows = conn.execute(
            select(m.survivor_id, m.merged_id).where(
                m.undone_at.is_not(None), or_(m.survivor_id.in_(chunk), m.merged_id.in_(chunk))
            )
        )
        found |= {frozenset((a, b)) for a, b in rows}
    return found


def active_merge_of(conn: Connection, merged_id: str) -> AnyRow | None:
    m = customer_merges.c
    return conn.execute(
        select(customer_merges).where(m.merged_id == merged_id, m.undone_at.is_(None)).order_by(m.id.desc())
    ).first()


def active_merges_into(conn: Connection, survivor_ids: Collection[str]) -> list[AnyRow]:
    m = customer_merges.c
    return list(
        conn.execute(select(m.merged_id).where(m.survivor_id.in_(list(survivor_ids)), m.undone_at.is_(None)))
    )


def were_split(conn: Connection, a: str, b: str) -> bool:
    """Whether a merge between these two profiles was undone: an admin said they differ."""
    m = customer_merges.c
    pair = or_(and_(m.survivor_id == a, m.merged_id == b), and_(m.survivor_id == b, m.merged_id == a))
    return conn.execute(select(m.id).where(pair, m.undone_at.is_not(None)).limit(1)).first() is not None


def mark_merge_undone(conn: Connection, merge_id: str, *, now: datetime, by: str) -> bool:
    res = conn.execute(
        update(customer_merges)
        .where(customer_merges.c.id == merge_id, customer_merges.c.undone_at.is_(None))
        .values(undone_at=now, undone_by=by)
    )
    return res.rowcount == 1


def merges_touching(conn: Connection, customer_id: str) -> list[AnyRow]:
    m = customer_merges.c
    return list(
        conn.execute(
            select(customer_merges)
            .where(or_(m.survivor_id == customer_id, m.merged_id == customer_id))
            .order_by(m.created_at, m.id)
        )
    )


def merged_members(conn: Connection, root_id: str) -> list[str]:
    return list(conn.execute(select(customers.c.id).where(customers.c.merged_into == root_id)).scalars())


# --- ingested events ------------------------------------------------------------------------------


def seen_message_ids(conn: Connection, message_ids: Collection[str]) -> set[str]:
    return set(conn.execute(_SEEN_MESSAGE_IDS, {"ids": list(message_ids)}).scalars())


_SEEN_MESSAGE_IDS = select(customer_events.c.message_id).where(
    customer_events.c.message_id.in_(bindparam("ids", expanding=True))
)


def insert_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Multi-row ``INSERT … ON CONFLICT (message_id) DO NOTHING``: the message ids stored.

    On PostgreSQL the rows travel as one array per column (``INSERT … SELECT FROM unnest(…)``):
    a short statement the driver parses once, where a ``VALUES`` list of 100 rows is a new
    statement text of 1,300 placeholders to parse on every request."""
    if not rows:
        return set()
    if conn.dialect.name == "postgresql":
        columns = {name: [r[name] for r in rows] for name in _EVENT_COLUMNS}
        return set(conn.execute(_INSERT_EVENTS_UNNEST, columns).scalars())
    return set(conn.execute(_INSERT_EVENTS[conn.dialect.name], list(rows)).scalars())


_EVENT_COLUMNS = [c.name for c in customer_events.c]
_INSERT_EVENTS_UNNEST = text(
    f"INSERT INTO customer_events ({', '.join(_EVENT_COLUMNS)}) "
    "SELECT * FROM unnest("
    + ", ".join(
        f"CAST(:{c.name} AS {'timestamptz' if isinstance(c.type, UTCDateTime) else 'text'}[])"
        for c in customer_events.c
    )
    + ") ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
)


_INSERT_EVENTS = {
    d: conflict_insert(customer_events, d)
    .on_conflict_do_nothing(index_elements=["message_id"])
    .returning(customer_events.c.message_id)
    for d in DIALECTS
}


def attribute_anonymous_events(
    conn: Connection, anonymous_ids: Collection[str], *, customer_id: str, origin_id: str
) -> list[AnyRow]:
    """Earlier events of visitors now known join the profile (late, but in time order); returns
    their (timestamp, channel) for the computed traits."""
    ev = customer_events.c
    return list(
        conn.execute(
            update(customer_events)
            .where(ev.anonymous_id.in_(list(anonymous_ids)), ev.customer_id.is_(None))
            .values(customer_id=customer_id, origin_customer_id=origin_id)
            .returning(ev.timestamp, ev.channel)
        )
    )


def unattributed_events(conn: Connection, anonymous_ids: Collection[str]) -> list[AnyRow]:
    """Events sent under these anonymous ids before anyone knew whose they were."""
    if not anonymous_ids:
        return []
    ev = customer_events.c
    stmt = select(ev.id, ev.anonymous_id, ev.timestamp, ev.channel).where(
        ev.anonymous_id.in_(sorted(anonymous_ids)), ev.customer_id.is_(None)
    )
    return list(conn.execute(stmt.order_by(ev.id)))


def attribute_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Give events their profile (``b_id``, ``b_customer``, ``b_origin``; one batched statement,
    in id order). An event attributed meanwhile keeps its profile."""
    if rows:
        conn.execute(_ATTRIBUTE_EVENTS, sorted(rows, key=lambda r: str(r["b_id"])))


_ATTRIBUTE_EVENTS = (
    update(customer_events)
    .where(customer_events.c.id == bindparam("b_id"), customer_events.c.customer_id.is_(None))
    .values(customer_id=bindparam("b_customer"), origin_customer_id=bindparam("b_origin"))
)


def timeline(
    conn: Connection, customer_id: str, *, before: tuple[datetime, str] | None, limit: int
) -> list[AnyRow]:
    """Newest first by the time things happened (not when they arrived); ``limit + 1`` rows."""
    ev = customer_events.c
    stmt = select(customer_events).where(ev.customer_id == customer_id)
    if before is not None:
        ts, event_id = before
        stmt = stmt.where(or_(ev.timestamp < ts, and_(ev.timestamp == ts, ev.id < event_id)))
    return list(conn.execute(stmt.order_by(ev.timestamp.desc(), ev.id.desc()).limit(limit + 1)))


# --- identity rules -------------------------------------------------------------------------------


def rules_document(conn: Connection) -> AnyRow | None:
    return conn.execute(select(identity_rules).where(identity_rules.c.id == RULES_ID)).first()


def save_rules_document(conn: Connection, document: str, *, by: str, now: datetime) -> int:
    """Upsert the one rule set; returns its new version."""
    base = conflict_insert(identity_rules, conn.dialect.name).values(
        id=RULES_ID, document=document, version=1, updated_at=now, updated_by=by
    )
    stmt = base.on_conflict_do_update(
        index_elements=["id"],
        set_={
            "document": base.excluded.document,
            "version": identity_rules.c.version + 1,
            "updated_at": base.excluded.updated_at,
            "updated_by": base.excluded.updated_by,
        },
    ).returning(identity_rules.c.version)
    return int(conn.execute(stmt).scalar_one())


RULES_ID = "default"


# --- consent --------------------------------------------------------------------------------------


def upsert_consents(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record decisions; one already stored with a later ``recorded_at`` is kept (arrival order
    does not matter, the person's decision time does)."""
    conn.execute(_UPSERT_CONSENT[conn.dialect.name], list(rows))


def _upsert_consent(dialect: str) -> Any:
    base = conflict_insert(customer_consents, dialect)
    return base.on_conflict_do_update(
        index_elements=["customer_id", "purpose", "channel"],
        set_={
            "granted": base.excluded.granted,
            "source": base.excluded.source,
            "recorded_at": base.excluded.recorded_at,
        },
        where=base.excluded.recorded_at >= customer_consents.c.recorded_at,
    )


_UPSERT_CONSENT = {d: _upsert_consent(d) for d in DIALECTS}


def consents_of(conn: Connection, customer_ids: Collection[str]) -> list[AnyRow]:
    cc = customer_consents.c
    return list(conn.execute(select(customer_consents).where(cc.customer_id.in_(list(customer_ids)))))


# --- computed traits ------------------------------------------------------------------------------


def add_activity(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Widen each account's seen window and add to its event count (one upsert for the batch,
    rows in account order: two requests updating the same accounts lock them in the same order)."""
    if rows:
        conn.execute(_ADD_ACTIVITY[conn.dialect.name], sorted(rows, key=lambda r: str(r["customer_id"])))


def _earlier(new: Any, old: Any) -> Any:
    return case((new < old, new), else_=old)


def _add_activity(dialect: str) -> Any:
    base = conflict_insert(customer_traits, dialect)
    t, x = customer_traits.c, base.excluded
    return base.on_conflict_do_update(
        index_elements=["customer_id"],
        set_={
            "first_seen": _earlier(x.first_seen, t.first_seen),
            "last_seen": case((x.last_seen > t.last_seen, x.last_seen), else_=t.last_seen),
            "event_count": t.event_count + x.event_count,
        },
    )


_ADD_ACTIVITY = {d: _add_activity(d) for d in DIALECTS}


def add_channels(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        ordered = sorted(rows, key=lambda r: (str(r["customer_id"]), str(r["channel"])))
        conn.execute(_ADD_CHANNELS[conn.dialect.name], ordered)


_ADD_CHANNELS = {d: conflict_insert(customer_channels, d).on_conflict_do_nothing() for d in DIALECTS}


def add_order_stats(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(_ADD_ORDER_STATS[conn.dialect.name], dict(values))


def _add_order_stats(dialect: str) -> Any:
    base = conflict_insert(customer_order_stats, dialect)
    t, x = customer_order_stats.c, base.excluded
    later = case(
        (
            and_(
                x.last_purchase_at.is_not(None),
                or_(t.last_purchase_at.is_(None), x.last_purchase_at > t.last_purchase_at),
            ),
            x.last_purchase_at,
        ),
        else_=t.last_purchase_at,
    )
    return base.on_conflict_do_update(
        index_elements=["customer_id", "currency"],
        set_={
            "order_count": t.order_count + x.order_count,
            "lifetime_value": t.lifetime_value + x.lifetime_value,
            "last_purchase_at": later,
        },
    )


_ADD_ORDER_STATS = {d: _add_order_stats(d) for d in DIALECTS}


def add_affinities(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add each row's ``weight`` to the account's affinity (one upsert for all rows)."""
    if rows:
        conn.execute(_ADD_AFFINITIES[conn.dialect.name], rows)


def _add_affinities(dialect: str) -> Any:
    base = conflict_insert(customer_affinities, dialect)
    return base.on_conflict_do_update(
        index_elements=["customer_id", "kind", "key"],
        set_={"weight": customer_affinities.c.weight + base.excluded.weight},
    )


_ADD_AFFINITIES = {d: _add_affinities(d) for d in DIALECTS}


def top_affinities(conn: Connection, customer_ids: Collection[str], *, kind: str, limit: int) -> list[str]:
    """The keys of ``kind`` these accounts weigh most (summed over them), heaviest first."""
    a = customer_affinities.c
    total = func.sum(a.weight)
    stmt = (
        select(a.key)
        .where(a.customer_id.in_(list(customer_ids)), a.kind == kind)
        .group_by(a.key)
        .having(total > 0)
        .order_by(total.desc(), a.key)
        .limit(limit)
    )
    return list(conn.execute(stmt).scalars())


def traits_of(
    conn: Connection, customer_ids: Collection[str]
) -> tuple[list[AnyRow], list[str], list[AnyRow]]:
    """Activity rows, distinct channels and order figures of these accounts."""
    ids = list(customer_ids)
    activity = list(conn.execute(select(customer_traits).where(customer_traits.c.customer_id.in_(ids))))
    channels = conn.execute(
        select(customer_channels.c.channel).where(customer_channels.c.customer_id.in_(ids)).distinct()
    ).scalars()
    orders = list(
        conn.execute(select(customer_order_stats).where(customer_order_stats.c.customer_id.in_(ids)))
    )
    return activity, sorted(channels), orders


# --- custom traits ----------------------------------------------------------------------------------


def upsert_custom_traits(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store custom traits per account and name; a value already stored from a later event is
    kept (the person's latest word wins, not the latest arrival). One row per (account, name)
    in the list; rows in key order, so two requests lock them in the same order."""
    ordered = sorted(rows, key=lambda r: (str(r["customer_id"]), str(r["name"])))
    for start in range(0, len(ordered), IMPORT_CHUNK):
        conn.execute(_UPSERT_CUSTOM_TRAITS[conn.dialect.name], ordered[start : start + IMPORT_CHUNK])


def _upsert_custom_traits(dialect: str) -> Any:
    base = conflict_insert(customer_custom_traits, dialect)
    x = base.excluded
    return base.on_conflict_do_update(
        index_elements=["customer_id", "name"],
        set_={"value": x.value, "observed_at": x.observed_at, "source": x.source, "updated_at": x.updated_at},
        where=x.observed_at >= customer_custom_traits.c.observed_at,
    )


_UPSERT_CUSTOM_TRAITS = {d: _upsert_custom_traits(d) for d in DIALECTS}


def custom_traits_of(conn: Connection, customer_ids: Collection[str]) -> list[AnyRow]:
    """The custom traits of these accounts, oldest statement first."""
    t = customer_custom_traits.c
    return list(
        conn.execute(
            select(customer_custom_traits)
            .where(t.customer_id.in_(list(customer_ids)))
            .order_by(t.observed_at, t.updated_at, t.customer_id, t.name)
        )
    )


def erase_custom_traits(conn: Connection, customer_ids: Collection[str]) -> int:
    """Forget every custom trait of these accounts (privacy erasure)."""
    t = customer_custom_traits.c
    return int(
        conn.execute(delete(customer_custom_traits).where(t.customer_id.in_(list(customer_ids)))).rowcount
    )


# --- matching attributes and blocking keys --------------------------------------------------------

ATTRIBUTE_FIELDS = (
    "given_name",
    "surname",
    "date_of_birth",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
)


def upsert_attributes(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store matching attributes per account; a value already stored is kept (first source wins)."""
    for start in range(0, len(rows), IMPORT_CHUNK):
        conn.execute(_UPSERT_ATTRIBUTES[conn.dialect.name], list(rows[start : start + IMPORT_CHUNK]))


def _upsert_attributes(dialect: str) -> Any:
    base = conflict_insert(customer_attributes, dialect)
    t, x = customer_attributes.c, base.excluded
    return base.on_conflict_do_update(
        index_elements=["customer_id"],
        set_={name: func.coalesce(t[name], x[name]) for name in ATTRIBUTE_FIELDS}
        | {"updated_at": x.updated_at},
    )


_UPSERT_ATTRIBUTES = {d: _upsert_attributes(d) for d in DIALECTS}


def insert_match_keys(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    for start in range(0, len(rows), IMPORT_CHUNK):
        conn.execute(_INSERT_MATCH_KEYS[conn.dialect.name], list(rows[start : start + IMPORT_CHUNK]))


_INSERT_MATCH_KEYS = {d: conflict_insert(customer_match_keys, d).on_conflict_do_nothing() for d in DIALECTS}


def accounts_by_keys(conn: Connection, keys: Collection[str], *, per_key: int) -> dict[str, list[str]]:
    """Accounts sharing each blocking key, at most ``per_key`` + 1 per key (a key shared by more
    carries no signal: the caller drops it)."""
    found: dict[str, list[str]] = {}
    k = customer_match_keys.c
    ranked = (
        select(k.key, k.customer_id, func.row_number().over(partition_by=k.key).label("n"))
        .where(k.key.in_(bindparam("keys", expanding=True)))
        .subquery()
    )
    stmt = select(ranked.c.key, ranked.c.customer_id).where(ranked.c.n <= per_key + 1)
    key_list = sorted(keys)
    for start in range(0, len(key_list), IMPORT_CHUNK):
        for key, customer_id in conn.execute(stmt, {"keys": key_list[start : start + IMPORT_CHUNK]}):
            found.setdefault(key, []).append(customer_id)
    return found


def person_rows(conn: Connection, account_ids: Collection[str]) -> list[AnyRow]:
    """Accounts with their contact, names, matching attributes and current root."""
    ids = sorted(account_ids)
    rows: list[AnyRow] = []
    for start in range(0, len(ids), IMPORT_CHUNK):
        rows += conn.execute(_PERSON.where(customers.c.id.in_(ids[start : start + IMPORT_CHUNK])))
    return rows


_PERSON = select(
    customers.c.id,
    customers.c.email,
    customers.c.phone,
    customers.c.first_name,
    customers.c.last_name,
    customers.c.created_by,
    func.coalesce(customers.c.merged_into, customers.c.id).label("root_id"),
    *[customer_attributes.c[name] for name in ATTRIBUTE_FIELDS],
    customer_attributes.c.matched_at,
).select_from(customers.outerjoin(customer_attributes, customer_attributes.c.customer_id == customers.c.id))


def sample_person_rows(conn: Connection, limit: int) -> list[AnyRow]:
    """Up to ``limit`` accounts that have matching attributes (to fit the matcher on)."""
    return list(
        conn.execute(
            _PERSON.where(customer_attributes.c.customer_id.is_not(None))
            .order_by(customer_attributes.c.customer_id.desc())
            .limit(limit)
        )
    )


def mark_matched(conn: Connection, account_ids: Collection[str], *, now: datetime) -> None:
    ids = sorted(account_ids)
    a = customer_attributes.c
    for start in range(0, len(ids), IMPORT_CHUNK):
        conn.execute(
            update(customer_attributes)
            .where(a.customer_id.in_(ids[start : start + IMPORT_CHUNK]))
            .values(matched_at=now)
        )


# --- review queue ---------------------------------------------------------------------------------


def insert_reviews(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Proposals, unless the pair was ever proposed (a rejected pair never comes back): the
    pair keys stored."""
    stored: set[str] = set()
    for start in range(0, len(rows), IMPORT_CHUNK):
        chunk = list(rows[start : start + IMPORT_CHUNK])
        stored |= set(conn.execute(_INSERT_REVIEWS[conn.dialect.name], chunk).scalars())
    return stored


_INSERT_REVIEWS = {
    d: conflict_insert(identity_reviews, d)
    .on_conflict_do_nothing(index_elements=["pair_key"])
    .returning(identity_reviews.c.pair_key)
    for d in DIALECTS
}


def reviews(conn: Connection, *, status: str | None, after: str | None, limit: int) -> list[AnyRow]:
    r = identity_reviews.c
    stmt = select(identity_reviews)
    if status is not None:
        stmt = stmt.where(r.status == status)
    if after is not None:
        stmt = stmt.where(r.id > after)
    return list(conn.execute(stmt.order_by(r.id).limit(limit + 1)))


def review(conn: Connection, review_id: str) -> AnyRow | None:
    return conn.execute(select(identity_reviews).where(identity_reviews.c.id == review_id)).first()


def decide_review(
    conn: Connection, review_id: str, *, status: str, by: str, now: datetime, merge_id: str | None = None
) -> bool:
    """Close a pending review (conditional UPDATE: two reviewers cannot both decide it)."""
    r = identity_reviews.c
    res = conn.execute(
        update(identity_reviews)
        .where(r.id == review_id, r.status == "pending")
        .values(status=status, decided_at=now, decided_by=by, merge_id=merge_id)
    )
    return res.rowcount == 1


def all_merges(conn: Connection) -> Iterator[AnyRow]:
    """Every merge ever journaled, oldest first, read 1,000 at a time (keyset pages: no
    server-side cursor, which a read-only autocommit connection cannot hold)."""
    return _pages(conn, customer_merges)


def all_reviews(conn: Connection) -> Iterator[AnyRow]:
    return _pages(conn, identity_reviews)


def _pages(conn: Connection, table: Any, size: int = 1000) -> Iterator[AnyRow]:
    after = ""
    while True:
        rows = list(conn.execute(select(table).where(table.c.id > after).order_by(table.c.id).limit(size)))
        yield from rows
        if len(rows) < size:
            return
        after = rows[-1].id


# --- imports --------------------------------------------------------------------------------------


def insert_import(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(customer_imports).values(**values))


def get_import(conn: Connection, import_id: str) -> AnyRow | None:
    return conn.execute(select(customer_imports).where(customer_imports.c.id == import_id)).first()


def claim_import(conn: Connection, import_id: str) -> bool:
    """queued → running (conditional: a redelivered job does not run the import twice)."""
    res = conn.execute(
        update(customer_imports)
        .where(customer_imports.c.id == import_id, customer_imports.c.status == "queued")
        .values(status="running")
    )
    return res.rowcount == 1


def finish_import(conn: Connection, import_id: str, *, status: str, report: str, now: datetime) -> None:
    conn.execute(
        update(customer_imports)
        .where(customer_imports.c.id == import_id)
        .values(status=status, report=report, data=None, finished_at=now)
    )


# --- privacy: what matching keeps about a person ------------------------------------------------


def matching_data_of(conn: Connection, ids: Collection[str]) -> dict[str, list[AnyRow]]:
    """The matching attributes of these accounts and the review proposals naming them (for a
    privacy export)."""
    a, r = customer_attributes.c, identity_reviews.c
    return {
        "matching_attributes": list(conn.execute(select(customer_attributes).where(a.customer_id.in_(ids)))),
        "match_reviews": list(
            conn.execute(select(identity_reviews).where(or_(r.left_id.in_(ids), r.right_id.in_(ids))))
        ),
    }


def erase_matching_data(conn: Connection, ids: Collection[str]) -> int:
    """Forget what the matcher kept about these accounts: attributes, blocking keys, proposals."""
    r = identity_reviews.c
    return sum(
        int(conn.execute(stmt).rowcount)
        for stmt in (
            delete(customer_attributes).where(customer_attributes.c.customer_id.in_(ids)),
            delete(customer_match_keys).where(customer_match_keys.c.customer_id.in_(ids)),
            delete(identity_reviews).where(or_(r.left_id.in_(ids), r.right_id.in_(ids))),
        )
    )
