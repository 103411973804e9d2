"""Webhook use cases: endpoints (admin), the delivery log and replay, the fan-out of events
into deliveries (a subscriber), and settling each delivery attempt (the dispatcher job).

Functions take the unit of work and never commit; the entrypoint does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from omnicommerce.customers.privacy.domain import Subject
from omnicommerce.integrations import repository as repo
from omnicommerce.integrations.domain import (
    Attempt,
    AttemptResult,
    Delivery,
    DeliveryNotFound,
    DeliveryNotReplayable,
    DeliveryStatus,
    DueDelivery,
    Endpoint,
    EndpointNotFound,
    after_attempt,
    check_event_types,
    check_url,
    deliverable,
    new_secret,
    payload,
    retry_delay,
    subscribed,
)
from omnicommerce.integrations.events import (
    WebhookDelivered,
    WebhookEndpointCreated,
    WebhookEndpointDisabled,
    WebhookFailed,
)
from omnicommerce.integrations.schemas import EndpointCreate
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.db import Database, UnitOfWork
from omnicommerce.platform.events import REGISTRY
from omnicommerce.platform.ids import new_id
from omnicommerce.platform.outbox import Envelope

SUBSCRIBED_TYPES_TTL_SECONDS = 2.0


# --- endpoints ----------------------------------------------------------------------------------


def create_endpoint(
    uow: UnitOfWork, actor: Principal, cmd: EndpointCreate, *, allow_private: bool
) -> tuple[Endpoint, str]:
    """The new endpoint and its signing secret (returned this once, never again)."""
    url = check_url(str(cmd.url), allow_private=allow_private)
    types = check_event_types(cmd.event_types, (t for t in REGISTRY if deliverable(t)))
    endpoint = Endpoint(
        id=new_id("whe"),
        url=url,
        description=cmd.description,
        event_types=tuple(types),
        active=True,
        created_at=clock.now(),
    )
    secret = new_secret()
    repo.insert_endpoint(uow.conn, endpoint, secret)
    uow.emit(WebhookEndpointCreated(endpoint_id=endpoint.id, url=url, event_types=types))
    subscribed_types.invalidate()
    return endpoint, secret


def get_endpoint(uow: UnitOfWork, actor: Principal, endpoint_id: str) -> Endpoint:
    endpoint = repo.get_endpoint(uow.conn, endpoint_id)
    if endpoint is None:
        raise EndpointNotFound(f"webhook endpoint {endpoint_id!r} does not exist")
    return endpoint


def list_endpoints(uow: UnitOfWork, actor: Principal, *, after: str | None, limit: int) -> list[Endpoint]:
    return repo.list_endpoints(uow.conn, after=after, limit=limit)


def disable_endpoint(uow: UnitOfWork, actor: Principal, endpoint_id: str) -> Endpoint:
    """Stop sending to the endpoint; its pending deliveries are settled as failed. Idempotent."""
    get_endpoint(uow, actor, endpoint_id)
    if repo.disable_endpoint(uow.conn, endpoint_id, clock.now()):
        uow.emit(WebhookEndpointDisabled(endpoint_id=endpoint_id))
        subscribed_types.invalidate()
    return get_endpoint(uow, actor, endpoint_id)


# --- the delivery log ---------------------------------------------------------------------------


def list_deliveries(
    uow: UnitOfWork,
    actor: Principal,
    endpoint_id: str,
    *,
    status: DeliveryStatus | None,
    after: str | None,
    limit: int,
) -> list[Delivery]:
    get_endpoint(uow, actor, endpoint_id)
    return repo.list_deliveries(uow.conn, endpoint_id=endpoint_id, status=status, after=after, limit=limit)


def get_delivery(uow: UnitOfWork, actor: Principal, delivery_id: str) -> Delivery:
    delivery = repo.get_delivery(uow.conn, delivery_id)
    if delivery is None:
        raise DeliveryNotFound(f"webhook delivery {delivery_id!r} does not exist")
    return delivery


def replay_delivery(uow: UnitOfWork, actor: Principal, delivery_id: str) -> Delivery:
    """Send a settled delivery again, as a new delivery with the same body and ``webhook-id``."""
    original = get_delivery(uow, actor, delivery_id)
    if original.status == DeliveryStatus.PENDING:
        raise DeliveryNotReplayable("this delivery is still being attempted; replay it once it settled")
    if not get_endpoint(uow, actor, original.endpoint_id).active:
        raise DeliveryNotReplayable("the endpoint is disabled; create a new endpoint to receive events")
    body = repo.delivery_payload(uow.conn, delivery_id) or ""
    now = clock.now()
    replay_id = new_id("whd")
    row = _pending_row(replay_id, original.endpoint_id, original.event_id, original.event_type, body, now)
    repo.insert_deliveries(uow.conn, [{**row, "replay_of": original.id}])
    return get_delivery(uow, actor, replay_id)


def _pending_row(
    delivery_id: str, endpoint_id: str, event_id: str, event_type: str, body: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": delivery_id,
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "event_type": event_type,
        "payload": body,
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "last_attempt_at": None,
        "last_status_code": None,
        "last_error": None,
        "replay_of": None,
        "created_at": now,
    }


# --- fan-out: one delivery per subscribed endpoint and event --------------------------------------


def fan_out(uow: UnitOfWork, env: Envelope) -> int:
    """Queue ``env`` for every active endpoint subscribed to its type; returns how many."""
    endpoints = [e for e in repo.active_endpoints(uow.conn) if subscribed(e.event_types, env.type)]
    if not endpoints:
        return 0
    body = payload(env.type, env.occurred_at, {"id": env.id, "version": env.version, **env.payload})
    now = clock.now()
    repo.insert_deliveries(
        uow.conn, [_pending_row(new_id("whd"), e.id, env.id, env.type, body, now) for e in endpoints]
    )
    return len(endpoints)


class SubscribedTypes:
    """Which event types some active endpoint wants, cached for a couple of seconds per process,
    so events nobody subscribed to cost no write at all. Local endpoint changes clear it at once;
    another process's change is seen within ``SUBSCRIBED_TYPES_TTL_SECONDS``."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: dict[str, tuple[float, frozenset[str]]] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._cached.clear()

    def of(self, db: Database) -> frozenset[str]:
        with self._lock:
            hit = self._cached.get(db.url)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        with db.uow(readonly=True) as uow:
            types = frozenset(t for e in repo.active_endpoints(uow.conn) for t in e.event_types)
        with self._lock:
            self._cached[db.url] = (time.monotonic(), types)
        return types


