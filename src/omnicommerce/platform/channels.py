"""Sales channels: the premise of the product. Every request acts on exactly one channel.

:func:`get_channel` answers from a small in-process cache (``CHANNEL_CACHE_SECONDS``) keyed by
database and channel id: nearly every request looks its channel up, and channels change about
never. :func:`upsert_channel` clears it in this process (again when its transaction ends, and
a connection that wrote channels reads around the cache until then); another process sees a
changed name, kind or currency within the TTL. Channels are never deleted and an unknown id is
never cached, so a new channel is seen at once everywhere.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass

from sqlalchemy import Column, String, Table, event, select
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


CHANNEL_CACHE_SECONDS = 30.0

_cache: dict[tuple[str, str], tuple[float, Channel]] = {}  # (database, id) → (valid until, channel)
_generation = 0  # bumped by every clear: a read that began before it must not refill the cache
_lock = threading.Lock()
# connections with uncommitted channel writes (→ the token of their end-of-transaction listener)
_writing: weakref.WeakKeyDictionary[Connection, object] = weakref.WeakKeyDictionary()


def get_channel(conn: Connection, channel_id: str, *, fresh: bool = False) -> Channel:
    """The channel (cached, see the module docstring); ``fresh`` reads the table."""
    key = (str(conn.engine.url), channel_id)
    cacheable = not fresh and conn not in _writing
    if cacheable:
        hit = _cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
    generation = _generation
    row = conn.execute(select(channels).where(channels.c.id == channel_id)).first()
    if row is None:
        raise UnknownChannel(f"channel {channel_id!r} does not exist")
    channel = Channel(row.id, row.name, row.kind, row.currency)
    if cacheable:
        with _lock:
            if generation == _generation:
                _cache[key] = (time.monotonic() + CHANNEL_CACHE_SECONDS, channel)
    return channel


def clear_channel_cache() -> None:
    global _generation
    with _lock:
        _generation += 1
        _cache.clear()


def _written(conn: Connection) -> None:
    """``conn`` wrote channels: forget them now and when its transaction ends."""
    clear_channel_cache()
    if conn in _writing:
        return
    token = object()
    _writing[conn] = token

    def done(c: Connection) -> None:
        if _writing.get(c) is token:  # the first of commit/rollback; a later one is stale
            del _writing[c]
            clear_channel_cache()

    event.listen(conn, "commit", done, once=True)
    event.listen(conn, "rollback", done, once=True)


def list_channels(conn: Connection) -> list[Channel]:
    return [
        Channel(r.id, r.name, r.kind, r.currency)
        for r in conn.execute(select(channels).order_by(channels.c.id))
    ]


def upsert_channel(conn: Connection, channel: Channel) -> None:
    _written(conn)
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
