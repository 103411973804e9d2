"""Customer events: ids and channel only — no names, emails, phones (erasure stays simple)."""

from __future__ import annotations

from typing import Literal

from omnicommerce.platform.events import Event


class CustomerCreated(Event):
    context = "customers"
    type: Literal["customer.created"] = "customer.created"
    version: Literal[1] = 1
    customer_id: str
    channel: str


class CustomerUpdated(Event):
    context = "customers"
    type: Literal["customer.updated"] = "customer.updated"
    version: Literal[1] = 1
    customer_id: str
    channel: str | None
    changed: list[str]  # field names, never values


class CustomerSignedIn(Event):
    context = "customers"
    type: Literal["customer.signed_in"] = "customer.signed_in"
    version: Literal[1] = 1
    customer_id: str
    channel: str
    method: Literal["password", "otp"] = "password"


class CustomerOtpRequested(Event):
    """The code itself is never in the event; the sender gets it from the service, not the bus."""

    context = "customers"
    type: Literal["customer.otp_requested"] = "customer.otp_requested"
    version: Literal[1] = 1
    customer_id: str
    channel: str


CustomerEvent = CustomerCreated | CustomerUpdated | CustomerSignedIn | CustomerOtpRequested
