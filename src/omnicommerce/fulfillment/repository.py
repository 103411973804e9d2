"""The SQL that matters for fulfillment: the one read choke point scoping fulfillment orders to
the caller, the compare-and-set on their version, and the routing rules and decisions."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, case, func, insert, or_, select, true, update
from sqlalchemy.engine import Connection

from omnicommerce.customers.privacy.domain import Subject
from omnicommerce.fulfillment.domain import (
    ExchangeTerms,
    FoLine,
    FulfillmentOrder,
    Return,
    ReturnLine,
    UnfilledCancellation,
)
from omnicommerce.fulfillment.models import (
    delivery_slots,
    exchanges,
    fulfillment_orders,
    returns,
    routing_decisions,
    routing_rules,
    unfilled_cancellations,
)
from omnicommerce.fulfillment.models import fulfillment_orders as fo_t
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal, reach
from omnicommerce.platform.db import conflict_insert
from omnicommerce.platform.pii import rows_where, scrub_rows

_SCOPE_COLUMNS = {"customer": fo_t.c.customer_id, "location": fo_t.c.location_id, "channel": fo_t.c.channel}


def visible_to(actor: Principal | None) -> ColumnElement[bool]:
    """THE scoping rule: a customer its own orders' fulfillment orders, a store key its store's,
    a channel key its channel's, anyone else all. Out of reach answers 404."""
    kind, value = reach(actor)
    return true() if kind == "all" else _SCOPE_COLUMNS[kind] == value


def _fo(r: Any) -> FulfillmentOrder:
    return FulfillmentOrder(
        id=r.id,
        order_id=r.order_id,
        order_number=r.order_number,
        channel=r.channel,
        customer_id=r.customer_id,
        location_id=r.location_id,
        kind=r.kind,
        status=r.status,
        version=r.version,
        lines=tuple(FoLine(x["sku"], x["quantity"], x.get("rejected", 0)) for x in orjson.loads(r.lines)),
        delayed=r.delayed,
        tracking_number=r.tracking_number,
        carrier=r.carrier,
        pickup_code=r.pickup_code,
        pickup_expires_at=r.pickup_expires_at,
        arrived_at=r.arrived_at,
        arrival_bay=r.arrival_bay,
        arrival_car=r.arrival_car,
        handed_over_at=r.handed_over_at,
        reason=r.reason,
        rerouted_from=r.rerouted_from,
        created_at=r.created_at,
        updated_at=r.updated_at,
        delivery_from=r.delivery_from,
        delivery_until=r.delivery_until,
    )


def lines_json(lines: Sequence[FoLine]) -> str:
    return orjson.dumps(
        [{"sku": x.sku, "quantity": x.quantity, "rejected": x.rejected} for x in lines]
    ).decode()


def _row(fo: FulfillmentOrder) -> dict[str, Any]:
    return {
        "id": fo.id,
        "order_id": fo.order_id,
        "order_number": fo.order_number,
        "channel": fo.channel,
        "customer_id": fo.customer_id,
        "location_id": fo.location_id,
        "kind": fo.kind,
        "status": fo.status,
        "version": fo.version,
        "lines": lines_json(fo.lines),
        "delayed": fo.delayed,
        "tracking_number": fo.tracking_number,
        "carrier": fo.carrier,
        "pickup_code": fo.pickup_code,
        "pickup_expires_at": fo.pickup_expires_at,
        "arrived_at": fo.arrived_at,
        "arrival_bay": fo.arrival_bay,
        "arrival_car": fo.arrival_car,
        "handed_over_at": fo.handed_over_at,
        "reason": fo.reason,
        "rerouted_from": fo.rerouted_from,
        "refund_due": False,
        "delivery_from": fo.delivery_from,
        "delivery_until": fo.delivery_until,
        "created_at": fo.created_at,
        "updated_at": fo.updated_at,
    }


def insert_fos(conn: Connection, fos: Sequence[FulfillmentOrder]) -> None:
    if fos:
        conn.execute(insert(fo_t), [_row(fo) for fo in fos])


def get(conn: Connection, fo_id: str, *, actor: Principal | None) -> FulfillmentOrder | None:
    row = conn.execute(select(fo_t).where(fo_t.c.id == fo_id, visible_to(actor))).first()
    return None if row is None else _fo(row)


def for_order(conn: Connection, order_id: str, *, actor: Principal | None = None) -> list[FulfillmentOrder]:
    stmt = select(fo_t).where(fo_t.c.order_id == order_id, visible_to(actor)).order_by(fo_t.c.id)
    return [_fo(r) for r in conn.execute(stmt)]


