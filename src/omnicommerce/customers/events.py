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


class IdentityLinked(Event):
    """Identifiers joined a profile (types only: the values are personal data)."""

    context = "customers"
    type: Literal["identity.linked"] = "identity.linked"
    version: Literal[1] = 1
    customer_id: str
    identifier_types: list[str]
    source: str


class CustomerMerged(Event):
    """``merged_id`` was folded into ``survivor_id``: its identities and events now belong there."""

    context = "customers"
    type: Literal["customer.merged"] = "customer.merged"
    version: Literal[1] = 1
    merge_id: str
    survivor_id: str
    merged_id: str
    source: str
    identifier_types: list[str]  # the evidence, by type


class CustomerUnmerged(Event):
    """A wrong merge was split back out: ``customer_id`` has its identities and events again."""

    context = "customers"
    type: Literal["customer.unmerged"] = "customer.unmerged"
    version: Literal[1] = 1
    merge_id: str
    customer_id: str
    survivor_id: str
    by: str


class CustomerEventsIngested(Event):
    """One ingestion request stored events (one document per request, not per event)."""

    context = "customers"
    type: Literal["customer.events_ingested"] = "customer.events_ingested"
    version: Literal[1] = 1
    source: str
    accepted: int
    customer_ids: list[str]  # the profiles that received events


class ConsentChanged(Event):
    """Consent decisions recorded for a customer (purposes and channels; no personal data)."""

    context = "customers"
    type: Literal["customer.consent_changed"] = "customer.consent_changed"
    version: Literal[1] = 1
    customer_id: str
    decisions: list[dict[str, str | bool]]  # purpose, channel, granted
    source: str


class IdentityReviewsQueued(Event):
    """The matcher proposed pairs of profiles for a person to review (it was not sure enough)."""

    context = "customers"
    type: Literal["identity.reviews_queued"] = "identity.reviews_queued"
    version: Literal[1] = 1
    origin: str  # the import id, or "ingestion"
    count: int


class IdentityReviewDecided(Event):
    """A reviewer accepted (the profiles were merged: see ``merge_id``) or rejected a proposal."""

    context = "customers"
    type: Literal["identity.review_decided"] = "identity.review_decided"
    version: Literal[1] = 1
    review_id: str
    decision: Literal["accepted", "rejected"]
    merge_id: str | None
    by: str


class CustomerImportRequested(Event):
    """A large import was accepted; a worker runs it (``customers.run-import``)."""

    context = "customers"
    type: Literal["customer.import_requested"] = "customer.import_requested"
    version: Literal[1] = 1
    import_id: str


class CustomerImportCompleted(Event):
    """A bulk import finished: what it did, in counts (the report holds the rows)."""

    context = "customers"
    type: Literal["customer.import_completed"] = "customer.import_completed"
    version: Literal[1] = 1
    import_id: str
    source: str
    created: int
    updated: int
    merged: int
    queued_for_review: int
    rejected: int


CustomerEvent = (
    CustomerCreated
    | CustomerUpdated
    | CustomerSignedIn
    | CustomerOtpRequested
    | IdentityLinked
    | CustomerMerged
    | CustomerUnmerged
    | CustomerEventsIngested
    | ConsentChanged
    | IdentityReviewsQueued
    | IdentityReviewDecided
    | CustomerImportRequested
    | CustomerImportCompleted
)
