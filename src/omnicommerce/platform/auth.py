"""Who is calling: API keys (servers, POS, call center) and customer tokens (shoppers).

API keys (``omk_…``) are stored as SHA-256 hashes — they are 256-bit random, so a slow hash
adds nothing — carry scopes, and may be bound to one channel and one location: a store's POS
key acts only as that store. Customer tokens are short-lived HS256 JWTs naming the customer
and the channel they signed in on; they reach only that customer's own data. Staff tokens
(``oms_…``, the console's users) are verified by ``platform.staff.service``.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

import jwt
from sqlalchemy import Boolean, Column, String, Table, Text, select, update
from sqlalchemy.engine import Connection

from omnicommerce.platform import clock
from omnicommerce.platform.db import UTCDateTime, metadata
from omnicommerce.platform.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from omnicommerce.platform.ids import new_id


class Scope(StrEnum):
    ADMIN = "admin"
    CATALOG_READ = "catalog:read"
    CATALOG_WRITE = "catalog:write"
    PRICES_READ = "prices:read"
    PRICES_WRITE = "prices:write"
    INVENTORY_READ = "inventory:read"
    INVENTORY_WRITE = "inventory:write"
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    CARTS_READ = "carts:read"
    CARTS_WRITE = "carts:write"
    ORDERS_READ = "orders:read"
    ORDERS_WRITE = "orders:write"
    FULFILLMENT_READ = "fulfillment:read"
    FULFILLMENT_WRITE = "fulfillment:write"
    EVENTS_WRITE = "events:write"
    SEGMENTS_READ = "segments:read"
    SEGMENTS_WRITE = "segments:write"
    PRIVACY_WRITE = "privacy:write"
    ENGAGEMENT_READ = "engagement:read"
    ENGAGEMENT_WRITE = "engagement:write"
    CASES_READ = "cases:read"
    CASES_WRITE = "cases:write"


# What a signed-in shopper may do; services further limit them to their own records.
CUSTOMER_SCOPES = frozenset(
    {
        Scope.CATALOG_READ,
        Scope.PRICES_READ,
        Scope.INVENTORY_READ,
        Scope.CARTS_READ,
        Scope.CARTS_WRITE,
        Scope.ORDERS_READ,
    }
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The acting party, passed to every service function."""

    kind: str  # "api_key" | "customer" | "staff"
    id: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    channel: str | None = None
    location: str | None = None
    customer_id: str | None = None

    @property
    def is_customer(self) -> bool:
        return self.kind == "customer"

    def has(self, scope: str) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes

    def require(self, scope: str) -> None:
        if not self.has(scope):
            raise Forbidden(f"this credential lacks the {scope!r} scope", required_scope=scope)


SYSTEM = Principal(kind="api_key", id="system", scopes=frozenset({Scope.ADMIN}))


def reach(actor: Principal | None) -> tuple[str, str | None]:
    """Which records a caller reaches, as (kind, value): a customer its own (``customer``), a
    store-bound key its store's (``location``), a channel-bound key its channel's (``channel``), an
    unbound key or internal use (``None``) everything (``all``). Each context's repository turns
    this into its one scoping condition; objects out of reach answer 404."""
    if actor is None:
        return "all", None
    if actor.is_customer:
        return "customer", actor.customer_id
    if actor.location is not None:
        return "location", actor.location
    if actor.channel is not None:
        return "channel", actor.channel
    return "all", None


api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("scopes", Text, nullable=False),  # space separated
    Column("channel_id", String(40), nullable=True),
    Column("location_id", String(40), nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: str
    secret: str  # shown once, never stored
    principal: Principal


class UnknownScope(InvalidInput):
    code = "unknown-scope"
    title = "Unknown scope"


def create_api_key(
    conn: Connection, *, name: str, scopes: list[str], channel: str | None = None, location: str | None = None
) -> IssuedKey:
    valid = {s.value for s in Scope}
    bad = sorted(set(scopes) - valid)
    if bad:
        raise UnknownScope(f"unknown scope(s): {', '.join(bad)}; valid: {', '.join(sorted(valid))}")
    if channel is not None:
        from omnicommerce.platform.channels import get_channel

        get_channel(conn, channel)
    secret = "omk_" + secrets.token_urlsafe(32)
    key_id = new_id("key")
    conn.execute(
        api_keys.insert().values(
            id=key_id,
            name=name,
            key_hash=hash_key(secret),
            prefix=secret[:10],
            scopes=" ".join(sorted(set(scopes))),
            channel_id=channel,
            location_id=location,
            active=True,
            created_at=clock.now(),
        )
    )
    principal = Principal("api_key", key_id, frozenset(scopes), channel, location)
    return IssuedKey(key_id, secret, principal)


def revoke_api_key(conn: Connection, key_id: str) -> None:
    res = conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.active.is_(True))
        .values(active=False, revoked_at=clock.now())
    )
    if res.rowcount == 0:
        raise NotFound(f"no active API key {key_id!r}")
    _key_cache.clear()


def list_api_keys(conn: Connection) -> list[Any]:
    return list(conn.execute(select(api_keys).order_by(api_keys.c.created_at)).all())


class _KeyCache:
    """Verified keys for a few seconds, so most requests cost no query for authentication."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, Principal]] = {}

    def get(self, key_hash: str, ttl: float) -> Principal | None:
        with self._lock:
            hit = self._items.get(key_hash)
        if hit and time.monotonic() - hit[0] < ttl:
            return hit[1]
        return None

    def put(self, key_hash: str, principal: Principal) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key_hash] = (time.monotonic(), principal)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_key_cache = _KeyCache()


def authenticate_api_key(conn_factory: Any, raw: str, *, cache_seconds: float) -> Principal:
    key_hash = hash_key(raw)
    if cache_seconds > 0 and (cached := _key_cache.get(key_hash, cache_seconds)) is not None:
        return cached
    with conn_factory() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
    if row is None or not row.active:
        raise Unauthorized("invalid or revoked API key")
    principal = Principal("api_key", row.id, frozenset(row.scopes.split()), row.channel_id, row.location_id)
    if cache_seconds > 0:
        _key_cache.put(key_hash, principal)
    return principal


# --- customer tokens -------------------------------------------------------------------------


def issue_access_token(secret: str, *, customer_id: str, channel: str, ttl_seconds: int) -> str:
    issued = clock.now()
    claims = {
        "sub": customer_id,
        "chn": channel,
        "typ": "access",
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=ttl_seconds)).timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def authenticate_customer_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["sub", "exp", "chn"]}, leeway=5
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("customer token expired; refresh it") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid customer token") from exc
    if claims.get("typ") != "access":
        raise Unauthorized("not an access token")
    return Principal("customer", claims["sub"], CUSTOMER_SCOPES, claims["chn"], None, claims["sub"])


def authenticate(
    secret: str, conn_factory: Any, authorization: str | None, *, cache_seconds: float
) -> Principal:
    if not authorization:
        raise Unauthorized("missing Authorization header (Bearer API key or customer token)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    token = token.strip()
    if token.startswith("omk_"):
        return authenticate_api_key(conn_factory, token, cache_seconds=cache_seconds)
    if token.startswith("oms_"):  # a staff user's token (console); imported here: staff builds on auth
        from omnicommerce.platform.staff.service import authenticate as authenticate_staff

        return authenticate_staff(secret, conn_factory, token, cache_seconds=cache_seconds)
    return authenticate_customer_token(secret, token)
