"""The customer 360 read: a profile's identities, computed traits and unified timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from omnicommerce.customers import consent, identity, traits
from omnicommerce.customers import repository as repo
from omnicommerce.customers.schemas import Profile, ProfileSegment, TimelineEvent
from omnicommerce.customers.service import get_customer
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.web import BadCursor, decode_cursor, encode_cursor


def get_profile(
    uow: UnitOfWork, actor: Principal, customer_id: str, *, cursor: str | None = None, limit: int = 50
) -> Profile:
    """A merged profile answers with the one it was merged into (the person is one customer)."""
    from omnicommerce.customers.segments.service import segments_of  # the sub-package builds on this

    get_customer(uow, actor, customer_id)  # reach check: a customer sees only itself
    root = identity.roots_of(uow, [customer_id])[customer_id]
    rows = repo.timeline(uow.conn, root, before=_decode(cursor), limit=limit)
    more = len(rows) > limit
    rows = rows[:limit]
    return Profile(
        customer=get_customer(uow, actor, root)
        if root != customer_id
        else get_customer(uow, actor, customer_id),
        merged_from=repo.merged_members(uow.conn, root),
        identities=identity.identities(uow, root),
        traits=traits.profile_traits(uow, root),
        custom_traits=traits.custom_traits(uow, traits.profile_accounts(uow, root)),
        consents=consent.effective_consents(uow, root),
        segments=[ProfileSegment(id=s.id, name=s.name, added_at=s.added_at) for s in segments_of(uow, root)],
        timeline=[_timeline_event(r) for r in rows],
        next_cursor=_encode(rows[-1]) if more else None,
    )


def _timeline_event(row: Any) -> TimelineEvent:
    payload = orjson.loads(row.payload)
    return TimelineEvent(
        id=row.id,
        message_id=row.message_id,
        type=row.type,
        name=row.name,
        channel=row.channel,
        source=row.source,
        timestamp=row.timestamp,
        received_at=row.received_at,
        properties=payload.get("properties", {}),
        traits=payload.get("traits", {}),
    )


def _encode(row: Any) -> str:
    micros = (row.timestamp - _EPOCH) // timedelta(microseconds=1)  # exact, unlike float seconds
    return encode_cursor(f"{micros}.{row.id}")


def _decode(cursor: str | None) -> tuple[datetime, str] | None:
    decoded = decode_cursor(cursor)
    if decoded is None:
        return None
    micros, _, event_id = decoded.partition(".")
    if not micros.isdigit() or not event_id:
        raise BadCursor("cursor is not one this API returned")
    return _EPOCH + timedelta(microseconds=int(micros)), event_id


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
