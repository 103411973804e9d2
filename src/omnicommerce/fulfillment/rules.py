"""Routing rules as data, one document per channel: the filters that decide which locations are
candidates, and the objectives (the engine's cost model). Stored as JSON, edited through
``PUT /api/v1/fulfillment/rules/{channel}``; a channel without its own document uses the defaults.
"""

from __future__ import annotations

from datetime import time
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from omnicommerce.fulfillment.domain import Filters, Hours, Slot
from omnicommerce.fulfillment.routing import CostModel
from omnicommerce.inventory.domain import CAPABILITIES, LOCATION_KINDS

_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"
LocationKey = Annotated[str, Field(min_length=1, max_length=40, description="A location id or kind")]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpeningHours(_Doc):
    open: str = Field(pattern=_HHMM, description="HH:MM, UTC")
    close: str = Field(pattern=_HHMM, description="HH:MM, UTC; before `open` spans midnight")


class Zone(_Doc):
    postal_prefix: str = Field(min_length=1, max_length=20)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class FilterRules(_Doc):
    required_capability: str = "ship"
    eligible_kinds: list[str] = Field(default_factory=lambda: sorted(LOCATION_KINDS))
    eligible_locations: list[str] = Field(default_factory=list, description="Empty: every location")
    excluded_locations: list[str] = Field(default_factory=list)
    max_distance_km: float | None = Field(default=None, gt=0, description="Stores only; DCs ship anywhere")
    daily_capacity: dict[LocationKey, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, description="Packages per UTC day, by location id or kind"
    )
    opening_hours: dict[LocationKey, OpeningHours] = Field(default_factory=dict)

    @field_validator("required_capability")
    @classmethod
    def _known_capability(cls, v: str) -> str:
        if v not in CAPABILITIES:
            raise ValueError(f"unknown capability; one of {', '.join(sorted(CAPABILITIES))}")
        return v

    @field_validator("eligible_kinds")
    @classmethod
    def _known_kinds(cls, v: list[str]) -> list[str]:
        if bad := sorted(set(v) - LOCATION_KINDS):
            raise ValueError(f"unknown location kind(s) {', '.join(bad)}")
        return v


class ObjectiveRules(_Doc):
    """Costs in currency units (floats, objectives only: never charged)."""

    per_km: float = Field(default=0.01, ge=0)
    per_kg: float = Field(default=0.6, ge=0)
    split_penalty: float = Field(default=1.5, ge=0, description="Extra cost per package beyond the first")
    delay_cost_per_unit: float = Field(default=4.0, ge=0)
    lost_sale_cost_per_unit: float = Field(default=40.0, ge=0)
    capacity_balance_weight: float = Field(default=0.0, ge=0)
    pick_pack_cost: dict[LocationKey, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {"dc": 3.0, "dark_store": 4.0, "store": 5.0},
        description="Base cost per package, by location id or kind",
    )
    slow_stock_bonus: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description='"location_id:sku" -> bonus per unit shipped from there'
    )

    @field_validator("slow_stock_bonus")
    @classmethod
    def _keyed_by_location_and_sku(cls, v: dict[str, float]) -> dict[str, float]:
        if bad := [k for k in v if k.count(":") != 1 or k.startswith(":") or k.endswith(":")]:
            raise ValueError(f'keys must be "location_id:sku", not {bad[0]!r}')
        return v


class SlotRule(_Doc):
    start: str = Field(pattern=_HHMM, description="HH:MM, UTC")
    end: str = Field(pattern=_HHMM, description="HH:MM, UTC")
    capacity: int = Field(ge=0, le=100_000, description="Deliveries per store in this slot")


def _default_slots() -> list[SlotRule]:
    return [
        SlotRule(start="12:00", end="14:00", capacity=10),
        SlotRule(start="16:00", end="18:00", capacity=10),
        SlotRule(start="18:00", end="20:00", capacity=10),
    ]


class SameDayRules(_Doc):
    enabled: bool = True
    radius_km: float = Field(default=25.0, gt=0, description="Stores deliver within this distance")
    cutoff: str = Field(default="15:00", pattern=_HHMM, description="No same-day booking after this (UTC)")
    slots: list[SlotRule] = Field(default_factory=_default_slots, max_length=48)


class RoutingRules(_Doc):
    filters: FilterRules = Field(default_factory=FilterRules)
    objectives: ObjectiveRules = Field(default_factory=ObjectiveRules)
    zones: list[Zone] = Field(
        default_factory=list, description="Ship-to coordinates by postal-code prefix (longest match wins)"
    )
    pickup_hold_hours: int = Field(default=72, ge=1, le=24 * 30, description="How long a pickup waits")
    pickup_reroute_km: float = Field(
        default=25.0,
        ge=0,
        description="Units a pickup store cannot find wait at another pickup store this near that holds "
        "them all (0: never; they are cancelled instead)",
    )
    same_day: SameDayRules = Field(default_factory=SameDayRules)


DEFAULT_RULES = RoutingRules()


def filters_of(rules: RoutingRules) -> Filters:
    f = rules.filters
    return Filters(
        required_capability=f.required_capability,
        eligible_kinds=frozenset(f.eligible_kinds),
        eligible_locations=frozenset(f.eligible_locations),
        excluded_locations=frozenset(f.excluded_locations),
        max_distance_km=f.max_distance_km,
        daily_capacity=dict(f.daily_capacity),
        opening_hours={
            k: Hours(time.fromisoformat(h.open), time.fromisoformat(h.close))
            for k, h in f.opening_hours.items()
        },
    )


# A paid order is never left unserved to save shipping: its units weigh this much per unit
# unserved, more than any package costs, whatever the rules say for open (unpaid) demand.
PAID_LOST_SALE_COST = 10_000.0


def cost_model_of(rules: RoutingRules, *, distance_known: bool) -> CostModel:
    """The engine's cost model for a paid order; with no ship-to point distance cannot tell
    candidates apart, so it does not count."""
    o = rules.objectives
    bonus = {}
    for key, value in o.slow_stock_bonus.items():
        loc, sku = key.split(":")
        bonus[(loc, sku)] = value
    return CostModel(
        per_km=o.per_km if distance_known else 0.0,
        per_kg=o.per_kg,
        split_penalty=o.split_penalty,
        delay_cost_per_unit=o.delay_cost_per_unit,
        lost_sale_cost_per_unit=max(o.lost_sale_cost_per_unit, PAID_LOST_SALE_COST),
        capacity_balance_weight=o.capacity_balance_weight,
        slow_stock_bonus=bonus,
    )


def pick_pack_cost(rules: RoutingRules, location_id: str, kind: str) -> float:
    table = rules.objectives.pick_pack_cost
    return float(table.get(location_id, table.get(kind, 5.0)))


def zones_of(rules: RoutingRules) -> dict[str, tuple[float, float]]:
    return {z.postal_prefix.replace(" ", "").upper(): (z.lat, z.lon) for z in rules.zones}


def slots_of(rules: RoutingRules) -> list[Slot]:
    return [
        Slot(time.fromisoformat(s.start), time.fromisoformat(s.end), s.capacity) for s in rules.same_day.slots
    ]


def cutoff_of(rules: RoutingRules) -> time:
    return time.fromisoformat(rules.same_day.cutoff)
