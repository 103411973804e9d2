"""Request and response shapes of the inventory API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

LocationId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
SkuStr = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
Quantity = Annotated[int, Field(gt=0, le=1_000_000)]
Capability = Literal["ship", "pickup", "curbside", "same_day"]
LocationKind = Literal["dc", "store", "dark_store"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocationCreate(_In):
    id: LocationId
    name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    kind: LocationKind
    address_line: str = Field("", max_length=200)
    city: str = Field("", max_length=120)
    postal_code: str = Field("", max_length=20)
    country: str = Field("", max_length=2)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    capabilities: list[Capability] = Field(default_factory=list)
    active: bool = True


class Location(BaseModel):
    id: str
    name: str
    kind: str
    address_line: str
    city: str
    postal_code: str
    country: str
    lat: float | None
    lon: float | None
    capabilities: list[str]
    active: bool


class StockRuleUpdate(_In):
    visible_locations: list[LocationId] = Field(default_factory=list, description="Empty: every location")
    buffer: int = Field(0, ge=0, le=1_000_000, description="Units hidden from the channel per location")


class StockRule(BaseModel):
    channel: str
    visible_locations: list[str]
    buffer: int


class StockLine(_In):
    sku: SkuStr
    quantity: Quantity


def _unique_skus(lines: list[StockLine]) -> list[StockLine]:
    if len({line.sku for line in lines}) != len(lines):
        raise ValueError("each sku may appear once")
    return lines


class ReceiptCreate(_In):
    location_id: LocationId
    lines: Annotated[list[StockLine], Field(min_length=1, max_length=1000)]
    reference: str | None = Field(None, max_length=64)

    @field_validator("lines")
    @classmethod
    def check_unique(cls, lines: list[StockLine]) -> list[StockLine]:
        return _unique_skus(lines)


class AdjustmentCreate(_In):
    location_id: LocationId
    sku: SkuStr
    delta: int = Field(ge=-1_000_000, le=1_000_000)
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200)]

    @field_validator("delta")
    @classmethod
    def check_nonzero(cls, v: int) -> int:
        if v == 0:
            raise ValueError("delta must not be 0")
        return v


class TransferCreate(_In):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_location_id: LocationId = Field(alias="from")
    to_location_id: LocationId = Field(alias="to")
    lines: Annotated[list[StockLine], Field(min_length=1, max_length=1000)]

    @field_validator("lines")
    @classmethod
    def check_unique(cls, lines: list[StockLine]) -> list[StockLine]:
        return _unique_skus(lines)

    @model_validator(mode="after")
    def check_two_places(self) -> TransferCreate:
        if self.from_location_id == self.to_location_id:
            raise ValueError("from and to must differ")
        return self


class CountLine(_In):
    sku: SkuStr
    counted: int = Field(ge=0, le=1_000_000)


class CycleCountCreate(_In):
    location_id: LocationId
    counts: Annotated[list[CountLine], Field(min_length=1, max_length=1000)]

    @field_validator("counts")
    @classmethod
    def check_unique(cls, counts: list[CountLine]) -> list[CountLine]:
        if len({c.sku for c in counts}) != len(counts):
            raise ValueError("each sku may appear once")
        return counts


class Position(BaseModel):
    sku: str
    location_id: str
    on_hand: int
    reserved: int
    safety_stock: int
    atp: int


class StockChange(BaseModel):
    """What a receipt, adjustment, transfer or count did: the positions afterwards."""

    id: str
    kind: Literal["receipt", "adjustment", "transfer", "cycle_count"]
    positions: list[Position]


class LedgerEntry(BaseModel):
    id: str
    sku: str
    location_id: str
    delta_on_hand: int
    delta_reserved: int
    reason: str
    reference: str | None
    note: str | None
    actor: str
    at: datetime


class LocationAvailability(BaseModel):
    location_id: str
    kind: str
    atp: int
    distance_km: float | None


class Availability(BaseModel):
    sku: str
    total: int
    locations: list[LocationAvailability]
