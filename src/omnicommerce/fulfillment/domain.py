"""Fulfillment rules: the fulfillment-order state machine (a table), routing-rule filters,
pickup codes and errors.

Pure Python: no SQLAlchemy, FastAPI or I/O.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum

from omnicommerce.inventory.domain import haversine_km
from omnicommerce.platform.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound


class Kind(StrEnum):
    SHIP = "ship"  # from a DC or a store to the customer's address
    PICKUP = "pickup"  # BOPIS (and curbside, when the customer announces arrival)
    SAME_DAY = "same_day"  # a store's courier delivers today, in a booked slot
    CARRY_OUT = "carry_out"  # a till sale from a store-bound cart: handed over at checkout, done at once


class Status(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    PICKING = "picking"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    READY_FOR_PICKUP = "ready_for_pickup"
    PICKED_UP = "picked_up"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class Action(StrEnum):
    ACCEPT = "accept"
    PICK = "pick"
    PACK = "pack"
    SHIP = "ship"
    DELIVER = "deliver"
    READY = "ready"
    HAND_OVER = "hand_over"
    REJECT = "reject"  # every remaining line rejected (a partial rejection keeps the status)
    CANCEL = "cancel"
    EXPIRE = "expire"  # a pickup not collected in time


_BEFORE_PACKED = (Status.PENDING, Status.ACCEPTED, Status.PICKING)

# Shared by both kinds: the warehouse part of the flow.
_COMMON: dict[tuple[Status, Action], Status] = {
    (Status.PENDING, Action.ACCEPT): Status.ACCEPTED,
    (Status.ACCEPTED, Action.PICK): Status.PICKING,
    (Status.PICKING, Action.PACK): Status.PACKED,
    **{(s, Action.REJECT): Status.REJECTED for s in _BEFORE_PACKED},
    **{(s, Action.CANCEL): Status.CANCELLED for s in (*_BEFORE_PACKED, Status.PACKED)},
}

# The whole lifecycle per kind; anything not listed is illegal (409).
_SHIPPING: dict[tuple[Status, Action], Status] = {
    **_COMMON,
    (Status.PACKED, Action.SHIP): Status.SHIPPED,
    (Status.SHIPPED, Action.DELIVER): Status.DELIVERED,
}
TRANSITIONS: Mapping[Kind, Mapping[tuple[Status, Action], Status]] = {
    Kind.SHIP: _SHIPPING,
    Kind.SAME_DAY: _SHIPPING,
    Kind.PICKUP: {
        **_COMMON,
        (Status.PACKED, Action.READY): Status.READY_FOR_PICKUP,
        (Status.READY_FOR_PICKUP, Action.HAND_OVER): Status.PICKED_UP,
        (Status.READY_FOR_PICKUP, Action.EXPIRE): Status.CANCELLED,
        (Status.READY_FOR_PICKUP, Action.CANCEL): Status.CANCELLED,
    },
    Kind.CARRY_OUT: {},  # created picked up: nothing left to do (returns go through the return flow)
}

# A fulfillment order in one of these is done; the order completes when every one of its
# fulfillment orders is done and at least one reached the customer.
DONE = frozenset({Status.DELIVERED, Status.PICKED_UP, Status.REJECTED, Status.CANCELLED})
REACHED_CUSTOMER = frozenset({Status.DELIVERED, Status.PICKED_UP})
# Units still allocated at the location (not shipped, handed over, rejected or cancelled).
HOLDS_STOCK = frozenset(
    {Status.PENDING, Status.ACCEPTED, Status.PICKING, Status.PACKED, Status.READY_FOR_PICKUP}
)
# A customer may announce a curbside arrival from the moment the store has the order.
ARRIVAL_STATES = frozenset(
    {Status.PENDING, Status.ACCEPTED, Status.PICKING, Status.PACKED, Status.READY_FOR_PICKUP}
)


def next_status(kind: str, current: str, action: str) -> Status:
    try:
        return TRANSITIONS[Kind(kind)][(Status(current), Action(action))]
    except (KeyError, ValueError):
        raise IllegalTransition(
            f"cannot {action} a {kind} fulfillment order that is {current}",
            status_now=current,
            action=action,
        ) from None


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FoLine:
    sku: str
    quantity: int  # units still to fulfil here
    rejected: int = 0  # units the location could not find (re-routed elsewhere)


@dataclass(frozen=True, slots=True)
class FulfillmentOrder:
    id: str
    order_id: str
    order_number: str
    channel: str
    customer_id: str | None
    location_id: str
    kind: str
    status: str
    version: int
    lines: tuple[FoLine, ...]
    delayed: bool
    tracking_number: str | None
    carrier: str | None
    pickup_code: str | None
    pickup_expires_at: datetime | None
    arrived_at: datetime | None
    arrival_bay: str | None
    arrival_car: str | None
    handed_over_at: datetime | None
    reason: str | None
    rerouted_from: str | None
    created_at: datetime
    updated_at: datetime
    delivery_from: datetime | None = None  # same-day: the booked slot
    delivery_until: datetime | None = None

    @property
    def units(self) -> dict[str, int]:
        return {ln.sku: ln.quantity for ln in self.lines if ln.quantity > 0}

    @property
    def handover_seconds(self) -> float | None:
        """Curbside: time from the customer's arrival to the handover."""
        if self.arrived_at is None or self.handed_over_at is None:
            return None
        return (self.handed_over_at - self.arrived_at).total_seconds()


