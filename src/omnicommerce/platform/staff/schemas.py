"""Request and response shapes for staff accounts and their sign-in."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, SecretStr

from omnicommerce.platform.staff.domain import Role


class StaffCreate(BaseModel):
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    name: str = Field(min_length=1, max_length=120)
    role: Role
    password: SecretStr = Field(min_length=1, max_length=1024)
    location: str | None = Field(
        default=None, max_length=40, description="A store associate's store (required for them only)"
    )
    channel: str | None = Field(
        default=None,
        max_length=40,
        description="The channel a store associate's sales are rung up on (default: the one store channel)",
    )


class StaffUpdate(BaseModel):
    """Only the fields sent change. A new role, binding or password ends the user's sessions."""

    name: str | None = Field(default=None, min_length=1, max_length=120)
    role: Role | None = None
    password: SecretStr | None = Field(default=None, min_length=1, max_length=1024)
    location: str | None = Field(default=None, max_length=40)
    channel: str | None = Field(default=None, max_length=40)
    active: bool | None = Field(default=None, description="false disables (like DELETE); true re-enables")


class Staff(BaseModel):
    id: str
    email: str
    name: str
    role: Role
    scopes: list[str]
    location: str | None
    channel: str | None
    active: bool
    created_at: datetime
    last_sign_in_at: datetime | None


class StaffSignIn(BaseModel):
    email: str = Field(min_length=1, max_length=254)
    password: SecretStr = Field(min_length=1, max_length=1024)


class StaffRefresh(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class StaffTokens(BaseModel):
    access_token: str = Field(description="`Authorization: Bearer <access_token>`; starts with `oms_`")
    refresh_token: str = Field(description="Single use: exchange at /staff/refresh for a new pair")
    token_type: str = "Bearer"
    expires_in: int
    staff: Staff
