"""Request and response shapes of the webhooks API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

EventTypeStr = Annotated[str, StringConstraints(pattern=r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)*)$", max_length=80)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointCreate(_In):
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="http(s) URL receiving POSTs; private/loopback hosts only with "
        "OMNI_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true",
        examples=["https://partner.example.com/hooks/omnicommerce"],
    )
    event_types: list[EventTypeStr] = Field(
        min_length=1, max_length=100, description="Event types (docs/events.md), or ['*'] for all"
    )
    description: str = Field("", max_length=200)


class WebhookEndpoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    url: str
    description: str
    event_types: list[str]
    active: bool
    created_at: datetime


class WebhookEndpointCreated(WebhookEndpoint):
    secret: str = Field(
        description="Signing secret (whsec_…), shown only in this response: verify every request with it"
    )


class WebhookDelivery(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    endpoint_id: str
    event_id: str = Field(description="Sent as the webhook-id header; the same on retries and replays")
    event_type: str
    status: str = Field(description="pending | succeeded | failed")
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    replay_of: str | None
    created_at: datetime
