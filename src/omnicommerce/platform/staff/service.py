"""Staff use cases: accounts (admin only), sign-in with refresh token rotation, and turning a
staff access token into a :class:`Principal`.

Access tokens are ``oms_`` + an HS256 JWT (``typ`` "staff") naming the user, their role, binding
and account ``version``. Every change of role, binding, password or status bumps the version, so
tokens issued before it stop working: at once in this process, within
``OMNI_API_KEY_CACHE_SECONDS`` in the others (the same cache window as API keys).
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import timedelta
from typing import Any

import jwt

from omnicommerce.platform import clock, passwords
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.channels import get_channel, list_channels
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.errors import Unauthorized
from omnicommerce.platform.ids import new_id
from omnicommerce.platform.refresh_tokens import InvalidRefreshToken, Spent
from omnicommerce.platform.staff import repository as repo
from omnicommerce.platform.staff.domain import (
    LOCATION_BOUND,
    ROLE_NAMES,
    InvalidStaff,
    InvalidStaffCredentials,
    LastAdmin,
    Role,
    StaffChanged,
    StaffExists,
    StaffNotFound,
    check_binding,
    check_password,
    normalise_email,
    scopes_for,
)
from omnicommerce.platform.staff.events import StaffCreated, StaffDisabled, StaffSignedIn, StaffUpdated
from omnicommerce.platform.staff.schemas import Staff, StaffCreate, StaffTokens, StaffUpdate
from omnicommerce.platform.web import Page, decode_cursor, page_of

ACCESS_PREFIX = "oms_"


# --- accounts -----------------------------------------------------------------------------------


def create_staff(uow: UnitOfWork, actor: Principal, cmd: StaffCreate) -> Staff:
    check_binding(cmd.role, cmd.location, cmd.channel)
    password = cmd.password.get_secret_value()
    check_password(password)
    channel = _channel_for(uow, cmd.role, cmd.channel)
    now = clock.now()
    values = {
        "id": new_id("stf"),
        "email": normalise_email(cmd.email),
        "name": cmd.name,
        "role": cmd.role.value,
        "location_id": cmd.location,
        "channel_id": channel,
        "password_hash": passwords.hash_password(password),
        "active": True,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "last_sign_in_at": None,
    }
    if not repo.insert_user(uow.conn, values):
        raise StaffExists(f"a staff user with e-mail {values['email']!r} exists")
    uow.emit(
        StaffCreated(
            staff_id=values["id"],
            role=cmd.role.value,
            location_id=cmd.location,
            channel_id=channel,
            by=actor.id,
        )
    )
    return _to_staff(values)


def get_staff(uow: UnitOfWork, staff_id: str) -> Staff:
    return _to_staff(_load(uow, staff_id))


def list_staff(
    uow: UnitOfWork, *, limit: int, cursor: str | None, role: str | None = None, location: str | None = None
) -> Page[Staff]:
    rows = repo.listing(uow.conn, after=decode_cursor(cursor), limit=limit + 1, role=role, location=location)
    return page_of([_to_staff(r) for r in rows], limit, lambda s: s.id)


def update_staff(uow: UnitOfWork, actor: Principal, staff_id: str, cmd: StaffUpdate) -> Staff:
    row = _load(uow, staff_id)
    sent = cmd.model_fields_set
    role = cmd.role if cmd.role is not None else Role(row.role)
    location = cmd.location if "location" in sent else row.location_id
    channel = cmd.channel if "channel" in sent else row.channel_id
    if role not in LOCATION_BOUND and cmd.role is not None:  # leaving the store ends its binding
        location = location if "location" in sent else None
        channel = channel if "channel" in sent else None
    check_binding(role, location, channel)
    values: dict[str, Any] = {
        "name": cmd.name if cmd.name is not None else row.name,
        "role": role.value,
        "location_id": location,
        "channel_id": _channel_for(uow, role, channel),
        "active": cmd.active if cmd.active is not None else row.active,
    }
    if cmd.password is not None:
        check_password(cmd.password.get_secret_value())
        values["password_hash"] = passwords.hash_password(cmd.password.get_secret_value())
    changed = sorted(k for k, v in values.items() if k == "password_hash" or getattr(row, k) != v)
    if not changed:
        return _to_staff(row)
    _keep_an_admin(uow, row, role=role, active=values["active"])
    _save(uow, row, values, ends_sessions=set(changed) != {"name"})
    if values["active"]:
        uow.emit(
            StaffUpdated(
                staff_id=staff_id,
                role=role.value,
                location_id=values["location_id"],
                channel_id=values["channel_id"],
                changed=[c.removesuffix("_hash").removesuffix("_id") for c in changed],
                by=actor.id,
            )
        )
    else:
        uow.emit(StaffDisabled(staff_id=staff_id, by=actor.id))
    return _to_staff({**row._asdict(), **values})


def disable_staff(uow: UnitOfWork, actor: Principal, staff_id: str) -> None:
    """Idempotent: disabling a disabled account changes nothing."""
    update_staff(uow, actor, staff_id, StaffUpdate(active=False))


def _keep_an_admin(uow: UnitOfWork, row: repo.AnyRow, *, role: Role, active: bool) -> None:
    """Nobody can demote or disable the last active admin: the console would have no way back."""
    losing_admin = row.role == Role.ADMIN and row.active and (role != Role.ADMIN or not active)
    if losing_admin and repo.active_admins(uow.conn) <= 1:
        raise LastAdmin("this is the last active admin; make another admin first")


def _save(uow: UnitOfWork, row: repo.AnyRow, values: dict[str, Any], *, ends_sessions: bool) -> None:
    now = clock.now()
    version = row.version + 1 if ends_sessions else row.version
    if not repo.update_user(
        uow.conn, row.id, version=row.version, values={**values, "version": version, "updated_at": now}
    ):
        raise StaffChanged(f"staff user {row.id!r} changed meanwhile; read it again")
    if ends_sessions:
        repo.revoke_all(uow.conn, row.id, now=now)
        _sessions.forget(row.id)


def _channel_for(uow: UnitOfWork, role: Role, channel: str | None) -> str | None:
    """The channel a store associate rings sales up on: the one given, else the only store channel."""
    if channel is not None:
        get_channel(uow.conn, channel)
        return channel
    if role not in LOCATION_BOUND:
        return None
    stores = [c.id for c in list_channels(uow.conn) if c.kind == "store"]
    if len(stores) != 1:
        raise InvalidStaff(
            f"name the store channel for this {role.value} (store channels: {', '.join(stores) or 'none'})"
        )
    return stores[0]


def _load(uow: UnitOfWork, staff_id: str) -> repo.AnyRow:
    row = repo.by_id(uow.conn, staff_id)
    if row is None:
        raise StaffNotFound(f"no staff user {staff_id!r}")
    return row


def _to_staff(row: Any) -> Staff:
    r = row if isinstance(row, dict) else row._asdict()
    return Staff(
        id=r["id"],
        email=r["email"],
        name=r["name"],
        role=Role(r["role"]),
        scopes=sorted(scopes_for(r["role"])),
        location=r["location_id"],
        channel=r["channel_id"],
        active=r["active"],
        created_at=r["created_at"],
        last_sign_in_at=r["last_sign_in_at"],
    )


# --- sign-in and tokens -------------------------------------------------------------------------


def sign_in(uow: UnitOfWork, *, email: str, password: str, settings: Settings) -> StaffTokens:
    """Unknown e-mail, disabled account or wrong password: the same 401 after the same work."""
    row = repo.by_email(uow.conn, normalise_email(email))
    stored = row.password_hash if row is not None and row.active else None
    if not passwords.verify_password(stored, password) or row is None or stored is None:
        raise InvalidStaffCredentials("invalid e-mail or password")
    now = clock.now()
    rehashed = passwords.hash_password(password) if passwords.needs_rehash(stored) else None
    repo.mark_signed_in(uow.conn, row.id, now=now, password_hash=rehashed)
    uow.emit(StaffSignedIn(staff_id=row.id, role=row.role))
    return _issue(uow, row._asdict() | {"last_sign_in_at": now}, settings)


def refresh(uow: UnitOfWork, *, refresh_token: str, settings: Settings) -> StaffTokens:
    """Rotate (see :mod:`omnicommerce.platform.refresh_tokens`). On :class:`RefreshTokenReused`
    the caller must commit before re-raising it, or the family's revocation is lost."""
    spent = repo.REFRESH_TOKENS.spend(uow.conn, refresh_token)
    row = repo.by_id(uow.conn, spent.token.staff_id)
    if row is None or not row.active:
        raise InvalidRefreshToken("the account is disabled or gone; sign in again")
    if row.version != spent.token.staff_version:
        raise InvalidRefreshToken("the account changed since this sign-in; sign in again")
    return _issue(uow, row._asdict(), settings, after=spent)