def lock_order(conn: Connection, order_id: str) -> list[FulfillmentOrder]:
    """Every fulfillment order of the order, locked in id order (the one lock order)."""
    stmt = select(fo_t).where(fo_t.c.order_id == order_id).order_by(fo_t.c.id).with_for_update()
    return [_fo(r) for r in conn.execute(stmt)]


def open_shipment_orders(conn: Connection, channel: str, limit: int) -> list[str]:
    """The channel's orders whose every fulfillment order is a shipment still ``pending`` (or
    one cancelled by an earlier re-planning)."""
    pending = and_(fo_t.c.kind == "ship", fo_t.c.status == "pending")
    not_open = case((or_(pending, fo_t.c.status == "cancelled"), 0), else_=1)
    stmt = (
        select(fo_t.c.order_id)
        .where(fo_t.c.channel == channel)
        .group_by(fo_t.c.order_id)
        .having(func.sum(not_open) == 0, func.sum(case((pending, 1), else_=0)) > 0)
        .order_by(fo_t.c.order_id)
        .limit(limit)
    )
    return list(conn.execute(stmt).scalars())


def search(
    conn: Connection,
    actor: Principal,
    *,
    location_id: str | None,
    statuses: Collection[str] | None,
    kind: str | None = None,
    arrived: bool | None = None,
    after_id: str | None,
    limit: int,
) -> list[FulfillmentOrder]:
    """Oldest first (a queue); ``limit`` rows."""
    conds: list[ColumnElement[bool]] = [visible_to(actor)]
    if location_id is not None:
        conds.append(fo_t.c.location_id == location_id)
    if statuses:
        conds.append(fo_t.c.status.in_(list(statuses)))
    if kind is not None:
        conds.append(fo_t.c.kind == kind)
    if arrived is not None:
        conds.append(fo_t.c.arrived_at.is_not(None) if arrived else fo_t.c.arrived_at.is_(None))
    if after_id is not None:
        conds.append(fo_t.c.id > after_id)
    stmt = select(fo_t).where(*conds).order_by(fo_t.c.id).limit(limit)
    return [_fo(r) for r in conn.execute(stmt)]


def transition(conn: Connection, fo: FulfillmentOrder, *, to_status: str, **values: Any) -> bool:
    """Compare-and-set on version (and status): False when another change came first."""
    res = conn.execute(
        update(fo_t)
        .where(fo_t.c.id == fo.id, fo_t.c.version == fo.version, fo_t.c.status == fo.status)
        .values(status=to_status, version=fo.version + 1, updated_at=clock.now(), **values)
    )
    return res.rowcount == 1


def update_fields(conn: Connection, fo: FulfillmentOrder, **values: Any) -> bool:
    """Compare-and-set a change that keeps the status (lines after a partial rejection, arrival)."""
    res = conn.execute(
        update(fo_t)
        .where(fo_t.c.id == fo.id, fo_t.c.version == fo.version)
        .values(version=fo.version + 1, updated_at=clock.now(), **values)
    )
    return res.rowcount == 1


def packages_today(conn: Connection, location_ids: Collection[str], since: datetime) -> dict[str, int]:
    """Fulfillment orders created per location since ``since`` (the start of the UTC day)."""
    if not location_ids:
        return {}
    stmt = (
        select(fo_t.c.location_id, func.count())
        .where(fo_t.c.location_id.in_(sorted(location_ids)), fo_t.c.created_at >= since)
        .group_by(fo_t.c.location_id)
    )
    return {loc: int(n) for loc, n in conn.execute(stmt)}


def expired_pickups(conn: Connection, now: datetime, limit: int) -> list[FulfillmentOrder]:
    stmt = (
        select(fo_t)
        .where(fo_t.c.status == "ready_for_pickup", fo_t.c.pickup_expires_at <= now)
        .order_by(fo_t.c.pickup_expires_at)
        .limit(limit)
    )
    return [_fo(r) for r in conn.execute(stmt)]


def set_refund_due(conn: Connection, fo_ids: Collection[str], due: bool) -> None:
    if fo_ids:
        conn.execute(update(fo_t).where(fo_t.c.id.in_(sorted(fo_ids))).values(refund_due=due))


def refunds_due(conn: Connection, limit: int, *, order_id: str | None = None) -> list[tuple[str, str]]:
    """(fulfillment order id, order id) of expired pickups and rejected parts whose order's
    refund has not gone through (of ``order_id`` only, when given)."""
    stmt = (
        select(fo_t.c.id, fo_t.c.order_id).where(fo_t.c.refund_due.is_(True)).order_by(fo_t.c.id).limit(limit)
    )
    if order_id is not None:
        stmt = stmt.where(fo_t.c.order_id == order_id)
    return [(r.id, r.order_id) for r in conn.execute(stmt)]


