"""The app factory: one FastAPI app mounting every context's router under ``/api/v1``."""

from __future__ import annotations

import gc
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import import_module

from fastapi import APIRouter, FastAPI, Request
from sqlalchemy import text
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import omnicommerce
from omnicommerce.platform.config import Settings, get_settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.errors import ServiceUnavailable, install_handlers
from omnicommerce.platform.outbox import Relay

log = logging.getLogger("omnicommerce.api")

# Each context exposes ``router`` in its api.py; order here is the order in the docs.
CONTEXT_ROUTERS = (
    "omnicommerce.catalog.api",
    "omnicommerce.pricing.api",
    "omnicommerce.inventory.api",
    "omnicommerce.customers.api",
    "omnicommerce.carts.api",
    "omnicommerce.orders.api",
    "omnicommerce.api.me",
    "omnicommerce.api.auth",
    "omnicommerce.api.admin",
)

DESCRIPTION = """
One system of record behind every channel: web, app, store POS, call center.

**Authentication**: `Authorization: Bearer <token>` with an API key (`omk_…`, created by
`omni keys create`) or a customer access token (from `POST /api/v1/auth/sign-in`).
**Errors** are RFC 9457 `application/problem+json`. **Creating POSTs** accept an
`Idempotency-Key` header.
"""


def create_app(
    settings: Settings | None = None, *, db: Database | None = None, run_relay: bool = True
) -> FastAPI:
    settings = settings or get_settings()
    db = db or Database(settings.database_url, pool_size=settings.db_pool_size)
    relay = Relay(db, interval=settings.relay_interval_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The objects alive at startup (modules, routes, tables, compiled statements) live as long
        # as the app: keep the collector from rescanning them (a ~100 ms full pass every so often).
        gc.freeze()
        if run_relay:
            relay.start()
        yield
        relay.stop()
        gc.unfreeze()

    app = FastAPI(
        title="Omnicommerce API",
        version=omnicommerce.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.relay = relay
    install_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(_health_router())
    for module in CONTEXT_ROUTERS:
        app.include_router(import_module(module).router, prefix="/api/v1")
    return app


_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")


class RequestIdMiddleware:
    """Echo or mint ``X-Request-Id`` (plain ASGI: BaseHTTPMiddleware costs a task per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("X-Request-Id", request_id)
            await send(message)

        await self.app(scope, receive, send_with_id)


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz", summary="Readiness: the database answers", responses={503: {"description": "not ready"}}
    )
    def readyz(request: Request) -> dict[str, str]:
        db: Database = request.app.state.db
        try:
            with db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            raise ServiceUnavailable("database not reachable") from exc
        return {"status": "ready", "database": db.dialect}

    return router