def _issue(
    uow: UnitOfWork, user: dict[str, Any], settings: Settings, *, after: Spent | None = None
) -> StaffTokens:
    now = clock.now()
    raw_refresh = repo.REFRESH_TOKENS.issue(
        uow.conn,
        owner={"staff_id": user["id"], "staff_version": user["version"]},
        ttl_seconds=settings.staff_refresh_token_ttl_seconds,
        after=after,
    )
    ttl = settings.staff_access_token_ttl_seconds
    claims = {
        "sub": user["id"],
        "typ": "staff",
        "rol": user["role"],
        "ver": user["version"],
        "loc": user["location_id"],
        "chn": user["channel_id"],
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": secrets.token_hex(8),
    }
    access = ACCESS_PREFIX + jwt.encode(claims, settings.secret_key, algorithm="HS256")
    return StaffTokens(access_token=access, refresh_token=raw_refresh, expires_in=ttl, staff=_to_staff(user))


# --- authentication -----------------------------------------------------------------------------


class _Sessions:
    """Each user's (version, active) for a few seconds, so a console request costs no query for
    authentication while a change made in this process is seen at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, int, bool]] = {}

    def get(self, staff_id: str, ttl: float) -> tuple[int, bool] | None:
        with self._lock:
            hit = self._items.get(staff_id)
        if hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1], hit[2]
        return None

    def put(self, staff_id: str, version: int, active: bool) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[staff_id] = (time.monotonic(), version, active)

    def forget(self, staff_id: str) -> None:
        with self._lock:
            self._items.pop(staff_id, None)


_sessions = _Sessions()


def authenticate(secret: str, conn_factory: Any, token: str, *, cache_seconds: float) -> Principal:
    """The principal of a staff access token (``oms_…``); 401 once the account changed or was
    disabled after the token was issued."""
    try:
        claims = jwt.decode(
            token.removeprefix(ACCESS_PREFIX),
            secret,
            algorithms=["HS256"],
            options={"require": ["sub", "exp", "typ", "rol", "ver"]},
            leeway=5,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("staff token expired; refresh it") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid staff token") from exc
    if claims["typ"] != "staff" or claims["rol"] not in ROLE_NAMES:
        raise Unauthorized("invalid staff token")
    version, active = _current(conn_factory, claims["sub"], cache_seconds)
    if not active or version != claims["ver"]:
        raise Unauthorized("this staff session has ended (account changed or disabled); sign in again")
    return Principal("staff", claims["sub"], scopes_for(claims["rol"]), claims.get("chn"), claims.get("loc"))


def _current(conn_factory: Any, staff_id: str, cache_seconds: float) -> tuple[int, bool]:
    if cache_seconds > 0 and (hit := _sessions.get(staff_id, cache_seconds)) is not None:
        return hit
    with conn_factory() as conn:
        row = repo.by_id(conn, staff_id)
    state = (row.version, row.active) if row is not None else (-1, False)
    if cache_seconds > 0:
        _sessions.put(staff_id, *state)
    return state
