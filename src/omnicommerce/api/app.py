"""The app factory: one FastAPI app mounting every context's router under ``/api/v1``."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import import_module

from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy import text

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


def create_app(settings: Settings | None = None, *, db: Database | None = None, run_relay: bool = True) -> FastAPI:
    settings = settings or get_settings()
    db = db or Database(settings.database_url, pool_size=settings.db_pool_size)
    relay = Relay(db, interval=settings.relay_interval_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_relay:
            relay.start()
        yield
        relay.stop()

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
    app.middleware("http")(_request_id)
    app.include_router(_health_router())
    for module in CONTEXT_ROUTERS:
        app.include_router(import_module(module).router, prefix="/api/v1")
    return app


async def _request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    response = await call_next(request)
    response.headers["X-Request-Id"] = request_id[:64]
    return response


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: the database answers", responses={503: {"description": "not ready"}})
    def readyz(request: Request) -> dict[str, str]:
        db: Database = request.app.state.db
        try:
            with db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            raise ServiceUnavailable("database not reachable") from exc
        return {"status": "ready", "database": db.dialect}

    return router
