"""Pydantic I/O for customers and customer sign-in. Passwords are SecretStr so they never show in
reprs or logs; no schema ever carries a password hash."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

Password = Annotated[SecretStr, Field(min_length=8, max_length=256, description="8 to 256 characters")]
Email = Annotated[str, Field(max_length=320, examples=["ada@example.com"])]
Phone = Annotated[
    str,
    Field(
        max_length=40,
        examples=["+14155550123"],
        description="E.164 preferred; national numbers are read as US",
    ),
]
Name = Annotated[str, Field(max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Customer(BaseModel):
    id: str = Field(examples=["cus_01J9Z3ABCDEFGHJKMNPQRSTVWX"])
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    created_channel: str
    created_at: datetime
    has_password: bool = Field(description="False for accounts made at the POS or by the call center")
    version: int


class CustomerCreate(_Strict):
    """At least one of email and phone. POS and call center create accounts without a password."""

    email: Email | None = None
    phone: Phone | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    password: Password | None = None
    channel: str | None = Field(default=None, description="Required unless the API key is bound to one")


class CustomerUpdate(_Strict):
    """Only the fields given change."""

    email: Email | None = None
    phone: Phone | None = None
    first_name: Name | None = None
    last_name: Name | None = None


class SignUp(_Strict):
    email: Email | None = None
    phone: Phone | None = None
    password: Password
    first_name: Name | None = None
    last_name: Name | None = None
    channel: str = Field(examples=["web"])


class SignIn(_Strict):
    identifier: str = Field(min_length=1, max_length=320, description="Email or phone number")
    password: SecretStr = Field(max_length=256)
    channel: str = Field(examples=["web"])
    cart_id: str | None = Field(default=None, description="An anonymous cart to merge into the customer's")


class RefreshRequest(_Strict):
    refresh_token: str = Field(min_length=1, max_length=200)


class OtpStart(_Strict):
    email: Email
    channel: str = Field(examples=["web"])


class OtpVerify(_Strict):
    email: Email
    code: str = Field(min_length=6, max_length=6, pattern=r"^\d{6}$")
    channel: str = Field(examples=["web"])


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str = Field(description="Single use: each refresh returns a new one")
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Access token lifetime in seconds")
    customer_id: str
