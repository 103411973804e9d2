"""Events the integrations context publishes (``omni.integrations.<type>``).

They are never sent out as webhooks themselves (a failing endpoint would feed itself).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from omnicommerce.platform.events import Event


class _IntegrationsEvent(Event):
    context: ClassVar[str] = "integrations"


class WebhookEndpointCreated(_IntegrationsEvent):
    """A partner endpoint now receives the listed event types."""

    type: Literal["webhook.endpoint_created"] = "webhook.endpoint_created"
    version: Literal[1] = 1
    endpoint_id: str
    url: str
    event_types: list[str]


class WebhookEndpointDisabled(_IntegrationsEvent):
    """The endpoint receives nothing more; pending deliveries to it are dropped."""

    type: Literal["webhook.endpoint_disabled"] = "webhook.endpoint_disabled"
    version: Literal[1] = 1
    endpoint_id: str


class _DeliveryEvent(_IntegrationsEvent):
    delivery_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    attempts: int


class WebhookDelivered(_DeliveryEvent):
    """The endpoint answered 2xx to this event."""

    type: Literal["webhook.delivered"] = "webhook.delivered"
    version: Literal[1] = 1
    status_code: int


class WebhookFailed(_DeliveryEvent):
    """Every attempt failed; the delivery can be replayed from the delivery log."""

    type: Literal["webhook.failed"] = "webhook.failed"
    version: Literal[1] = 1
    last_status_code: int | None
    last_error: str | None
