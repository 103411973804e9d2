"""Sales channels: the premise of the product. Every request acts on exactly one channel."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, String, Table, select
from sqlalchemy.engine import Connection

from omnicommerce.platform.db import metadata
from omnicommerce.platform.errors import Forbidden, InvalidInput, NotFound

channels = Table(
    "channels",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("kind", String(20), nullable=False),  # online | store | assisted | marketplace
    Column("currency", String(3), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    kind: str
    currency: str


class UnknownChannel(NotFound):
    code = "unknown-channel"
    title = "Unknown channel"


class ChannelRequired(InvalidInput):
    code = "channel-required"
    title = "Channel required"


class ChannelMismatch(Forbidden):
    code = "channel-mismatch"
    title = "Wrong channel for this credential"


def get_channel(conn: Connection, channel_id: str) -> Channel:
    row = conn.execute(select(channels).where(channels.c.id == channel_id)).first()
    if row is None:
        raise UnknownChannel(f"channel {channel_id!r} does not exist")
    return Channel(row.id, row.name, row.kind, row.currency)


def list_channels(conn: Connection) -> list[Channel]:
    return [
        Channel(r.id, r.name, r.kind, r.currency)
        for r in conn.execute(select(channels).order_by(channels.c.id))
    ]


def upsert_channel(conn: Connection, channel: Channel) -> None:
    if conn.execute(select(channels.c.id).where(channels.c.id == channel.id)).first():
        conn.execute(
            channels.update()
            .where(channels.c.id == channel.id)
            .values(name=channel.name, kind=channel.kind, currency=channel.currency)
        )
    else:
        conn.execute(
            channels.insert().values(
                id=channel.id, name=channel.name, kind=channel.kind, currency=channel.currency
            )
        )


def resolve_channel(bound: str | None, requested: str | None) -> str:
    """The channel a request acts on: the credential's own, or the one asked for by an unbound one."""
    if bound is not None:
        if requested is not None and requested != bound:
            raise ChannelMismatch(f"this credential acts for channel {bound!r}, not {requested!r}")
        return bound
    if requested is None:
        raise ChannelRequired("this credential is not bound to a channel; pass 'channel'")
    return requested
