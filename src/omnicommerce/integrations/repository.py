"""The SQL of webhooks: endpoints, the delivery log, and the dispatcher's claim of due rows.

The claim takes due rows with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (several dispatchers
share the work) and pushes their ``next_attempt_at`` past the send timeout in the same
transaction: a dispatcher that dies mid-send leaves the row to be retried after that lease.
SQLite serialises writers (``BEGIN IMMEDIATE``), so there the claim is atomic as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Row

from omnicommerce.customers.privacy.domain import Subject
from omnicommerce.integrations.domain import Delivery, DeliveryStatus, DueDelivery, Endpoint
from omnicommerce.integrations.models import webhook_deliveries, webhook_endpoints
from omnicommerce.platform.pii import mentions_any, redact_documents, rows_where

D = webhook_deliveries.c
E = webhook_endpoints.c


def _endpoint(row: Row[Any]) -> Endpoint:
    return Endpoint(
        id=row.id,
        url=row.url,
        description=row.description,
        event_types=tuple(row.event_types.split()),
        active=row.active,
        created_at=row.created_at,
    )


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        replay_of=row.replay_of,
        created_at=row.created_at,
    )


# --- endpoints ----------------------------------------------------------------------------------


def insert_endpoint(conn: Connection, endpoint: Endpoint, secret: str) -> None:
    conn.execute(
        insert(webhook_endpoints).values(
            id=endpoint.id,
            url=endpoint.url,
            description=endpoint.description,
            event_types=" ".join(endpoint.event_types),
            secret=secret,
            active=endpoint.active,
            created_at=endpoint.created_at,
        )
    )


def get_endpoint(conn: Connection, endpoint_id: str) -> Endpoint | None:
    row = conn.execute(select(webhook_endpoints).where(E.id == endpoint_id)).first()
    return None if row is None else _endpoint(row)


def list_endpoints(conn: Connection, *, after: str | None, limit: int) -> list[Endpoint]:
    query = select(webhook_endpoints).order_by(E.id).limit(limit)
    if after is not None:
        query = query.where(E.id > after)
    return [_endpoint(r) for r in conn.execute(query)]


def active_endpoints(conn: Connection) -> list[Endpoint]:
    """Every active endpoint (a retailer has a handful; filtering by type happens in Python)."""
    return [_endpoint(r) for r in conn.execute(select(webhook_endpoints).where(E.active.is_(True)))]


def disable_endpoint(conn: Connection, endpoint_id: str, now: datetime) -> bool:
    """Deactivate the endpoint and settle its pending deliveries as failed; False if it was not active."""
    moved = conn.execute(
        update(webhook_endpoints).where(E.id == endpoint_id, E.active.is_(True)).values(active=False)
    ).rowcount
    if moved:
        conn.execute(
            update(webhook_deliveries)
            .where(D.endpoint_id == endpoint_id, D.status == DeliveryStatus.PENDING)
            .values(status=DeliveryStatus.FAILED, next_attempt_at=None, last_error="endpoint disabled")
        )
    return bool(moved)


# --- deliveries ---------------------------------------------------------------------------------


def insert_deliveries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(webhook_deliveries), list(rows))


def get_delivery(conn: Connection, delivery_id: str) -> Delivery | None:
    row = conn.execute(select(webhook_deliveries).where(D.id == delivery_id)).first()
    return None if row is None else _delivery(row)


def delivery_payload(conn: Connection, delivery_id: str) -> str | None:
    return conn.execute(select(D.payload).where(D.id == delivery_id)).scalar_one_or_none()


def list_deliveries(
    conn: Connection, *, endpoint_id: str, status: DeliveryStatus | None, after: str | None, limit: int
) -> list[Delivery]:
    query = select(webhook_deliveries).where(D.endpoint_id == endpoint_id).order_by(D.id.desc()).limit(limit)
    if status is not None:
        query = query.where(D.status == status)
    if after is not None:
        query = query.where(D.id < after)  # newest first
    return [_delivery(r) for r in conn.execute(query)]


def any_due(conn: Connection, now: datetime) -> bool:
    """A cheap read first, so an idle dispatcher never opens a write transaction."""
    due = select(D.id).where(D.status == DeliveryStatus.PENDING, D.next_attempt_at <= now).limit(1)
    return conn.execute(due).first() is not None


def claim_due(
    conn: Connection, *, now: datetime, lease_until: datetime, limit: int, dialect: str
) -> list[DueDelivery]:
    due = (
        select(D.id)
        .where(D.status == DeliveryStatus.PENDING, D.next_attempt_at <= now)
        .order_by(D.next_attempt_at)
        .limit(limit)
    )
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(conn.execute(due).scalars())
    if not ids:
        return []
    conn.execute(update(webhook_deliveries).where(D.id.in_(ids)).values(next_attempt_at=lease_until))
    rows = conn.execute(
        select(D.id, D.endpoint_id, E.url, E.secret, D.event_id, D.event_type, D.payload, D.attempts)
        .join(webhook_endpoints, E.id == D.endpoint_id)
        .where(D.id.in_(ids))
        .order_by(D.created_at)
    )
    return [DueDelivery(*r) for r in rows]


def record_attempt(
    conn: Connection,
    delivery_id: str,
    *,
    status: DeliveryStatus,
    attempts: int,
    next_attempt_at: datetime | None,
    status_code: int | None,
    error: str | None,
    now: datetime,
) -> bool:
    """Write one attempt's outcome; False if the delivery was settled meanwhile (endpoint disabled)."""
    return bool(
        conn.execute(
            update(webhook_deliveries)
            .where(D.id == delivery_id, D.status == DeliveryStatus.PENDING)
            .values(
                status=status,
                attempts=attempts,
                next_attempt_at=next_attempt_at,
                last_attempt_at=now,
                last_status_code=status_code,
                last_error=error,
            )
        ).rowcount
    )


# --- privacy requests (found by name by customers.privacy) ---------------------------------------


def customer_rows(conn: Connection, subject: Subject) -> list[dict[str, Any]]:
    """Webhook deliveries whose body mentions the person (their ids, orders, carts or contacts)."""
    if not subject.keys:
        return []
    return rows_where(conn, webhook_deliveries, mentions_any(webhook_deliveries.c.payload, subject.keys))


def erase_customer_pii(conn: Connection, subject: Subject) -> int:
    """Personal data out of the delivery log bodies that mention the person; the log keeps the
    event id, type, status and attempts. A replay then sends the redacted body."""
    d = webhook_deliveries.c
    return redact_documents(
        conn, webhook_deliveries, d.id, d.payload, mentioning=subject.keys, terms=subject.terms
    )