# --- pickup codes ------------------------------------------------------------------------------

PICKUP_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PICKUP_CODE_LENGTH = 6
QR_PREFIX = "omni:pickup:"


def new_pickup_code() -> str:
    return "".join(secrets.choice(PICKUP_ALPHABET) for _ in range(PICKUP_CODE_LENGTH))


def qr_payload(fo_id: str, code: str) -> str:
    """What the customer's QR code encodes; the store scans it instead of typing the code."""
    return f"{QR_PREFIX}{fo_id}:{code}"


def code_matches(fo: FulfillmentOrder, presented: str) -> bool:
    """The code as typed (any case, spaces ignored) or the whole QR payload."""
    if fo.pickup_code is None:
        return False
    raw = presented.strip()
    if raw.startswith(QR_PREFIX):
        return secrets.compare_digest(raw, qr_payload(fo.id, fo.pickup_code))
    return secrets.compare_digest(raw.replace(" ", "").upper(), fo.pickup_code)


def is_expired(fo: FulfillmentOrder, now: datetime) -> bool:
    return (
        fo.status == Status.READY_FOR_PICKUP
        and fo.pickup_expires_at is not None
        and fo.pickup_expires_at <= now
    )


# --- same-day delivery -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    """A delivery window of the day (UTC) and how many deliveries one store takes in it."""

    start: time
    end: time
    capacity: int


def bookable_slots(now: datetime, cutoff: time, slots: Sequence[Slot]) -> list[Slot]:
    """Today's slots still on offer: none after the cut-off, and none that has begun."""
    if now.time() >= cutoff:
        return []
    return [s for s in slots if s.start > now.time()]


def slot_window(day: datetime, slot: Slot) -> tuple[datetime, datetime]:
    return (
        datetime.combine(day.date(), slot.start, day.tzinfo),
        datetime.combine(day.date(), slot.end, day.tzinfo),
    )


# --- returns -----------------------------------------------------------------------------------


class Condition(StrEnum):
    SELLABLE = "sellable"  # back on the shelf where it was received
    DAMAGED = "damaged"  # into the damaged bucket, not sellable


class ReturnStatus(StrEnum):
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"
    EXCHANGED = "exchanged"
    CHARGE_PENDING = "charge_pending"  # an exchange that costs more: waiting for the charge
    DECLINED = "declined"  # that charge failed: no exchange, nothing taken back


# Returns whose units count as given back (a declined exchange took nothing back).
RETURN_COUNTS = frozenset(
    {ReturnStatus.REFUND_PENDING, ReturnStatus.REFUNDED, ReturnStatus.EXCHANGED, ReturnStatus.CHARGE_PENDING}
)


@dataclass(frozen=True, slots=True)
class ReturnLine:
    sku: str
    quantity: int
    condition: str


@dataclass(frozen=True, slots=True)
class ExchangeTerms:
    """The price side of an exchange: what the returned units were paid (as a return would refund
    them) against what the replacement costs now (the pricing quote, same channel and customer)."""

    replacement: tuple[tuple[str, int], ...]  # (sku, units)
    returned_value: int
    replacement_value: int
    currency: str
    charge_reference: str | None = None

    @property
    def difference(self) -> int:
        """> 0: the customer pays this much more; < 0: this much goes back; 0: an even exchange."""
        return self.replacement_value - self.returned_value

    @property
    def units(self) -> dict[str, int]:
        return dict(self.replacement)


