"""Webhooks HTTP routes (admin): endpoints, the delivery log, replay."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from omnicommerce.integrations import service
from omnicommerce.integrations.domain import (
    DeliveryNotFound,
    DeliveryNotReplayable,
    DeliveryStatus,
    Endpoint,
    EndpointNotFound,
    InvalidWebhookUrl,
    UnknownEventType,
)
from omnicommerce.integrations.schemas import (
    EndpointCreate,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreated,
)
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.errors import problem_schema
from omnicommerce.platform.idempotency import IdempotencyConflict
from omnicommerce.platform.web import (
    AppSettings,
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

router = APIRouter(prefix="/webhooks", tags=["webhooks"], route_class=Route)

Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]
Limit = Annotated[int, Query(ge=1, le=500)]


def _endpoint(e: Endpoint) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=e.id,
        url=e.url,
        description=e.description,
        event_types=list(e.event_types),
        active=e.active,
        created_at=e.created_at,
    )


@router.post(
    "/endpoints",
    status_code=201,
    response_model=WebhookEndpointCreated,
    responses=problem_schema(InvalidWebhookUrl, UnknownEventType, IdempotencyConflict),
    summary="Subscribe an endpoint to event types (the signing secret is shown once)",
)
def create_endpoint(
    body: EndpointCreate, actor: Admin, uow: UoW, idem: IdempotencyKey, settings: AppSettings
) -> JSONResponse:
    def create() -> WebhookEndpointCreated:
        endpoint, secret = service.create_endpoint(
            uow, actor, body, allow_private=settings.webhook_allow_private_networks
        )
        return WebhookEndpointCreated(**_endpoint(endpoint).model_dump(), secret=secret)

    return idem.run(uow, body, create)


@router.get("/endpoints", response_model=Page[WebhookEndpoint], responses=problem_schema(BadCursor))
def list_endpoints(
    actor: Admin, uow: ReadUoW, cursor: str | None = None, limit: Limit = 100
) -> Page[WebhookEndpoint]:
    found = service.list_endpoints(uow, actor, after=decode_cursor(cursor), limit=limit + 1)
    return page_of([_endpoint(e) for e in found], limit, lambda e: e.id)


@router.get(
    "/endpoints/{endpoint_id}", response_model=WebhookEndpoint, responses=problem_schema(EndpointNotFound)
)
def get_endpoint(endpoint_id: str, actor: Admin, uow: ReadUoW) -> WebhookEndpoint:
    return _endpoint(service.get_endpoint(uow, actor, endpoint_id))


@router.delete(
    "/endpoints/{endpoint_id}",
    response_model=WebhookEndpoint,
    responses=problem_schema(EndpointNotFound),
    summary="Disable an endpoint (pending deliveries are dropped; the log stays)",
)
def disable_endpoint(endpoint_id: str, actor: Admin, uow: UoW) -> JSONResponse:
    endpoint = _endpoint(service.disable_endpoint(uow, actor, endpoint_id))
    uow.commit()
    return model_json(endpoint)


@router.get(
    "/endpoints/{endpoint_id}/deliveries",
    response_model=Page[WebhookDelivery],
    responses=problem_schema(EndpointNotFound, BadCursor),
    summary="The delivery log of an endpoint, newest first",
)
def list_deliveries(
    endpoint_id: str,
    actor: Admin,
    uow: ReadUoW,
    status: Literal["pending", "succeeded", "failed"] | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> Page[WebhookDelivery]:
    found = service.list_deliveries(
        uow,
        actor,
        endpoint_id,
        status=DeliveryStatus(status) if status else None,
        after=decode_cursor(cursor),
        limit=limit + 1,
    )
    items = [WebhookDelivery.model_validate(d) for d in found]
    return page_of(items, limit, lambda d: d.id)


@router.get(
    "/deliveries/{delivery_id}", response_model=WebhookDelivery, responses=problem_schema(DeliveryNotFound)
)
def get_delivery(delivery_id: str, actor: Admin, uow: ReadUoW) -> WebhookDelivery:
    return WebhookDelivery.model_validate(service.get_delivery(uow, actor, delivery_id))


@router.post(
    "/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=WebhookDelivery,
    responses=problem_schema(DeliveryNotFound, DeliveryNotReplayable, IdempotencyConflict),
    summary="Send a settled delivery again (same body and webhook-id, as a new delivery)",
)
def replay_delivery(delivery_id: str, actor: Admin, uow: UoW, idem: IdempotencyKey) -> JSONResponse:
    return idem.run(
        uow,
        {"delivery_id": delivery_id},
        lambda: WebhookDelivery.model_validate(service.replay_delivery(uow, actor, delivery_id)),
        status=202,
    )