# --- rules and decisions ---------------------------------------------------------------------------


def get_rules(conn: Connection, channel: str) -> tuple[str, int] | None:
    """The channel's rules document (JSON) and its version."""
    row = conn.execute(
        select(routing_rules.c.rules, routing_rules.c.version).where(routing_rules.c.channel == channel)
    ).first()
    return None if row is None else (row.rules, row.version)


def put_rules(conn: Connection, channel: str, rules_json: str, actor: str) -> int:
    """Upsert; returns the new version."""
    stmt = conflict_insert(routing_rules, conn.dialect.name).values(
        channel=channel, rules=rules_json, version=1, updated_by=actor, updated_at=clock.now()
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=[routing_rules.c.channel],
        set_={
            "rules": stmt.excluded.rules,
            "version": routing_rules.c.version + 1,
            "updated_by": stmt.excluded.updated_by,
            "updated_at": stmt.excluded.updated_at,
        },
    ).returning(routing_rules.c.version)
    return int(conn.execute(upsert).scalar_one())


def insert_decision(conn: Connection, decision_id: str, order_id: str, trigger: str, decision: Any) -> None:
    conn.execute(
        insert(routing_decisions).values(
            id=decision_id,
            order_id=order_id,
            trigger=trigger,
            decision=orjson.dumps(decision).decode(),
            created_at=clock.now(),
        )
    )


def decisions(conn: Connection, order_id: str) -> list[dict[str, Any]]:
    stmt = (
        select(routing_decisions)
        .where(routing_decisions.c.order_id == order_id)
        .order_by(routing_decisions.c.id)
    )
    return [
        {"id": r.id, "trigger": r.trigger, "created_at": r.created_at, **orjson.loads(r.decision)}
        for r in conn.execute(stmt)
    ]


# --- same-day slots --------------------------------------------------------------------------------


def slots_booked(conn: Connection, location_ids: Collection[str], day: str) -> dict[tuple[str, str], int]:
    """(location, slot start) → deliveries booked that day."""
    if not location_ids:
        return {}
    stmt = select(delivery_slots.c.location_id, delivery_slots.c.slot_start, delivery_slots.c.booked).where(
        delivery_slots.c.location_id.in_(sorted(location_ids)), delivery_slots.c.day == day
    )
    return {(r.location_id, r.slot_start): r.booked for r in conn.execute(stmt)}


def book_slot(conn: Connection, location_id: str, day: str, slot_start: str, capacity: int) -> bool:
    """Take one place in the slot: the row is created on first use, then one conditional UPDATE
    (``booked < capacity``) decides, so concurrent bookings never exceed the capacity."""
    conn.execute(
        conflict_insert(delivery_slots, conn.dialect.name)
        .values(location_id=location_id, day=day, slot_start=slot_start, capacity=capacity, booked=0)
        .on_conflict_do_nothing()
    )
    res = conn.execute(
        update(delivery_slots)
        .where(
            delivery_slots.c.location_id == location_id,
            delivery_slots.c.day == day,
            delivery_slots.c.slot_start == slot_start,
            delivery_slots.c.booked < capacity,
        )
        .values(booked=delivery_slots.c.booked + 1, capacity=capacity)
    )
    return res.rowcount == 1


# --- returns -------------------------------------------------------------------------------------


def _exchange(r: Any) -> ExchangeTerms | None:
    if r.ex_replacement is None:
        return None
    return ExchangeTerms(
        replacement=tuple((x["sku"], x["quantity"]) for x in orjson.loads(r.ex_replacement)),
        returned_value=r.ex_returned_value,
        replacement_value=r.ex_replacement_value,
        currency=r.ex_currency,
        charge_reference=r.ex_charge_reference,
    )


_WITH_EXCHANGE = select(
    returns,
    exchanges.c.replacement.label("ex_replacement"),
    exchanges.c.returned_value.label("ex_returned_value"),
    exchanges.c.replacement_value.label("ex_replacement_value"),
    exchanges.c.currency.label("ex_currency"),
    exchanges.c.charge_reference.label("ex_charge_reference"),
).outerjoin(exchanges, exchanges.c.return_id == returns.c.id)