@dataclass(frozen=True, slots=True)
class Return:
    id: str
    order_id: str
    location_id: str
    method: str
    status: str
    lines: tuple[ReturnLine, ...]
    refund_amount: int
    currency: str
    refund_reference: str | None
    replacement_fulfillment_order_id: str | None
    created_at: datetime
    exchange: ExchangeTerms | None = None


def returnable(received: Mapping[str, int], returned: Mapping[str, int]) -> dict[str, int]:
    """Units the customer has (delivered or picked up) and has not returned yet, per sku."""
    return {sku: n - returned.get(sku, 0) for sku, n in received.items() if n > returned.get(sku, 0)}


def refund_for(units: Mapping[str, int], paid: Mapping[str, tuple[int, int]]) -> int:
    """What returning ``units`` gives back: each unit at what was paid for it after discounts
    (``paid``: sku → (line total, quantity)), in minor units, rounded down."""
    return sum(paid[sku][0] * n // paid[sku][1] for sku, n in units.items() if sku in paid)


# --- money back for units that never reach the customer -----------------------------------------


def unit_share(total: int, quantity: int, units: int) -> int:
    """What ``units`` of a line of ``quantity`` units paid ``total`` (minor units, after its
    discounts and adjustments) are worth: rounded down, so that shares of disjoint parts of the
    line never add up to more than its total, and all its units are worth exactly the total."""
    return total * units // quantity


def unfilled_refunds(
    paid: Mapping[str, tuple[int, int]], cancelled_before: Mapping[str, int], cancel: Mapping[str, int]
) -> dict[str, int]:
    """Per sku, what cancelling ``cancel`` more units gives back (``paid``: sku → (line total,
    quantity); ``cancelled_before``: units of it cancelled earlier). Counted on the running total
    of cancelled units — ``share(before + n) - share(before)`` — so however the cancellations of a
    line are split, together they give back exactly the share of all of them (the whole line
    total once every unit is cancelled), never a minor unit more."""
    out: dict[str, int] = {}
    for sku, n in cancel.items():
        if sku not in paid or n <= 0:
            continue
        total, quantity = paid[sku]
        before = cancelled_before.get(sku, 0)
        out[sku] = unit_share(total, quantity, before + n) - unit_share(total, quantity, before)
    return out


class UnfilledStatus(StrEnum):
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class UnfilledCancellation:
    """Units of an order no location can serve, cancelled on the order; their price goes back to
    the original payment (``refund_pending`` until the provider has done it)."""

    id: str
    order_id: str
    decision_id: str  # the routing that found nowhere for them: one cancellation per routing
    lines: tuple[tuple[str, int], ...]  # (sku, units)
    refund_amount: int
    currency: str
    status: str
    refund_reference: str | None
    created_at: datetime

    @property
    def units(self) -> dict[str, int]:
        return dict(self.lines)


# --- routing-rule filters ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hours:
    """Opening hours in UTC, every day; ``close`` before ``open`` spans midnight."""

    open: time
    close: time

    def is_open(self, at: time) -> bool:
        if self.open <= self.close:
            return self.open <= at < self.close
        return at >= self.open or at < self.close


@dataclass(frozen=True, slots=True)
class Filters:
    """Which locations may fulfil a channel's orders. Keys of ``daily_capacity`` and
    ``opening_hours`` are a location id or a location kind (the id wins)."""

    required_capability: str = "ship"
    eligible_kinds: frozenset[str] = frozenset({"dc", "store", "dark_store"})
    eligible_locations: frozenset[str] = frozenset()  # empty: every location
    excluded_locations: frozenset[str] = frozenset()
    max_distance_km: float | None = None  # stores and dark stores only; DCs ship anywhere
    daily_capacity: Mapping[str, int] = field(default_factory=dict)
    opening_hours: Mapping[str, Hours] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Site:
    """What the filters need to know about one location."""

    id: str
    kind: str
    active: bool
    capabilities: frozenset[str]
    lat: float | None
    lon: float | None
    visible_to_channel: bool
    postal_code: str = ""


def for_location(table: Mapping[str, object], site: Site) -> object | None:
    return table.get(site.id, table.get(site.kind))


def rejection_reason(
    site: Site,
    filters: Filters,
    *,
    ship_to: tuple[float, float] | None,
    now: datetime,
    also_excluded: frozenset[str] = frozenset(),
) -> str | None:
    """Why the rules keep ``site`` out (None: it is a candidate). The first failing rule wins."""
    if not site.active:
        return "location inactive"
    if site.id in filters.excluded_locations or site.id in also_excluded:
        return "excluded"
    if filters.required_capability not in site.capabilities:
        return f"lacks capability {filters.required_capability!r}"
    if not site.visible_to_channel or site.kind not in filters.eligible_kinds:
        return "not eligible for this channel"
    if filters.eligible_locations and site.id not in filters.eligible_locations:
        return "not eligible for this channel"
    if site.lat is None or site.lon is None:
        return "location has no coordinates"
    hours = for_location(filters.opening_hours, site)
    if isinstance(hours, Hours) and not hours.is_open(now.time()):
        return f"closed now (opens {hours.open:%H:%M} UTC)"
    if filters.max_distance_km is not None and site.kind != "dc" and ship_to is not None:
        km = haversine_km(ship_to, (site.lat, site.lon))
        if km > filters.max_distance_km:
            return f"{km:.0f} km away, beyond {filters.max_distance_km:g} km"
    return None


def capacity_left(site: Site, filters: Filters, used_today: int) -> int:
    """Packages the location can still ship today; unlimited when no capacity is set."""
    cap = for_location(filters.daily_capacity, site)
    if not isinstance(cap, int):
        return 1_000_000
    return max(0, cap - used_today)


def ship_to_point(
    postal_code: str | None,
    zones: Mapping[str, tuple[float, float]],
    sites: Sequence[tuple[str, float, float]],
) -> tuple[float, float] | None:
    """Where an order ships to, from its postal code: the longest matching zone prefix of the
    rules, else the location whose postal code shares the longest prefix (at least 3 chars)."""
    if not postal_code:
        return None
    code = postal_code.replace(" ", "").upper()
    for n in range(len(code), 0, -1):
        if code[:n] in zones:
            return zones[code[:n]]
    best: tuple[int, tuple[float, float]] | None = None
    for site_code, lat, lon in sites:
        shared = _shared_prefix(code, site_code.replace(" ", "").upper())
        if shared >= 3 and (best is None or shared > best[0]):
            best = (shared, (lat, lon))
    return best[1] if best else None


def _shared_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def sum_units(lines: Sequence[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for sku, qty in lines:
        out[sku] = out.get(sku, 0) + qty
    return out


# --- errors ------------------------------------------------------------------------------------


class IllegalTransition(Conflict):
    code = "illegal-fulfillment-transition"
    title = "Not allowed in the fulfillment order's current status"


class FulfillmentOrderNotFound(NotFound):
    code = "fulfillment-order-not-found"
    title = "Fulfillment order not found"


class FulfillmentOrderChanged(Conflict):
    code = "fulfillment-order-changed"
    title = "Fulfillment order changed concurrently; reload and retry"


class RoutingNotFound(NotFound):
    code = "routing-not-found"
    title = "No routing decision for this order"


class BadRejection(InvalidInput):
    code = "bad-rejection"
    title = "Rejected lines do not match the fulfillment order"


class WrongPickupCode(Conflict):
    code = "wrong-pickup-code"
    title = "Pickup code does not match"


class PickupExpired(Conflict):
    code = "pickup-expired"
    title = "The pickup window has passed"


class CurbsideNotOffered(Conflict):
    code = "curbside-not-offered"
    title = "This store does not offer curbside pickup"


class StoreKeyRequired(Forbidden):
    code = "store-key-required"
    title = "Only the store's own key may do this"


class SameDayUnavailable(Conflict):
    code = "same-day-unavailable"
    title = "Same-day delivery is not possible for this order"


class SlotFull(Conflict):
    code = "slot-full"
    title = "That delivery slot is fully booked"


class ReturnNotFound(NotFound):
    code = "return-not-found"
    title = "Return not found"


class BadReturn(InvalidInput):
    code = "bad-return"
    title = "These units cannot be returned"


class ExchangePaymentRequired(DomainError):
    code = "exchange-payment-required"
    status = 402
    title = "The replacement costs more: a payment token is needed for the difference"


class ReturnChanged(Conflict):
    code = "return-changed"
    title = "The return changed meanwhile; reload it"


class InvalidRules(InvalidInput):
    code = "invalid-routing-rules"
    title = "Invalid routing rules"


class ReplanningRaced(Conflict):
    code = "replanning-raced"
    title = "Stock moved while planning: nothing was changed"
