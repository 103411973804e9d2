"""Segment events: ids only (no personal data), so erasure never has to reach them."""

from __future__ import annotations

from typing import Literal

from omnicommerce.platform.events import Event


class SegmentCreated(Event):
    context = "customers"
    type: Literal["segment.created"] = "segment.created"
    version: Literal[1] = 1
    segment_id: str
    size: int  # members after the first evaluation


class SegmentUpdated(Event):
    """The segment's rules or name changed; membership changes follow as their own events."""

    context = "customers"
    type: Literal["segment.updated"] = "segment.updated"
    version: Literal[1] = 1
    segment_id: str
    segment_version: int
    size: int


class SegmentDeleted(Event):
    """The segment is gone, and with it every membership (no member_removed per member)."""

    context = "customers"
    type: Literal["segment.deleted"] = "segment.deleted"
    version: Literal[1] = 1
    segment_id: str
    size: int  # members it had


class SegmentMemberAdded(Event):
    """A profile started matching the segment's rules."""

    context = "customers"
    type: Literal["segment.member_added"] = "segment.member_added"
    version: Literal[1] = 1
    segment_id: str
    customer_id: str


class SegmentMemberRemoved(Event):
    """A profile stopped matching (its facts changed, a window aged out, the rules changed, or it
    was merged into another profile, which is then evaluated in its place)."""

    context = "customers"
    type: Literal["segment.member_removed"] = "segment.member_removed"
    version: Literal[1] = 1
    segment_id: str
    customer_id: str


SegmentEvent = SegmentCreated | SegmentUpdated | SegmentDeleted | SegmentMemberAdded | SegmentMemberRemoved