def _return(r: Any) -> Return:
    return Return(
        id=r.id,
        order_id=r.order_id,
        location_id=r.location_id,
        method=r.method,
        status=r.status,
        lines=tuple(ReturnLine(x["sku"], x["quantity"], x["condition"]) for x in orjson.loads(r.lines)),
        refund_amount=r.refund_amount,
        currency=r.currency,
        refund_reference=r.refund_reference,
        replacement_fulfillment_order_id=r.replacement_fulfillment_order_id,
        created_at=r.created_at,
        exchange=_exchange(r),
    )


def insert_return(conn: Connection, ret: Return, *, created_by: str) -> None:
    conn.execute(
        insert(returns).values(
            id=ret.id,
            order_id=ret.order_id,
            location_id=ret.location_id,
            method=ret.method,
            status=ret.status,
            lines=orjson.dumps(
                [{"sku": x.sku, "quantity": x.quantity, "condition": x.condition} for x in ret.lines]
            ).decode(),
            refund_amount=ret.refund_amount,
            currency=ret.currency,
            refund_reference=ret.refund_reference,
            replacement_fulfillment_order_id=ret.replacement_fulfillment_order_id,
            created_by=created_by,
            created_at=ret.created_at,
            updated_at=ret.created_at,
        )
    )


def returns_of_order(conn: Connection, order_id: str) -> list[Return]:
    stmt = _WITH_EXCHANGE.where(returns.c.order_id == order_id).order_by(returns.c.id)
    return [_return(r) for r in conn.execute(stmt)]


def get_return(conn: Connection, return_id: str) -> Return | None:
    row = conn.execute(_WITH_EXCHANGE.where(returns.c.id == return_id)).first()
    return None if row is None else _return(row)


def insert_exchange(conn: Connection, return_id: str, order_id: str, terms: ExchangeTerms) -> None:
    now = clock.now()
    conn.execute(
        insert(exchanges).values(
            return_id=return_id,
            order_id=order_id,
            replacement=_units_json(terms.units),
            returned_value=terms.returned_value,
            replacement_value=terms.replacement_value,
            currency=terms.currency,
            charge_reference=terms.charge_reference,
            created_at=now,
            updated_at=now,
        )
    )


def finish_exchange(
    conn: Connection, return_id: str, *, to_status: str, fo_id: str | None, charge_reference: str | None
) -> bool:
    """Compare-and-set charge_pending → ``to_status`` (exchanged, with its shipment and the
    charge's reference; or declined): an exchange is settled once."""
    res = conn.execute(
        update(returns)
        .where(returns.c.id == return_id, returns.c.status == "charge_pending")
        .values(status=to_status, replacement_fulfillment_order_id=fo_id, updated_at=clock.now())
    )
    if res.rowcount != 1:
        return False
    if charge_reference is not None:
        conn.execute(
            update(exchanges)
            .where(exchanges.c.return_id == return_id)
            .values(charge_reference=charge_reference, updated_at=clock.now())
        )
    return True


def stale_exchange_charges(conn: Connection, before: datetime, limit: int) -> list[str]:
    """Exchanges still waiting for their charge since before ``before`` (the attempt died)."""
    stmt = (
        select(returns.c.id)
        .where(returns.c.status == "charge_pending", returns.c.created_at < before)
        .order_by(returns.c.id)
        .limit(limit)
    )
    return list(conn.execute(stmt).scalars())


def returns_to_refund(conn: Connection, limit: int) -> list[str]:
    stmt = (
        select(returns.c.id).where(returns.c.status == "refund_pending").order_by(returns.c.id).limit(limit)
    )
    return list(conn.execute(stmt).scalars())


def mark_return_refunded(conn: Connection, return_id: str, reference: str | None) -> bool:
    """Compare-and-set refund_pending → refunded: a refund is recorded once."""
    res = conn.execute(
        update(returns)
        .where(returns.c.id == return_id, returns.c.status == "refund_pending")
        .values(status="refunded", refund_reference=reference, updated_at=clock.now())
    )
    return res.rowcount == 1


# --- units no location can serve, and what the order's payment gave back -------------------------


def _units_json(units: dict[str, int]) -> str:
    return orjson.dumps([{"sku": s, "quantity": n} for s, n in sorted(units.items())]).decode()


def _cancellation(r: Any) -> UnfilledCancellation:
    return UnfilledCancellation(
        id=r.id,
        order_id=r.order_id,
        decision_id=r.decision_id,
        lines=tuple((x["sku"], x["quantity"]) for x in orjson.loads(r.lines)),
        refund_amount=r.refund_amount,
        currency=r.currency,
        status=r.status,
        refund_reference=r.refund_reference,
        created_at=r.created_at,
    )


