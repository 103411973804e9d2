"""Reactions to every context's events: queue a webhook delivery per subscribed endpoint."""

from __future__ import annotations

from omnicommerce.integrations import service
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.outbox import ANY_EVENT, Envelope, subscriber


@subscriber(ANY_EVENT, consumer="integrations.webhooks", accepts=service.wanted)
def queue_webhooks(uow: UnitOfWork, env: Envelope) -> None:
    service.fan_out(uow, env)
