"""Inventory rules: available-to-promise, the hold state machine and the sourcing plan.

Pure Python: no SQLAlchemy, FastAPI or I/O. The repository enforces the same ATP rule in SQL
(one conditional UPDATE); these functions decide *what* to ask the database for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from omnicommerce.platform.errors import Conflict, InvalidInput, NotFound

Sku = str
RowKey = tuple[str, str]  # (sku, location_id): the lock order of every write

LOCATION_KINDS = frozenset({"dc", "store", "dark_store"})
CAPABILITIES = frozenset({"ship", "pickup", "curbside", "same_day"})


# --- errors ------------------------------------------------------------------------------------


class InsufficientStock(Conflict):
    code = "insufficient-stock"
    title = "Not enough stock"

    def __init__(self, shortages: Mapping[Sku, int]) -> None:
        short = dict(sorted(shortages.items()))
        detail = ", ".join(f"{sku}: {n} missing" for sku, n in short.items())
        super().__init__(f"not enough stock ({detail})", shortages=short)
        self.shortages = short


class UnknownLocation(NotFound):
    code = "unknown-location"
    title = "Unknown location"


class LocationExists(Conflict):
    code = "location-exists"
    title = "Location already exists"


class IllegalHoldTransition(Conflict):
    code = "illegal-hold-transition"
    title = "Illegal hold transition"


class InvalidStockChange(InvalidInput):
    code = "invalid-stock-change"
    title = "Invalid stock change"


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StockPosition:
    sku: Sku
    location_id: str
    on_hand: int
    reserved: int
    safety_stock: int = 0

    @property
    def key(self) -> RowKey:
        return (self.sku, self.location_id)


def raw_atp(p: StockPosition) -> int:
    """May be negative (a cycle count found fewer units than promised)."""
    return p.on_hand - p.reserved - p.safety_stock


def atp(p: StockPosition, buffer: int = 0) -> int:
    """Available to promise, as shown: never negative."""
    return max(0, raw_atp(p) - buffer)


def shortfall(p: StockPosition) -> int:
    """Units promised (or kept as safety stock) that are not on hand."""
    return max(0, -raw_atp(p))


class HoldState(StrEnum):
    HELD = "held"
    COMMITTED = "committed"
    RELEASED = "released"
    EXPIRED = "expired"


class HoldAction(StrEnum):
    COMMIT = "commit"
    RELEASE = "release"
    EXPIRE = "expire"
    CANCEL = "cancel"  # the order an allocation belongs to was cancelled


# The whole state machine: anything not listed is illegal. RELEASED and EXPIRED are terminal, so
# a hold gives its units back at most once.
HOLD_TRANSITIONS: Mapping[tuple[HoldState, HoldAction], HoldState] = {
    (HoldState.HELD, HoldAction.COMMIT): HoldState.COMMITTED,
    (HoldState.HELD, HoldAction.RELEASE): HoldState.RELEASED,
    (HoldState.HELD, HoldAction.EXPIRE): HoldState.EXPIRED,
    (HoldState.COMMITTED, HoldAction.CANCEL): HoldState.RELEASED,  # allocations given back
}

# Holds whose units are counted in stock_levels.reserved.
RESERVING_STATES = frozenset({HoldState.HELD, HoldState.COMMITTED})


def next_state(state: HoldState, action: HoldAction) -> HoldState:
    try:
        return HOLD_TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalHoldTransition(f"a {state} hold cannot {action}") from None


@dataclass(frozen=True, slots=True)
class Hold:
    id: str
    owner_id: str
    sku: Sku
    location_id: str
    quantity: int
    state: HoldState
    expires_at: datetime
    order_id: str | None = None

    @property
    def key(self) -> RowKey:
        return (self.sku, self.location_id)


@dataclass(frozen=True, slots=True)
class HoldPlan:
    sku: Sku
    location_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Allocation:
    sku: Sku
    location_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    sku: Sku
    location_id: str
    delta_on_hand: int
    delta_reserved: int
    # receive, adjust, transfer_out, transfer_in, cycle_count, reserve, release, expire, commit, cancel, sale
    reason: str
    reference: str | None
    actor: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class LocationInfo:
    id: str
    kind: str
    name: str
    capabilities: frozenset[str]
    lat: float | None
    lon: float | None
    postal_code: str
    address_line: str = ""
    city: str = ""
    country: str = ""
    active: bool = True


@dataclass(frozen=True, slots=True)
class LocationAtp:
    location_id: str
    kind: str
    atp: int
    distance_km: float | None = None


@dataclass(frozen=True, slots=True)
class SkuAvailability:
    sku: Sku
    total: int
    locations: list[LocationAtp] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """What one channel sees: ``visible`` empty means every location."""

    channel: str
    visible: frozenset[str] = frozenset()
    buffer: int = 0

    def sees(self, location_id: str) -> bool:
        return not self.visible or location_id in self.visible


@dataclass(frozen=True, slots=True)
class Strategy:
    """Where a plan may take units from, and the channel's buffer per location."""

    eligible: frozenset[str]
    buffer: int = 0


