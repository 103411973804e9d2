"""Segment HTTP routes: create, list, read, replace, delete, preview, members. Each route builds
the command, calls the service and maps the result."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from omnicommerce.customers.segments import service
from omnicommerce.customers.segments.domain import InvalidSegmentRule, SegmentNameTaken, SegmentNotFound
from omnicommerce.customers.segments.schemas import (
    Segment,
    SegmentCreate,
    SegmentMember,
    SegmentPreview,
    SegmentPreviewRequest,
    SegmentUpdate,
)
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.errors import problem_schema
from omnicommerce.platform.idempotency import IdempotencyConflict
from omnicommerce.platform.web import (
    BadCursor,
    IdempotencyKey,
    Page,
    ReadUoW,
    Route,
    UoW,
    decode_cursor,
    model_json,
    page_of,
    require,
)

router = APIRouter(prefix="/segments", tags=["segments"], route_class=Route)

SegmentsRead = Annotated[Principal, Depends(require(Scope.SEGMENTS_READ))]
SegmentsWrite = Annotated[Principal, Depends(require(Scope.SEGMENTS_WRITE))]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.post(
    "",
    status_code=201,
    response_model=Segment,
    responses=problem_schema(InvalidSegmentRule, SegmentNameTaken, IdempotencyConflict),
)
def create_segment(body: SegmentCreate, actor: SegmentsWrite, uow: UoW, idem: IdempotencyKey) -> JSONResponse:
    """Save a segment and evaluate it over every profile at once; `size` is its membership."""
    return idem.run(uow, body, lambda: service.create_segment(uow, actor, body))


@router.post("/preview", response_model=SegmentPreview, responses=problem_schema(InvalidSegmentRule))
def preview_segment(body: SegmentPreviewRequest, actor: SegmentsRead, uow: ReadUoW) -> JSONResponse:
    """How many profiles the rules hold now, with a sample of them; nothing is saved."""
    return model_json(service.preview(uow, body.rules, sample_size=body.sample_size))


@router.get("", response_model=Page[Segment], responses=problem_schema(BadCursor))
def list_segments(
    actor: SegmentsRead, uow: ReadUoW, cursor: str | None = None, limit: Limit = 100
) -> Page[Segment]:
    found = service.list_segments(uow, after=decode_cursor(cursor), limit=limit + 1)
    return page_of(found, limit, lambda s: s.id)


@router.get("/{segment_id}", response_model=Segment, responses=problem_schema(SegmentNotFound))
def get_segment(segment_id: str, actor: SegmentsRead, uow: ReadUoW) -> JSONResponse:
    return model_json(service.get_segment(uow, segment_id))


@router.put(
    "/{segment_id}",
    response_model=Segment,
    responses=problem_schema(SegmentNotFound, InvalidSegmentRule, SegmentNameTaken),
)
def replace_segment(segment_id: str, body: SegmentUpdate, actor: SegmentsWrite, uow: UoW) -> JSONResponse:
    """Replace name, description and rules; members are re-evaluated in the same transaction."""
    segment = service.update_segment(uow, actor, segment_id, body)
    uow.commit()
    return model_json(segment)


@router.delete("/{segment_id}", status_code=204, responses=problem_schema(SegmentNotFound))
def delete_segment(segment_id: str, actor: SegmentsWrite, uow: UoW) -> Response:
    service.delete_segment(uow, actor, segment_id)
    uow.commit()
    return Response(status_code=204)


@router.get(
    "/{segment_id}/members",
    response_model=Page[SegmentMember],
    responses=problem_schema(SegmentNotFound, BadCursor),
)
def list_members(
    segment_id: str, actor: SegmentsRead, uow: ReadUoW, cursor: str | None = None, limit: Limit = 100
) -> Page[SegmentMember]:
    found = service.list_members(uow, segment_id, after=decode_cursor(cursor), limit=limit + 1)
    return page_of(found, limit, lambda m: m.customer_id)
