"""FastAPI plumbing every context's ``api.py`` uses: the unit of work, the caller, idempotency,
and cursor pages."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from omnicommerce.platform.auth import Principal, authenticate
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database, UnitOfWork
from omnicommerce.platform.errors import InvalidInput
from omnicommerce.platform.idempotency import Idempotency, encoded_json

# Dependencies are ``async def`` where they do no blocking I/O, so FastAPI runs them on the event
# loop instead of hopping to the thread pool for each one; only the route itself runs in a thread.
# They are also flat — each takes the request, not other dependencies — and read headers from it
# directly: FastAPI resolves every level of a dependency tree and every declared header parameter
# anew on each request, at a cost comparable to a SQL statement.


def model_json(model: BaseModel, status: int = 200) -> JSONResponse:
    """``model`` as the response, serialised once: FastAPI passes a response through as is,
    where a returned model would be validated against ``response_model`` again first."""
    return encoded_json(status, model.__pydantic_serializer__.to_json(model))


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_uow(request: Request) -> AsyncIterator[UnitOfWork]:
    uow = request.app.state.db.uow()
    try:
        yield uow
    finally:
        await _leave(uow)


async def get_read_uow(request: Request) -> AsyncIterator[UnitOfWork]:
    uow = request.app.state.db.uow(readonly=True)
    try:
        yield uow
    finally:
        await _leave(uow)


async def _leave(uow: UnitOfWork) -> None:
    """Roll back what was not committed and return the connection. Async, so that FastAPI does
    not hop to the thread pool to enter and to leave every unit of work; a rollback that must go
    over the wire is still sent from a thread, never from the event loop."""
    if uow.ending_needs_io:
        await run_in_threadpool(uow.__exit__, None, None, None)
    else:
        uow.__exit__(None, None, None)


UoW = Annotated[UnitOfWork, Depends(get_uow)]
ReadUoW = Annotated[UnitOfWork, Depends(get_read_uow)]
AppSettings = Annotated[Settings, Depends(get_settings)]


async def current_principal(request: Request) -> Principal:
    """The caller, from the ``Authorization`` header (documented as the API's security scheme);
    once per request however many dependencies ask."""
    return principal_of(request)


def principal_of(request: Request) -> Principal:
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    settings: Settings = request.app.state.settings
    db: Database = request.app.state.db
    # Customer JWTs and cached API keys cost no I/O; only an uncached key is looked up.
    principal = authenticate(
        settings.secret_key,
        db.engine.connect,
        request.headers.get("authorization"),
        cache_seconds=settings.api_key_cache_seconds,
    )
    request.state.principal = principal
    return principal


def _reads_bearer(dependency: Callable[..., Any]) -> None:
    """Mark a dependency that authenticates through :func:`principal_of`: the OpenAPI document
    and the rate limiter find the routes taking a bearer token by this mark."""
    dependency.reads_bearer = True  # type: ignore[attr-defined]


_reads_bearer(current_principal)

BEARER_SCHEME = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`omk_…`), a customer access token or a staff access token (`oms_…`)",
    }
}


def require(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency answering 401 without a credential and 403 without every scope."""

    async def dependency(request: Request) -> Principal:
        principal = principal_of(request)
        for scope in scopes:
            principal.require(scope)
        return principal

    dependency.__name__ = "require_" + "_".join(s.replace(":", "_") for s in scopes)
    _reads_bearer(dependency)
    return dependency


async def idempotency(
    request: Request,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="Replays the first response for a repeat")
    ] = None,
) -> Idempotency:
    scope = f"{principal_of(request).id} {request.method} {request.url.path}"
    return Idempotency(idempotency_key, scope)


_reads_bearer(idempotency)


IdempotencyKey = Annotated[Idempotency, Depends(idempotency)]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page")


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


class BadCursor(InvalidInput):
    code = "bad-cursor"
    title = "Bad cursor"


_CURSOR_VALUE = re.compile(r"[A-Za-z0-9_.:\-]{1,200}")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadCursor("cursor is not one this API returned") from exc
    if not _CURSOR_VALUE.fullmatch(decoded):
        raise BadCursor("cursor is not one this API returned")
    return decoded


def page_of(items: list[T], limit: int, id_of: Callable[[T], str]) -> Page[T]:
    """Services fetch ``limit + 1`` rows; the extra one tells whether another page exists."""
    if len(items) > limit:
        items = items[:limit]
        return Page[T](items=items, next_cursor=encode_cursor(id_of(items[-1])))
    return Page[T](items=items, next_cursor=None)
