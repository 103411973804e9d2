"""The app factory: one FastAPI app mounting every context's router under ``/api/v1``."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import import_module
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from sqlalchemy import text

import omnicommerce
from omnicommerce.integrations.jobs import WebhookDispatcher
from omnicommerce.platform.config import Settings, get_settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.errors import PROBLEM_JSON, ServiceUnavailable, install_handlers
from omnicommerce.platform.limits import (
    BodySizeLimitMiddleware,
    RateLimitMiddleware,
    credential_free_paths,
)
from omnicommerce.platform.observability import (
    Metrics,
    RequestContextMiddleware,
    RouteTemplates,
    api_routes,
    configure_logging,
    metrics_endpoint,
    telemetry_config,
    uses_bearer,
)
from omnicommerce.platform.outbox import load_subscribers
from omnicommerce.platform.scheduler import Scheduler
from omnicommerce.platform.stream import make_relay
from omnicommerce.platform.web import BEARER_SCHEME, Route, UnitsOfWorkMiddleware, run_handlers_inline

log = logging.getLogger("omnicommerce.api")

# Each context exposes ``router`` in its api.py; order here is the order in the docs.
# Requests are matched against routes in this order: the shopping path (carts, orders, stock,
# catalog, prices) first, so the busiest requests are matched soonest.
CONTEXT_ROUTERS = (
    "omnicommerce.carts.api",
    "omnicommerce.orders.api",
    "omnicommerce.inventory.api",
    "omnicommerce.catalog.api",
    "omnicommerce.pricing.api",
    "omnicommerce.customers.api",
    "omnicommerce.customers.segments.api",
    "omnicommerce.customers.privacy.api",
    "omnicommerce.fulfillment.api",
    "omnicommerce.integrations.api",
    "omnicommerce.engagement.api",
    "omnicommerce.api.me",
    "omnicommerce.api.auth",
    "omnicommerce.api.admin",
    "omnicommerce.api.staff",
)
# Mounted at the root, not under /api/v1: the Segment tracking API (/v1/track …), so existing
# trackers only change their host.
ROOT_ROUTERS = ("omnicommerce.customers.segment_api",)

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
    configure_logging(settings)
    db = db or Database(settings.database_url, pool_size=settings.db_pool_size)
    # In-process subscribers by default; with OMNI_NATS_URL the relay publishes to JetStream instead.
    relay = make_relay(db, settings, load_subscribers())
    webhooks = WebhookDispatcher(db, settings)
    scheduler = Scheduler(db, settings) if run_relay and settings.scheduler_enabled else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The objects alive at startup (modules, routes, tables, compiled statements) live as long
        # as the app: keep the collector from rescanning them (a ~100 ms full pass every so often).
        gc.freeze()
        run_handlers_inline(settings.api_inline_handlers)
        if run_relay and settings.api_runs_relay:
            relay.start()
            webhooks.start()
        if scheduler is not None:  # periodic jobs; a lease row keeps each to one process at a time
            scheduler.start()
        yield
        if scheduler is not None:
            scheduler.stop()
        webhooks.stop()
        relay.stop()
        run_handlers_inline(False)
        gc.unfreeze()

    app = FastAPI(
        title="Omnicommerce API",
        version=omnicommerce.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry=telemetry_config(settings),  # type: ignore[arg-type]
    )
    app.state.settings = settings
    app.state.db = db
    app.state.relay = relay
    app.state.webhooks = webhooks
    app.state.scheduler = scheduler
    install_handlers(app)
    _install_defences_and_observability(app, settings, db)
    app.openapi = _openapi_with_common_problems(app)  # type: ignore[method-assign]
    app.include_router(_health_router())
    for module in CONTEXT_ROUTERS:
        app.include_router(import_module(module).router, prefix="/api/v1")
    for module in ROOT_ROUTERS:
        app.include_router(import_module(module).router)
    return app


def _install_defences_and_observability(app: FastAPI, settings: Settings, db: Database) -> None:
    """Middleware, outermost first: request id + metrics + access log, rate limit, body size, and
    the units of work of the request (left once it is answered)."""
    metrics = Metrics(db)
    app.state.metrics = metrics
    app.add_route("/metrics", metrics_endpoint(metrics, settings), methods=["GET"], include_in_schema=False)
    app.add_middleware(UnitsOfWorkMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, on_reject=metrics.reject)
    if settings.rate_limit_enabled:
        app.add_middleware(
            RateLimitMiddleware,
            settings=settings,
            credential_free=lambda: credential_free_paths(app),
            on_reject=metrics.reject,
        )
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        templates=RouteTemplates(app),
        access_log=settings.access_log,
    )


_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details; some problems add fields (errors, shortages, …)",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail"],
}
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _openapi_with_common_problems(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` documenting, on every operation, the problems any route may answer besides
    its own: malformed JSON and too large bodies, missing credentials or scopes, validation
    (rendered as problem+json, not FastAPI's default JSON), rate limits, database outages."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {})["Problem"] = _PROBLEM_SCHEMA
            components["securitySchemes"] = BEARER_SCHEME
            for template, route in api_routes(app):
                if uses_bearer(route.dependant):
                    for method in route.methods or ():
                        schema["paths"][template][method.lower()]["security"] = [{"bearer": []}]
            for path_item in schema["paths"].values():
                for operation in path_item.values():
                    _document_common_problems(operation)
        return generate()

    return openapi


def _document_common_problems(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    parameters = operation.get("parameters", [])
    authenticated = "security" in operation or any(
        p["in"] == "header" and p["name"].lower() == "authorization" for p in parameters
    )
    common = [("429", "Too many requests (see `Retry-After`)"), ("503", "Service unavailable; retry")]
    if "requestBody" in operation:
        common += [("400", "Malformed JSON"), ("413", "Payload too large"), ("422", "Invalid request")]
    if parameters:
        common.append(("422", "Invalid request"))
    if authenticated:
        common += [("401", "Authentication required"), ("403", "Forbidden (missing scope)")]
    for code, description in common:
        responses.setdefault(code, {"description": description})
    for code, response in responses.items():
        content = response.get("content")
        if code.startswith(("4", "5")) and (not content or "application/json" in content):
            response["content"] = _PROBLEM_CONTENT  # errors are always problem+json here


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"], route_class=Route)

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
