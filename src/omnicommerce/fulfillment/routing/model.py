"""The routing engine's contract: what the fulfillment context passes in and gets back.

Pure values (no SQL, no I/O). Costs are floats in the retailer's currency *units* (not minor units):
they are objectives to minimise, never amounts that are charged or stored as money.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

LocationKind = Literal["dc", "store", "dark_store"]
Method = Literal["none", "enumeration", "milp", "greedy", "batch-milp", "naive-greedy", "cost-greedy"]

_NO_BONUS: Mapping[tuple[str, str], float] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Candidate:
    """A location that passed the rule filters (capability, channel, distance, hours, ...)."""

    location_id: str
    kind: str  # "dc" | "store" | "dark_store"
    lat: float
    lon: float
    stock: Mapping[str, int]  # sku -> units available to promise here now
    capacity_left: int  # packages it can still ship today (0 = none today: it may ship later, delayed)
    pick_pack_cost: float  # base cost per package at this location (stores dearer than DCs)


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    quantity: int
    weight_kg: float  # per unit


@dataclass(frozen=True, slots=True)
class OrderToRoute:
    order_id: str
    lines: tuple[Line, ...]
    lat: float  # ship-to point
    lon: float


@dataclass(frozen=True, slots=True)
class CostModel:
    """Rules-as-data objectives. One package from location L for an order costs
    ``per_package + L.pick_pack_cost + per_km * km(L, ship-to)`` (+ the capacity-balance term), each unit
    ``per_kg * weight_kg`` (+ ``delay_cost_per_unit`` when its package cannot leave today,
    - the slow-stock bonus), each package beyond the first ``split_penalty`` more, and each unit
    nobody can serve ``lost_sale_cost_per_unit``."""

    per_package: float = 0.0  # carrier base rate per parcel (the benchmark uses 5.0)
    per_km: float = 0.002
    per_kg: float = 0.6
    split_penalty: float = 3.0  # extra cost per package beyond the first
    delay_cost_per_unit: float = 4.0
    lost_sale_cost_per_unit: float = 40.0
    capacity_balance_weight: float = 0.0  # per package: weight / (1 + capacity_left); prefers spare capacity
    slow_stock_bonus: Mapping[tuple[str, str], float] = field(default_factory=lambda: _NO_BONUS)
    # (location_id, sku) -> bonus per unit shipped from there (clear slow stock)


@dataclass(frozen=True, slots=True)
class Assignment:
    line_index: int
    location_id: str
    quantity: int
    delayed: bool  # the package cannot leave today (no capacity left at the location)


@dataclass(frozen=True, slots=True)
class CandidateReport:
    """Explainability: one row per candidate (``GET /orders/{id}/routing``)."""

    location_id: str
    chosen: bool
    package_cost: float  # what one package from here would cost for this order
    units_available: int  # of the order's SKUs (capped at what the order asks for)
    reason: str  # "chosen", "no stock for any line", "dearer than <loc> by 3.20", ...


@dataclass(frozen=True, slots=True)
class Plan:
    order_id: str
    assignments: tuple[Assignment, ...]
    unfilled: tuple[tuple[int, int], ...]  # (line_index, quantity) nobody can serve
    cost: float
    packages: int
    method: str  # "milp" | "enumeration" | "greedy" (budget ran out) | "batch-milp" | "none"
    candidates: tuple[CandidateReport, ...]

    @property
    def locations(self) -> tuple[str, ...]:
        """The shipping locations, in the order they first appear (one package each)."""
        return tuple(dict.fromkeys(a.location_id for a in self.assignments))


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Plans for every order of a batch, with the proven lower bound on the batch optimum."""

    plans: tuple[Plan, ...]
    cost: float
    bound: float  # no feasible batch plan costs less than this
    bound_kind: Literal["dual", "lagrangian", "exact"]  # dual = HiGHS MILP dual bound
    seconds: float
    components: int  # sub-problems solved: orders that compete for nothing + MILP neighbourhoods
    status: str  # "optimal" (competing orders solved as one MILP within mip_rel_gap) | "time-limit"

    @property
    def gap(self) -> float:
        """(cost - bound) / cost; 0 when proven optimal."""
        return 0.0 if self.cost <= 0 else max(0.0, (self.cost - self.bound) / self.cost)
