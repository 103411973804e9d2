"""The SQL of privacy requests: finding everything the customers context holds about a person,
erasing it, the suppression list and the request journal."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.engine import Connection, Row

from omnicommerce.customers.models import (
    customer_affinities,
    customer_channels,
    customer_consents,
    customer_custom_traits,
    customer_events,
    customer_identities,
    customer_merges,
    customer_order_stats,
    customer_traits,
    customers,
    otp_codes,
    refresh_tokens,
)
from omnicommerce.customers.privacy.domain import anonymised_event_payload
from omnicommerce.customers.privacy.models import privacy_requests, privacy_suppressions
from omnicommerce.customers.repository import matching_data_of
from omnicommerce.platform.db import conflict_insert
from omnicommerce.platform.idempotency import idempotency_records
from omnicommerce.platform.pii import mentions_any, redact_json_text

AnyRow = Row[Any]


# --- finding the person ------------------------------------------------------------------------


def root_of(conn: Connection, customer_id: str) -> str | None:
    """The profile an account belongs to now (itself unless it was merged), None if unknown."""
    row = conn.execute(
        select(customers.c.id, customers.c.merged_into).where(customers.c.id == customer_id)
    ).first()
    return None if row is None else (row.merged_into or row.id)


def owner_of_email(conn: Connection, email: str) -> str | None:
    """The account with this (normalised) email as its contact or as an identity."""
    found = conn.execute(select(customers.c.id).where(customers.c.email == email)).scalar()
    if found is not None:
        return str(found)
    owner = conn.execute(
        select(customer_identities.c.customer_id).where(
            customer_identities.c.type == "email", customer_identities.c.value == email
        )
    ).scalar()
    return None if owner is None else str(owner)


def accounts_of(conn: Connection, root: str) -> list[str]:
    """The profile and every account merged into it (kept flat: no chains)."""
    merged = conn.execute(select(customers.c.id).where(customers.c.merged_into == root)).scalars()
    return [root, *sorted(merged)]


def customer_rows(conn: Connection, ids: Collection[str]) -> list[AnyRow]:
    return list(conn.execute(select(customers).where(customers.c.id.in_(ids)).order_by(customers.c.id)))


def identity_rows(conn: Connection, ids: Collection[str]) -> list[AnyRow]:
    c = customer_identities.c
    return list(
        conn.execute(
            select(customer_identities)
            .where(or_(c.customer_id.in_(ids), c.origin_customer_id.in_(ids)))
            .order_by(c.id)
        )
    )


def rows_of(conn: Connection, ids: Collection[str]) -> dict[str, list[AnyRow]]:
    """Consent decisions, computed traits, channels, order statistics and merges, by table."""
    by_customer = {
        "consents": customer_consents,
        "traits": customer_traits,
        "custom_traits": customer_custom_traits,
        "affinities": customer_affinities,
        "channels": customer_channels,
        "order_stats": customer_order_stats,
    }
    out = {
        name: list(conn.execute(select(table).where(table.c.customer_id.in_(ids))))
        for name, table in by_customer.items()
    }
    out |= matching_data_of(conn, ids)
    m = customer_merges.c
    out["merges"] = list(
        conn.execute(
            select(customer_merges).where(or_(m.survivor_id.in_(ids), m.merged_id.in_(ids))).order_by(m.id)
        )
    )
    return out


def _events_of(ids: Collection[str], anonymous_ids: Collection[str]) -> Any:
    e = customer_events.c
    return or_(
        e.customer_id.in_(ids),
        e.origin_customer_id.in_(ids),
        e.anonymous_id.in_(anonymous_ids),  # an empty IN is false on both databases
    )


def event_rows(conn: Connection, ids: Collection[str], anonymous_ids: Collection[str]) -> list[AnyRow]:
    """Every event of the person: attributed to one of their accounts, or sent under one of
    their anonymous ids before it was linked."""
    e = customer_events.c
    return list(
        conn.execute(
            select(customer_events).where(_events_of(ids, anonymous_ids)).order_by(e.timestamp, e.id)
        )
    )


# --- erasing ---------------------------------------------------------------------------------------


def blank_profiles(conn: Connection, ids: Collection[str], *, now: Any) -> int:
    """Contacts, names and password gone; the row stays as an anonymous id, so orders and
    statistics that reference it still add up."""
    res = conn.execute(
        update(customers)
        .where(customers.c.id.in_(ids))
        .values(
            email=None,
            phone=None,
            first_name=None,
            last_name=None,
            password_hash=None,
            updated_at=now,
            version=customers.c.version + 1,
        )
    )
    return int(res.rowcount)


def delete_identities(conn: Connection, ids: Collection[str]) -> int:
    c = customer_identities.c
    res = conn.execute(
        delete(customer_identities).where(or_(c.customer_id.in_(ids), c.origin_customer_id.in_(ids)))
    )
    return int(res.rowcount)


def delete_sessions(conn: Connection, ids: Collection[str]) -> int:
    """Refresh tokens and one-time codes: an erased person is signed out everywhere."""
    tokens = conn.execute(delete(refresh_tokens).where(refresh_tokens.c.customer_id.in_(ids)))
    codes = conn.execute(delete(otp_codes).where(otp_codes.c.customer_id.in_(ids)))
    return int(tokens.rowcount) + int(codes.rowcount)


_ANONYMISE_EVENT = (
    update(customer_events)
    .where(customer_events.c.id == bindparam("event_id"))
    .values(payload=bindparam("new_payload"), anonymous_id=None, user_id=None)
)


def anonymise_events(conn: Connection, ids: Collection[str], anonymous_ids: Collection[str]) -> int:
    """Traits, context and personal properties out of every event of the person; the event's
    type, name, time and channel stay for the aggregate figures. One executemany."""
    e = customer_events.c
    rows = conn.execute(select(e.id, e.payload).where(_events_of(ids, anonymous_ids))).all()
    if not rows:
        return 0
    conn.execute(
        _ANONYMISE_EVENT,
        [
            {
                "event_id": r.id,
                "new_payload": orjson.dumps(anonymised_event_payload(_json(r.payload))).decode(),
            }
            for r in rows
        ],
    )
    return len(rows)


def redact_merge_evidence(conn: Connection, ids: Collection[str]) -> int:
    """The merge journal keeps who was merged with whom and when, not the identifiers."""
    m = customer_merges.c
    res = conn.execute(
        update(customer_merges)
        .where(or_(m.survivor_id.in_(ids), m.merged_id.in_(ids)))
        .values(evidence=orjson.dumps({"erased": True}).decode())
    )
    return int(res.rowcount)


def delete_idempotency_records(conn: Connection, keys: Sequence[str], terms: Collection[str]) -> int:
    """Stored answers about the person (found by ``keys``) that hold personal data — a cart with
    their address, say — are forgotten; a retry with such a key runs again instead of replaying.
    Answers naming them by id only (an erasure's own answer) stay replayable."""
    if not keys:
        return 0
    r = idempotency_records.c
    found = conn.execute(select(r.scope, r.key, r.body).where(mentions_any(r.body, keys))).all()
    personal = [(row.scope, row.key) for row in found if redact_json_text(row.body, terms) != row.body]
    for scope, key in personal:
        conn.execute(delete(idempotency_records).where(r.scope == scope, r.key == key))
    return len(personal)


def _json(text: str) -> Mapping[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


# --- suppression list and journal ---------------------------------------------------------------


def add_suppressions(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        stmt = conflict_insert(privacy_suppressions, conn.dialect.name).on_conflict_do_nothing()
        conn.execute(stmt, list(rows))


def suppressed_hashes(conn: Connection, hashes: Collection[str]) -> set[str]:
    if not hashes:
        return set()
    s = privacy_suppressions.c
    return set(conn.execute(select(s.identifier_hash).where(s.identifier_hash.in_(hashes))).scalars())


def insert_request(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(privacy_requests.insert().values(**values))


def requests_of(conn: Connection, customer_id: str) -> list[AnyRow]:
    r = privacy_requests.c
    return list(conn.execute(select(privacy_requests).where(r.customer_id == customer_id).order_by(r.id)))