def insert_cancellation(conn: Connection, c: UnfilledCancellation) -> None:
    conn.execute(
        insert(unfilled_cancellations).values(
            id=c.id,
            order_id=c.order_id,
            decision_id=c.decision_id,
            lines=_units_json(c.units),
            refund_amount=c.refund_amount,
            currency=c.currency,
            status=c.status,
            refund_reference=c.refund_reference,
            created_at=c.created_at,
            updated_at=c.created_at,
        )
    )


def cancellations_of_order(conn: Connection, order_id: str) -> list[UnfilledCancellation]:
    stmt = (
        select(unfilled_cancellations)
        .where(unfilled_cancellations.c.order_id == order_id)
        .order_by(unfilled_cancellations.c.id)
    )
    return [_cancellation(r) for r in conn.execute(stmt)]


def cancelled_units_of_orders(conn: Connection, order_ids: Collection[str]) -> dict[str, dict[str, int]]:
    """order id → sku → units cancelled because nobody could serve them (one statement)."""
    if not order_ids:
        return {}
    stmt = select(unfilled_cancellations.c.order_id, unfilled_cancellations.c.lines).where(
        unfilled_cancellations.c.order_id.in_(sorted(order_ids))
    )
    out: dict[str, dict[str, int]] = {}
    for r in conn.execute(stmt):
        units = out.setdefault(r.order_id, {})
        for x in orjson.loads(r.lines):
            units[x["sku"]] = units.get(x["sku"], 0) + x["quantity"]
    return out


def get_cancellation(conn: Connection, cancellation_id: str) -> UnfilledCancellation | None:
    stmt = select(unfilled_cancellations).where(unfilled_cancellations.c.id == cancellation_id)
    row = conn.execute(stmt).first()
    return None if row is None else _cancellation(row)


def cancellations_to_refund(conn: Connection, limit: int, *, order_id: str | None = None) -> list[str]:
    stmt = (
        select(unfilled_cancellations.c.id)
        .where(unfilled_cancellations.c.status == "refund_pending")
        .order_by(unfilled_cancellations.c.id)
        .limit(limit)
    )
    if order_id is not None:
        stmt = stmt.where(unfilled_cancellations.c.order_id == order_id)
    return list(conn.execute(stmt).scalars())


def mark_cancellation_refunded(conn: Connection, cancellation_id: str, reference: str | None) -> bool:
    """Compare-and-set refund_pending → refunded: a refund is recorded once."""
    res = conn.execute(
        update(unfilled_cancellations)
        .where(
            unfilled_cancellations.c.id == cancellation_id,
            unfilled_cancellations.c.status == "refund_pending",
        )
        .values(status="refunded", refund_reference=reference, updated_at=clock.now())
    )
    return res.rowcount == 1


# --- privacy requests (found by name by customers.privacy) ---------------------------------------


def _fulfillment_of(subject: Subject) -> ColumnElement[bool]:
    return or_(
        fulfillment_orders.c.customer_id.in_(subject.customer_ids),
        fulfillment_orders.c.order_id.in_(subject.refs),
    )


def customer_rows(conn: Connection, subject: Subject) -> list[dict[str, Any]]:
    """The person's fulfillment orders, and the returns and routing decisions of their orders."""
    orders_of = subject.refs
    found = {
        "fulfillment_order": rows_where(conn, fulfillment_orders, _fulfillment_of(subject)),
        "return": rows_where(conn, returns, returns.c.order_id.in_(orders_of)),
        "routing_decision": rows_where(conn, routing_decisions, routing_decisions.c.order_id.in_(orders_of)),
        "unfilled_cancellation": rows_where(
            conn, unfilled_cancellations, unfilled_cancellations.c.order_id.in_(orders_of)
        ),
        "exchange": rows_where(conn, exchanges, exchanges.c.order_id.in_(orders_of)),
    }
    return [{"record": kind, **row} for kind, rows in found.items() for row in rows]


def erase_customer_pii(conn: Connection, subject: Subject) -> int:
    """The curbside car description and free text naming the person out of their fulfillment
    orders, and the ship-to point out of their routing decisions; units, locations, tracking
    numbers and times stay."""
    changed = scrub_rows(
        conn,
        fulfillment_orders,
        _fulfillment_of(subject),
        clear=("arrival_car",),
        documents=("reason",),
        terms=subject.terms,
        bump_version=True,
    )
    return changed + scrub_rows(
        conn,
        routing_decisions,
        routing_decisions.c.order_id.in_(subject.refs),
        documents=("decision",),
        terms=subject.terms,
    )
