"""Pydantic I/O of privacy requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from omnicommerce.customers.schemas import Email


class PrivacyRequestIn(BaseModel):
    """The person, by profile id or by email (exactly one)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str | None = Field(default=None, max_length=40, examples=["cus_01J9Z3ABCDEFGHJKMNPQRSTVWX"])
    email: Email | None = None
    reason: str | None = Field(
        default=None, max_length=200, description="A reference for the journal, e.g. a ticket number"
    )

    @model_validator(mode="after")
    def _one_subject(self) -> PrivacyRequestIn:
        if (self.customer_id is None) == (self.email is None):
            raise ValueError("give exactly one of customer_id or email")
        return self


class PrivacyExport(BaseModel):
    """Everything held about the person, per context, as stored."""

    request_id: str
    customer_id: str = Field(description="The profile (accounts merged into it are included)")
    customer_ids: list[str]
    generated_at: datetime
    data: dict[str, Any] = Field(
        description="customers (profiles, identities, consents, traits, merges, events), carts, orders, "
        "fulfillment, integrations (webhook deliveries about them)"
    )


class ErasureResult(BaseModel):
    request_id: str
    customer_id: str
    customer_ids: list[str]
    erased: dict[str, int] = Field(description="Rows erased or anonymised, per context or store")
    suppressed_identifiers: int = Field(description="Identifiers added to the suppression list (as hashes)")
    completed_at: datetime


class PrivacyRequestOut(BaseModel):
    """A journal entry: who asked for what about whom, and what was done — without the data."""

    id: str
    kind: str
    customer_id: str
    requested_by: str
    reason: str | None
    summary: dict[str, Any]
    created_at: datetime
