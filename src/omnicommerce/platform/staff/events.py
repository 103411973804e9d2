"""Events about staff accounts (``omni.staff.<type>``): an audit trail of who may do what.

They carry ids, roles and bindings, never e-mail addresses or password material.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from omnicommerce.platform.events import Event


class _StaffEvent(Event):
    context: ClassVar[str] = "staff"


class StaffCreated(_StaffEvent):
    type: Literal["staff.created"] = "staff.created"
    version: Literal[1] = 1
    staff_id: str
    role: str
    location_id: str | None
    channel_id: str | None
    by: str


class StaffUpdated(_StaffEvent):
    """Role, binding, name, password or re-activation changed (``changed`` names the fields);
    sessions issued before a change of role, binding, password or status are ended."""

    type: Literal["staff.updated"] = "staff.updated"
    version: Literal[1] = 1
    staff_id: str
    role: str
    location_id: str | None
    channel_id: str | None
    changed: list[str]
    by: str


class StaffDisabled(_StaffEvent):
    """The account can no longer sign in; its tokens stop working at once."""

    type: Literal["staff.disabled"] = "staff.disabled"
    version: Literal[1] = 1
    staff_id: str
    by: str


class StaffSignedIn(_StaffEvent):
    type: Literal["staff.signed_in"] = "staff.signed_in"
    version: Literal[1] = 1
    staff_id: str
    role: str
