"""FastAPI plumbing every context's ``api.py`` uses: the unit of work, the caller, idempotency,
and cursor pages."""

from __future__ import annotations

import base64
import binascii
import functools
import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from omnicommerce.platform.auth import Principal, authenticate
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database, UnitOfWork
from omnicommerce.platform.errors import InvalidInput
from omnicommerce.platform.idempotency import Idempotency, encoded_json

# Dependencies are ``async def`` where they do no blocking I/O, so FastAPI runs them on the event
# loop instead of hopping to the thread pool for each one; only the route itself blocks (below).
# They are also flat — each takes the request, not other dependencies — and read headers from it
# directly: FastAPI resolves every level of a dependency tree and every declared header parameter
# anew on each request, at a cost comparable to a SQL statement.


T = TypeVar("T")

# --- how a process runs route handlers ---------------------------------------------------------
# Route handlers are plain ``def`` functions that block on the database. By default each runs in
# the thread pool, so a process serves many requests at once. With ``OMNI_API_INLINE_HANDLERS``
# they run on the event loop itself, one request at a time per process, as a pre-forked
# synchronous server's workers do: no thread hop (about 0.15 ms of CPU per request here) and no
# GIL hand-offs, at the price of needing more processes than cores (``omni serve --workers``).
_inline_handlers = False


def run_handlers_inline(inline: bool) -> None:
    """Set, for this process, whether blocking route handlers run on the event loop."""
    global _inline_handlers
    _inline_handlers = inline


async def run_blocking(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking ``function`` the way this process runs route handlers."""
    if _inline_handlers:
        return function(*args, **kwargs)
    return await run_in_threadpool(function, *args, **kwargs)


class Route(APIRoute):
    """The API's route class: a plain ``def`` handler is called through :func:`run_blocking`.
    FastAPI sees an ``async def`` with the handler's own signature, name and docstring."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _through_run_blocking(endpoint)
        super().__init__(path, endpoint, **kwargs)


def _through_run_blocking(handler: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(handler)
    async def endpoint(*args: Any, **kwargs: Any) -> Any:
        return await run_blocking(handler, *args, **kwargs)

    return endpoint


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


async def get_uow(request: Request) -> UnitOfWork:
    return _left_after_the_answer(request, request.app.state.db.uow())


async def get_read_uow(request: Request) -> UnitOfWork:
    return _left_after_the_answer(request, request.app.state.db.uow(readonly=True))


# The units of work a request's dependencies opened, kept in its ASGI scope. A plain dependency
# plus this list costs a fraction of a ``yield`` dependency, for which FastAPI enters an async
# context manager and a cancel scope on every request.
UNITS_OF_WORK = "omni.units_of_work"


def _left_after_the_answer(request: Request, uow: UnitOfWork) -> UnitOfWork:
    units: list[UnitOfWork] | None = request.scope.get(UNITS_OF_WORK)
    if units is None:
        raise RuntimeError("a unit of work needs UnitsOfWorkMiddleware around the app")
    units.append(uow)
    return uow


class UnitsOfWorkMiddleware:
    """Leaves the units of work of each request once it is answered, whether the route committed,
    raised or never touched the database: what was not committed rolls back, and the connection
    goes back to the pool."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        units: list[UnitOfWork] = []
        scope[UNITS_OF_WORK] = units
        try:
            await self.app(scope, receive, send)
        finally:
            await _leave_all(units)


async def _leave_all(units: list[UnitOfWork]) -> None:
    """Leave every unit even when leaving one fails (a rollback on a connection the database
    dropped), then raise the first failure."""
    failure: Exception | None = None
    for uow in units:
        try:
            await _leave(uow)
        except Exception as exc:
            failure = failure or exc
    if failure is not None:
        raise failure


async def _leave(uow: UnitOfWork) -> None:
    """Roll back what was not committed and return the connection. On the event loop, without a
    thread-pool hop, unless a rollback must go over the wire: that goes where handlers run."""
    if uow.ending_needs_io:
        await run_blocking(uow.__exit__, None, None, None)
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
