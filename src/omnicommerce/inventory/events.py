"""Events the inventory publishes (``omni.inventory.<type>``), each with the facts consumers need."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel

from omnicommerce.platform.events import Event


class Line(BaseModel):
    sku: str
    quantity: int


class HoldLine(BaseModel):
    hold_id: str
    sku: str
    location_id: str
    quantity: int


class CountLine(BaseModel):
    sku: str
    counted: int
    difference: int


class AllocationLine(BaseModel):
    sku: str
    location_id: str
    quantity: int


class _InventoryEvent(Event):
    context: ClassVar[str] = "inventory"


class StockReceived(_InventoryEvent):
    type: Literal["stock.received"] = "stock.received"
    version: Literal[1] = 1
    location_id: str
    lines: list[Line]
    reference: str | None


class StockAdjusted(_InventoryEvent):
    """A manual correction or a POS sale (``reason`` "sale", ``reference`` the order id)."""

    type: Literal["stock.adjusted"] = "stock.adjusted"
    version: Literal[1] = 1
    location_id: str
    lines: list[Line]  # quantity is the signed change of on_hand
    reason: str
    reference: str | None


class StockTransferred(_InventoryEvent):
    type: Literal["stock.transferred"] = "stock.transferred"
    version: Literal[1] = 1
    transfer_id: str
    from_location_id: str
    to_location_id: str
    lines: list[Line]


class StockCounted(_InventoryEvent):
    type: Literal["stock.counted"] = "stock.counted"
    version: Literal[1] = 1
    location_id: str
    counts: list[CountLine]


class StockReserved(_InventoryEvent):
    type: Literal["stock.reserved"] = "stock.reserved"
    version: Literal[1] = 1
    owner_id: str
    channel: str
    holds: list[HoldLine]
    expires_at: datetime


class HoldReleased(_InventoryEvent):
    type: Literal["hold.released"] = "hold.released"
    version: Literal[1] = 1
    owner_id: str
    reason: str
    holds: list[HoldLine]


class HoldExpired(_InventoryEvent):
    type: Literal["hold.expired"] = "hold.expired"
    version: Literal[1] = 1
    owner_id: str
    holds: list[HoldLine]


class StockCommitted(_InventoryEvent):
    type: Literal["stock.committed"] = "stock.committed"
    version: Literal[1] = 1
    owner_id: str
    order_id: str
    allocations: list[AllocationLine]


class AllocationReleased(_InventoryEvent):
    """A cancelled order's allocations went back to stock (``reserved`` fell by them); once per order."""

    type: Literal["allocation.released"] = "allocation.released"
    version: Literal[1] = 1
    order_id: str
    reason: str
    allocations: list[AllocationLine]


class InventoryShortfall(_InventoryEvent):
    """More units are promised (or kept as safety stock) at a location than are on hand."""

    type: Literal["inventory.shortfall"] = "inventory.shortfall"
    version: Literal[1] = 1
    sku: str
    location_id: str
    on_hand: int
    reserved: int
    safety_stock: int
    missing: int
    cause: str  # cycle_count | adjust | sale


InventoryEvent = (
    StockReceived
    | StockAdjusted
    | StockTransferred
    | StockCounted
    | StockReserved
    | HoldReleased
    | HoldExpired
    | StockCommitted
    | AllocationReleased
    | InventoryShortfall
)
