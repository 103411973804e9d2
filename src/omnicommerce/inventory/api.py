"""Inventory HTTP routes: locations, channel stock rules, stock movements, positions, ledger,
availability. Each route builds the command, calls the service and maps the result."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from omnicommerce.inventory import service
from omnicommerce.inventory.domain import (
    InsufficientStock,
    InvalidNear,
    InvalidStockChange,
    LocationExists,
    LocationInfo,
    UnknownLocation,
    parse_near,
)
from omnicommerce.inventory.schemas import (
    AdjustmentCreate,
    Availability,
    CycleCountCreate,
    LedgerEntry,
    Location,
    LocationAvailability,
    LocationCreate,
    Position,
    ReceiptCreate,
    StockRule,
    StockRuleUpdate,
    TransferCreate,
)
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.channels import UnknownChannel, get_channel, resolve_channel
from omnicommerce.platform.errors import Forbidden, problem_schema
from omnicommerce.platform.idempotency import IdempotencyConflict
from omnicommerce.platform.web import (
    BadCursor,
    IdempotencyKey,
    Page,
    ReadUoW,
    Route,
    UoW,
    decode_cursor,
    page_of,
    require,
)

router = APIRouter(tags=["inventory"], route_class=Route)

InventoryRead = Annotated[Principal, Depends(require(Scope.INVENTORY_READ))]
InventoryWrite = Annotated[Principal, Depends(require(Scope.INVENTORY_WRITE))]
Limit = Annotated[int, Query(ge=1, le=500)]


def _location(loc: LocationInfo) -> Location:
    return Location(
        id=loc.id,
        name=loc.name,
        kind=loc.kind,
        address_line=loc.address_line,
        city=loc.city,
        postal_code=loc.postal_code,
        country=loc.country,
        lat=loc.lat,
        lon=loc.lon,
        capabilities=sorted(loc.capabilities),
        active=loc.active,
    )


# --- locations -----------------------------------------------------------------------------------


@router.post(
    "/locations",
    status_code=201,
    response_model=Location,
    responses=problem_schema(LocationExists, Forbidden, IdempotencyConflict),
)
def create_location(
    body: LocationCreate, actor: InventoryWrite, uow: UoW, idem: IdempotencyKey
) -> JSONResponse:
    return idem.run(uow, body, lambda: _location(service.create_location(uow, actor, body)))


@router.get("/locations", response_model=Page[Location], responses=problem_schema(BadCursor))
def list_locations(
    actor: InventoryRead, uow: ReadUoW, cursor: str | None = None, limit: Limit = 100
) -> Page[Location]:
    found = service.list_locations(uow, actor, after=decode_cursor(cursor), limit=limit + 1)
    return page_of([_location(loc) for loc in found], limit, lambda loc: loc.id)


@router.get("/locations/{location_id}", response_model=Location, responses=problem_schema(UnknownLocation))
def get_location(location_id: str, actor: InventoryRead, uow: ReadUoW) -> Location:
    return _location(service.read_location(uow, actor, location_id))


@router.put(
    "/channels/{channel}/stock-rule",
    response_model=StockRule,
    responses=problem_schema(UnknownChannel, UnknownLocation, Forbidden),
)
def put_stock_rule(channel: str, body: StockRuleUpdate, actor: InventoryWrite, uow: UoW) -> StockRule:
    if actor.location is not None or actor.channel is not None:
        raise Forbidden("a credential bound to a channel or location cannot set channel stock rules")
    rule = service.set_channel_rule(uow, channel, body.visible_locations, body.buffer)
    uow.commit()
    return StockRule(channel=rule.channel, visible_locations=sorted(rule.visible), buffer=rule.buffer)


# --- stock movements -------------------------------------------------------------------------------


@router.post(
    "/stock/receipts", status_code=201, responses=problem_schema(UnknownLocation, IdempotencyConflict)
)
def receive(body: ReceiptCreate, actor: InventoryWrite, uow: UoW, idem: IdempotencyKey) -> JSONResponse:
    return idem.run(uow, body, lambda: service.receive(uow, actor, body))


@router.post(
    "/stock/adjustments",
    status_code=201,
    responses=problem_schema(UnknownLocation, InvalidStockChange, IdempotencyConflict),
)
def adjust(body: AdjustmentCreate, actor: InventoryWrite, uow: UoW, idem: IdempotencyKey) -> JSONResponse:
    return idem.run(uow, body, lambda: service.adjust(uow, actor, body))


@router.post(
    "/stock/transfers",
    status_code=201,
    responses=problem_schema(UnknownLocation, InsufficientStock, IdempotencyConflict),
)
def transfer(body: TransferCreate, actor: InventoryWrite, uow: UoW, idem: IdempotencyKey) -> JSONResponse:
    return idem.run(uow, body, lambda: service.transfer(uow, actor, body))


@router.post(
    "/stock/cycle-counts", status_code=201, responses=problem_schema(UnknownLocation, IdempotencyConflict)
)
def cycle_count(
    body: CycleCountCreate, actor: InventoryWrite, uow: UoW, idem: IdempotencyKey
) -> JSONResponse:
    return idem.run(uow, body, lambda: service.cycle_count(uow, actor, body))


# --- reads -----------------------------------------------------------------------------------------


@router.get("/stock", response_model=Page[Position], responses=problem_schema(UnknownLocation, BadCursor))
def list_stock(
    actor: InventoryRead,
    uow: ReadUoW,
    sku: str | None = None,
    location_id: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> Page[Position]:
    found = service.list_positions(
        uow, actor, sku=sku, location_id=location_id, after=_row_after(decode_cursor(cursor)), limit=limit + 1
    )
    items = [
        Position(
            sku=p.sku,
            location_id=p.location_id,
            on_hand=p.on_hand,
            reserved=p.reserved,
            safety_stock=p.safety_stock,
            atp=max(0, p.on_hand - p.reserved - p.safety_stock),
        )
        for p in found
    ]
    # The sku goes in hex: cursors carry only [A-Za-z0-9_.:-], and location slugs have no ".".
    return page_of(items, limit, lambda p: f"{p.sku.encode().hex()}.{p.location_id}")


def _row_after(cursor: str | None) -> tuple[str, str] | None:
    if cursor is None:
        return None
    sku_hex, _, location_id = cursor.partition(".")
    try:
        return bytes.fromhex(sku_hex).decode(), location_id
    except ValueError:
        raise BadCursor("cursor is not one this API returned") from None


@router.get(
    "/stock/ledger", response_model=Page[LedgerEntry], responses=problem_schema(UnknownLocation, BadCursor)
)
def list_ledger(
    actor: InventoryRead,
    uow: ReadUoW,
    sku: str | None = None,
    location_id: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> Page[LedgerEntry]:
    rows = service.list_ledger(
        uow, actor, sku=sku, location_id=location_id, after=decode_cursor(cursor), limit=limit + 1
    )
    return page_of([LedgerEntry.model_validate(r, from_attributes=True) for r in rows], limit, lambda e: e.id)


@router.get(
    "/availability", response_model=list[Availability], responses=problem_schema(InvalidNear, UnknownChannel)
)
def get_availability(
    actor: InventoryRead,
    uow: ReadUoW,
    sku: Annotated[list[str], Query(min_length=1, max_length=100)],
    channel: str | None = None,
    near: str | None = None,
) -> list[Availability]:
    acting = resolve_channel(actor.channel, channel)
    get_channel(uow.conn, acting)
    found = service.availability(uow, skus=sku, channel=acting, near=parse_near(near) if near else None)
    return [
        Availability(
            sku=a.sku,
            total=a.total,
            locations=[
                LocationAvailability(
                    location_id=x.location_id, kind=x.kind, atp=x.atp, distance_km=x.distance_km
                )
                for x in a.locations
            ],
        )
        for a in found
    ]
