"""Routing engine: which locations ship which units of an order, at least cost (MILP with HiGHS).

Pure Python over plain values (no SQL, no FastAPI); the fulfillment service feeds it candidates
and stores the plan. See docs/routing.md.
"""

from omnicommerce.fulfillment.routing.batch import route_batch
from omnicommerce.fulfillment.routing.engine import route_order
from omnicommerce.fulfillment.routing.model import (
    Assignment,
    BatchResult,
    Candidate,
    CandidateReport,
    CostModel,
    Line,
    OrderToRoute,
    Plan,
)

__all__ = [
    "Assignment",
    "BatchResult",
    "Candidate",
    "CandidateReport",
    "CostModel",
    "Line",
    "OrderToRoute",
    "Plan",
    "route_batch",
    "route_order",
]
