"""Segment request and response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RULES_EXAMPLE: dict[str, Any] = {
    "all": [
        {"event": "order.placed", "where": {"channel": "pos"}, "within_days": 90},
        {"not": {"event": "order.placed", "where": {"channel": ["web", "app"]}, "within_days": 90}},
    ]
}

Rules = dict[str, Any]  # validated by domain.parse_rule, which reports every problem with its path


class SegmentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Store-only buyers", "rules": RULES_EXAMPLE}]},
    )

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)
    rules: Rules


class SegmentUpdate(SegmentCreate):
    """A full replacement of name, description and rules; members are re-evaluated at once."""


class SegmentPreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: Rules
    sample_size: int = Field(default=10, ge=0, le=100)


class SegmentPreview(BaseModel):
    size: int
    sample: list[str] = Field(description="Customer ids of some members (lowest ids first)")
    windowed: bool


class Segment(BaseModel):
    id: str
    name: str
    description: str
    rules: Rules
    windowed: bool = Field(description="Has a within_days condition: members also age out over time")
    version: int
    size: int
    created_at: datetime
    updated_at: datetime
    evaluated_at: datetime


class SegmentMember(BaseModel):
    customer_id: str
    added_at: datetime


class CustomerSegment(BaseModel):
    """A segment a profile belongs to (as the profile shows it)."""

    id: str
    name: str
    added_at: datetime
