"""Administration over HTTP: channels and API keys (admin scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from omnicommerce.platform import auth
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.channels import Channel, list_channels, upsert_channel
from omnicommerce.platform.errors import NotFound, problem_schema
from omnicommerce.platform.money import check_currency
from omnicommerce.platform.web import IdempotencyKey, ReadUoW, Route, UoW, require

router = APIRouter(tags=["admin"], route_class=Route)
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]


class ChannelBody(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    kind: str = Field(pattern="^(online|store|assisted|marketplace)$")
    currency: str = Field(min_length=3, max_length=3, examples=["USD"])


class ChannelOut(ChannelBody):
    id: str


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    scopes: list[str] = Field(min_length=1, examples=[["carts:write", "orders:write"]])
    channel: str | None = Field(default=None, description="Bind the key to one channel")
    location: str | None = Field(default=None, description="Bind the key to one location (a store's POS)")


class KeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    channel: str | None
    location: str | None
    active: bool
    created_at: datetime


class KeyCreated(BaseModel):
    id: str
    secret: str = Field(description="Shown once; only its hash is stored")
    scopes: list[str]
    channel: str | None
    location: str | None


@router.get("/channels", response_model=list[ChannelOut], summary="List sales channels")
def get_channels(_: Admin, uow: ReadUoW) -> list[ChannelOut]:
    return [
        ChannelOut(id=c.id, name=c.name, kind=c.kind, currency=c.currency) for c in list_channels(uow.conn)
    ]


@router.put(
    "/channels/{channel_id}",
    response_model=ChannelOut,
    summary="Create or update a channel",
    responses=problem_schema(),
)
def put_channel(channel_id: str, body: ChannelBody, _: Admin, uow: UoW) -> ChannelOut:
    check_currency(body.currency)
    upsert_channel(uow.conn, Channel(channel_id, body.name, body.kind, body.currency))
    uow.commit()
    return ChannelOut(id=channel_id, **body.model_dump())


@router.post(
    "/keys",
    status_code=201,
    response_model=KeyCreated,
    summary="Create an API key (secret shown once)",
    responses=problem_schema(auth.UnknownScope),
)
def create_key(body: KeyCreate, _: Admin, uow: UoW, idem: IdempotencyKey) -> JSONResponse:
    def make() -> KeyCreated:
        issued = auth.create_api_key(
            uow.conn, name=body.name, scopes=body.scopes, channel=body.channel, location=body.location
        )
        return KeyCreated(
            id=issued.id,
            secret=issued.secret,
            scopes=sorted(issued.principal.scopes),
            channel=body.channel,
            location=body.location,
        )

    return idem.run(uow, body, make)


@router.get("/keys", response_model=list[KeyOut], summary="List API keys (never their secrets)")
def get_keys(_: Admin, uow: ReadUoW) -> list[KeyOut]:
    return [
        KeyOut(
            id=r.id,
            name=r.name,
            prefix=r.prefix,
            scopes=r.scopes.split(),
            channel=r.channel_id,
            location=r.location_id,
            active=r.active,
            created_at=r.created_at,
        )
        for r in auth.list_api_keys(uow.conn)
    ]


@router.delete(
    "/keys/{key_id}", status_code=204, summary="Revoke an API key", responses=problem_schema(NotFound)
)
def revoke_key(key_id: str, _: Admin, uow: UoW) -> None:
    auth.revoke_api_key(uow.conn, key_id)
    uow.commit()