subscribed_types = SubscribedTypes(SUBSCRIBED_TYPES_TTL_SECONDS)


def wanted(db: Database, env: Envelope) -> bool:
    return subscribed(subscribed_types.of(db), env.type)


# --- attempts (the dispatcher) --------------------------------------------------------------------


def any_due(uow: UnitOfWork) -> bool:
    return repo.any_due(uow.conn, clock.now())


def claim_due(uow: UnitOfWork, *, limit: int, lease_seconds: float) -> list[DueDelivery]:
    """Take up to ``limit`` due deliveries for this dispatcher for ``lease_seconds``."""
    now = clock.now()
    return repo.claim_due(
        uow.conn,
        now=now,
        lease_until=now + timedelta(seconds=lease_seconds),
        limit=limit,
        dialect=uow.dialect,
    )


def settle_attempt(
    uow: UnitOfWork, due: DueDelivery, result: AttemptResult, *, max_attempts: int, backoff_base: float
) -> DeliveryStatus:
    """Record one attempt: succeeded, retry later (exponential backoff), or failed for good."""
    attempts = due.attempts + 1
    status = after_attempt(
        DeliveryStatus.PENDING, result.outcome, attempts=attempts, max_attempts=max_attempts
    )
    now = clock.now()
    retry_at = now + retry_delay(attempts, backoff_base) if status == DeliveryStatus.PENDING else None
    recorded = repo.record_attempt(
        uow.conn,
        due.id,
        status=status,
        attempts=attempts,
        next_attempt_at=retry_at,
        status_code=result.status_code,
        error=result.error,
        now=now,
    )
    if recorded:
        _emit_settled(uow, due, result, status, attempts)
    return status


def _emit_settled(
    uow: UnitOfWork, due: DueDelivery, result: AttemptResult, status: DeliveryStatus, attempts: int
) -> None:
    common = {
        "delivery_id": due.id,
        "endpoint_id": due.endpoint_id,
        "event_id": due.event_id,
        "event_type": due.event_type,
        "attempts": attempts,
    }
    if status == DeliveryStatus.SUCCEEDED and result.outcome == Attempt.OK:
        uow.emit(WebhookDelivered(status_code=result.status_code or 200, **common))
    elif status == DeliveryStatus.FAILED:
        uow.emit(WebhookFailed(last_status_code=result.status_code, last_error=result.error, **common))


def settle_all(
    uow: UnitOfWork,
    results: Iterable[tuple[DueDelivery, AttemptResult]],
    *,
    max_attempts: int,
    backoff_base: float,
) -> list[DeliveryStatus]:
    return [
        settle_attempt(uow, due, result, max_attempts=max_attempts, backoff_base=backoff_base)
        for due, result in results
    ]


# --- privacy (called by customers.privacy for export and erasure requests) --------------------------


def customer_data(uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
    """Webhook deliveries whose body mentions the person (their ids, orders, carts or contacts)."""
    return repo.customer_rows(uow.conn, subject)


def erase_customer_pii(uow: UnitOfWork, subject: Subject) -> int:
    """Personal data out of the delivery log bodies that mention the person; the log keeps the
    event id, type, status and attempts. A replay then sends the redacted body."""
    return repo.erase_customer_pii(uow.conn, subject)