def eligible_locations(
    locations: Iterable[LocationInfo], rule: ChannelRule, capability: str, location_id: str | None
) -> frozenset[str]:
    """A given location is the only candidate; otherwise active, visible and capable ones."""
    return frozenset(
        loc.id
        for loc in locations
        if loc.active
        and rule.sees(loc.id)
        and capability in loc.capabilities
        and (location_id is None or loc.id == location_id)
    )


# --- planning ----------------------------------------------------------------------------------


def sum_lines(lines: Iterable[tuple[Sku, int]]) -> dict[Sku, int]:
    out: dict[Sku, int] = {}
    for sku, qty in lines:
        if qty < 0:
            raise InvalidInput(f"quantity for {sku!r} must not be negative")
        out[sku] = out.get(sku, 0) + qty
    return out


def plan_holds(
    demand: Mapping[Sku, int], positions: Sequence[StockPosition], strategy: Strategy
) -> list[HoldPlan]:
    """Take each sku's units from eligible locations, most ATP first (ties by id), splitting
    across locations when one cannot cover it. Raises ``InsufficientStock`` with every sku short."""
    by_sku: dict[Sku, list[StockPosition]] = {}
    for p in positions:
        if p.location_id in strategy.eligible:
            by_sku.setdefault(p.sku, []).append(p)
    plans: list[HoldPlan] = []
    shortages: dict[Sku, int] = {}
    for sku, wanted in sorted(demand.items()):
        ranked = sorted(by_sku.get(sku, []), key=lambda p: (-atp(p, strategy.buffer), p.location_id))
        missing = wanted
        for p in ranked:
            take = min(missing, atp(p, strategy.buffer))
            if take > 0:
                plans.append(HoldPlan(sku, p.location_id, take))
                missing -= take
        if missing > 0:
            shortages[sku] = missing
    if shortages:
        raise InsufficientStock(shortages)
    return sorted(plans, key=lambda h: (h.sku, h.location_id))


def credit(positions: Iterable[StockPosition], units: Mapping[RowKey, int]) -> list[StockPosition]:
    """Positions as seen by an owner about to give back ``units``: its own holds never block it."""
    return [replace(p, reserved=p.reserved - units.get(p.key, 0)) for p in positions]


@dataclass(frozen=True, slots=True)
class Rebalance:
    """How an owner's active holds move to cover a new demand exactly."""

    keep: list[Hold]
    release: list[Hold]
    missing: dict[Sku, int]


def rebalance(holds: Sequence[Hold], demand: Mapping[Sku, int], eligible: frozenset[str]) -> Rebalance:
    """Keep holds at eligible locations while they fit the demand (largest first); release the
    rest (surplus, or sitting where this demand may not be served from); ``missing`` is the rest."""
    keep: list[Hold] = []
    release: list[Hold] = []
    missing: dict[Sku, int] = {}
    for sku in sorted(set(demand) | {h.sku for h in holds}):
        left = demand.get(sku, 0)
        for hold in sorted((h for h in holds if h.sku == sku), key=lambda h: (-h.quantity, h.id)):
            if hold.location_id in eligible and hold.quantity <= left:
                keep.append(hold)
                left -= hold.quantity
            else:
                release.append(hold)
        if left > 0:
            missing[sku] = left
    return Rebalance(keep, release, missing)


def units_by_row(items: Iterable[Hold | HoldPlan | Allocation]) -> dict[RowKey, int]:
    out: dict[RowKey, int] = {}
    for item in items:
        key = (item.sku, item.location_id)
        out[key] = out.get(key, 0) + item.quantity
    return out


# --- geography ---------------------------------------------------------------------------------

EARTH_RADIUS_KM = 6371.0088


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def parse_near(value: str) -> tuple[float, float]:
    """``"lat,lon"`` in degrees; anything else is an ``InvalidInput``."""
    try:
        lat_s, lon_s = value.split(",")
        lat, lon = float(lat_s), float(lon_s)
    except ValueError:
        raise InvalidNear("near must be 'lat,lon' in decimal degrees") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not all(map(math.isfinite, (lat, lon))):
        raise InvalidNear("near is outside -90..90, -180..180")
    return (lat, lon)


class InvalidNear(InvalidInput):
    code = "invalid-near"
    title = "Invalid location"
