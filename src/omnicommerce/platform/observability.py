"""Observability: request ids, Prometheus metrics, structured logs with redaction, and the switch
for OpenTelemetry traces.

One plain ASGI middleware (:class:`RequestContextMiddleware`) does the per-request work: it
echoes or mints ``X-Request-Id``, puts it in a context variable every log line of the request
carries, and observes the request latency by route *template* (``/api/v1/orders/{order_id}``,
never a raw path: ids in labels would grow the series without bound) and status class.

Business figures (orders placed, outbox lag, consumer lag, reservation expiries) are not counted
in the code paths that produce them: :class:`DatabaseCollector` reads them from the outbox at
scrape time, so they are the same whichever process (API worker, relay, CLI) did the work.
"""

from __future__ import annotations

import hmac
import importlib.util
import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omnicommerce.platform import clock
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.errors import Unauthorized, problem
from omnicommerce.platform.outbox import outbox, processed_events

access_log = logging.getLogger("omnicommerce.access")
log = logging.getLogger("omnicommerce.observability")

# --- request id -------------------------------------------------------------------------------

REQUEST_ID: ContextVar[str | None] = ContextVar("omni_request_id", default=None)
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")


def current_request_id() -> str | None:
    """The id of the request being served (also inside sync routes: the thread pool copies
    the context), or None outside a request."""
    return REQUEST_ID.get()


def _incoming_request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    # Only a short, plain token is echoed: CR/LF or anything else could inject headers or log lines.
    for name, value in headers:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _SAFE_REQUEST_ID.fullmatch(candidate) else uuid.uuid4().hex
    return uuid.uuid4().hex


# --- route templates --------------------------------------------------------------------------


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """Every API route with its full path template (router prefixes included)."""
    for route in app.router.routes:
        if isinstance(route, APIRoute):
            yield route.path_format, route
        elif hasattr(route, "effective_route_contexts"):  # a router included with a prefix
            for context in route.effective_route_contexts():
                if isinstance(context.original_route, APIRoute):
                    yield context.path_format, context.original_route


def uses_bearer(dependant: Dependant) -> bool:
    """Whether a route authenticates its caller through the platform's principal dependencies
    (``platform.web``), which read the ``Authorization`` header themselves and are marked so."""
    return any(getattr(d.call, "reads_bearer", False) for d in dependants(dependant))


def takes_credential(dependant: Dependant) -> bool:
    """Whether a route reads the ``Authorization`` header: a bearer token, or a header parameter
    of its own (the Segment endpoints' write key)."""
    return uses_bearer(dependant) or any(
        p.alias.lower() == "authorization" for d in dependants(dependant) for p in d.header_params
    )


def dependants(dependant: Dependant) -> Iterator[Dependant]:
    """A route's dependency tree, depth first, the route itself first."""
    yield dependant
    for sub in dependant.dependencies:
        yield from dependants(sub)


UNMATCHED = "(unmatched)"


class RouteTemplates:
    """Maps what FastAPI matched to its full path template: ``scope["route"]`` for API routes
    (which lacks the router prefix), ``scope["endpoint"]`` for plain routes such as ``/metrics``
    and ``/docs``. Built on first use, rebuilt once when a route added later shows up."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._by_id: dict[int, str] = {}

    def of(self, scope: Scope) -> str:
        matched = scope.get("route") or scope.get("endpoint")
        if matched is None:
            return UNMATCHED
        template = self._by_id.get(id(matched))
        if template is None:
            self._by_id = self._build()
            template = self._by_id.setdefault(id(matched), getattr(matched, "path", UNMATCHED))
        return template

    def _build(self) -> dict[int, str]:
        templates = {id(route): path for path, route in api_routes(self.app)}
        for route in self.app.router.routes:
            if isinstance(route, Route) and not isinstance(route, APIRoute):
                templates[id(route.endpoint)] = route.path_format
        return templates


# --- metrics ----------------------------------------------------------------------------------

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_STATUS_CLASS = {n: f"{n}xx" for n in range(1, 6)}


def _multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The app's metrics: its own registry (several apps may live in one process, e.g. tests),
    the HTTP latency histogram and the database collector."""

    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry()
        self.http_latency = Histogram(
            "omni_http_request_duration_seconds",
            "HTTP request latency by route template and status class",
            ("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rejected = Counter(
            "omni_http_rejected_requests_total",
            "Requests refused before routing, by reason (rate_limit, body_too_large)",
            ("reason",),
            registry=self.registry,
        )
        self.database = DatabaseCollector(db)
        self.registry.register(self.database)
        if _multiprocess_dir() is None:
            ProcessCollector(registry=self.registry)
        # labels() takes a lock and hashes the label tuple; the children are few, keep them.
        self._children: dict[tuple[str, str, int], Any] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status // 100)
        child = self._children.get(key)
        if child is None:
            child = self.http_latency.labels(method, route, _STATUS_CLASS.get(status // 100, "other"))
            self._children[key] = child
        child.observe(seconds)

    def reject(self, reason: str) -> None:
        self.rejected.labels(reason).inc()

    def exposition(self) -> bytes:
        """The text exposition. With ``PROMETHEUS_MULTIPROC_DIR`` set (several ``--workers``), the
        HTTP figures of every worker are merged from that directory."""
        if _multiprocess_dir() is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged)
        merged.register(self.database)
        return generate_latest(merged)


class DatabaseCollector(Collector):
    """Figures read from the database at scrape time (a few aggregate queries on the outbox)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        up = GaugeMetricFamily("omni_metrics_database_up", "1 if the scrape could read the database")
        try:
            families = self._families()
        except Exception:
            log.warning("metrics: database figures unavailable", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        yield from families
        up.add_metric([], 1)
        yield up
        took = GaugeMetricFamily("omni_metrics_database_seconds", "Time spent reading database figures")
        took.add_metric([], time.perf_counter() - started)
        yield took

    def _families(self) -> list[Metric]:
        with self.db.engine.connect() as conn:
            by_type: dict[str, int] = dict(
                conn.execute(select(outbox.c.type, func.count()).group_by(outbox.c.type)).all()
            )
            pending, oldest = conn.execute(
                select(func.count(), func.min(outbox.c.occurred_at)).where(outbox.c.published_at.is_(None))
            ).one()
            lag = conn.execute(_consumer_lag_query()).all()
        return [
            *_event_counters(by_type),
            *_outbox_gauges(int(pending), oldest),
            _consumer_lag_gauge(lag),
        ]


def _event_counters(by_type: dict[str, int]) -> list[Metric]:
    events = CounterMetricFamily("omni_events", "Events written to the outbox, by type", labels=["type"])
    for event_type, count in sorted(by_type.items()):
        events.add_metric([event_type], int(count))
    orders = CounterMetricFamily("omni_orders_placed", "Orders placed (order.placed events)")
    orders.add_metric([], int(by_type.get("order.placed", 0)))
    expiries = CounterMetricFamily(
        "omni_reservation_expiries", "Carts whose stock holds expired (hold.expired events)"
    )
    expiries.add_metric([], int(by_type.get("hold.expired", 0)))
    return [events, orders, expiries]


def _outbox_gauges(pending: int, oldest: datetime | None) -> list[Metric]:
    unpublished = GaugeMetricFamily("omni_outbox_unpublished_events", "Committed events not yet published")
    unpublished.add_metric([], pending)
    age = GaugeMetricFamily(
        "omni_outbox_oldest_unpublished_age_seconds", "Age of the oldest unpublished event (0 if none)"
    )
    age.add_metric([], max(0.0, (clock.now() - clock.as_utc(oldest)).total_seconds()) if oldest else 0.0)
    return [unpublished, age]


def _consumer_lag_query() -> Any:
    """Per consumer: events of the types it has handled, written after the last one it handled."""
    handled = (
        select(
            processed_events.c.consumer,
            outbox.c.type,
            func.max(outbox.c.seq).label("last_seq"),
        )
        .join(outbox, outbox.c.id == processed_events.c.event_id)
        .group_by(processed_events.c.consumer, outbox.c.type)
        .subquery()
    )
    behind = outbox.alias("behind")
    return (
        select(handled.c.consumer, func.count(behind.c.seq))
        .select_from(
            handled.outerjoin(behind, (behind.c.type == handled.c.type) & (behind.c.seq > handled.c.last_seq))
        )
        .group_by(handled.c.consumer)
    )


def _consumer_lag_gauge(rows: Iterable[Any]) -> Metric:
    gauge = GaugeMetricFamily(
        "omni_consumer_lag_events",
        "Events a consumer has not handled yet (of the types it handles)",
        labels=["consumer"],
    )
    for consumer, behind in rows:
        gauge.add_metric([consumer], int(behind))
    return gauge


def metrics_endpoint(metrics: Metrics, settings: Settings) -> Any:
    """The ``GET /metrics`` handler; with ``OMNI_METRICS_TOKEN`` set it wants that bearer token."""
    expected = f"Bearer {settings.metrics_token}".encode() if settings.metrics_token else None

    def handler(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode("latin-1", "replace")
            if not hmac.compare_digest(given, expected):
                err = Unauthorized("GET /metrics needs the OMNI_METRICS_TOKEN bearer token")
                return problem(err.status, err.code, err.title, err.detail, request.url.path)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return handler


# --- the middleware ---------------------------------------------------------------------------


class RequestContextMiddleware:
    """Request id, latency metric and access log line for each HTTP request.

    Plain ASGI (BaseHTTPMiddleware costs a task per request): a few microseconds per request.
    """

    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, templates: RouteTemplates, access_log: bool = True
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = templates
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope["headers"])
        header = (b"x-request-id", request_id.encode())
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = self.templates.of(scope)
            self.metrics.observe(scope["method"], route, status, elapsed)
            if self.access_log and access_log.isEnabledFor(logging.INFO):
                _log_access(scope, route, status, elapsed)
            REQUEST_ID.reset(token)


def _log_access(scope: Scope, route: str, status: int, elapsed: float) -> None:
    # The path without its query string: queries may carry e-mails or phone numbers.
    access_log.info(
        "%s %s %d %.1fms",
        scope["method"],
        scope["path"],
        status,
        elapsed * 1000,
        extra={
            "method": scope["method"],
            "path": scope["path"],
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
        },
    )


# --- logs -------------------------------------------------------------------------------------

# (pattern, replacement, cheap lowercase hints: a pattern runs only when one is in the text)
_REDACTIONS: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = (
    # key=value / "key": "value" pairs naming a secret
    (
        re.compile(
            r"""(?i)(["']?\b(?:password|passwd|secret|api_key|payment_token|authorization|cvv|cvc)\b["']?"""
            r"""\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;&}]+)"""
        ),
        r"\1[REDACTED]",
        ("passw", "secret", "api_key", "payment_token", "authorization", "cvv", "cvc"),
    ),
    (re.compile(r"(?i)\bbearer\s+[^\s,;\"']+"), "Bearer [REDACTED]", ("bearer",)),
    (re.compile(r"\bomk_[A-Za-z0-9_\-]+"), "omk_[REDACTED]", ("omk_",)),
    # staff access tokens (oms_ + JWT), staff and customer refresh tokens
    (re.compile(r"\b(oms|omsr|omr)_[A-Za-z0-9_\-.]+"), r"\1_[REDACTED]", ("oms", "omr_")),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "[REDACTED-TOKEN]", ("eyj",)),
    (re.compile(r"\btok_[A-Za-z0-9_]+"), "tok_[REDACTED]", ("tok_",)),
    (
        re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
        "[REDACTED-EMAIL]",
        ("@",),
    ),
    (re.compile(r"\+\d{7,15}\b"), "[REDACTED-PHONE]", ("+",)),
    (re.compile(r"\b(?:\d[ \-]?){12,18}\d\b"), "[REDACTED-NUMBER]", ()),
    # SQLAlchemy and pydantic error texts quote the values they were given
    (re.compile(r"\[parameters: [^\n]*"), "[parameters: REDACTED]", ("[parameters:",)),
    (re.compile(r"input_value=(?:'[^']*'|\"[^\"]*\"|[^,\s]+)"), "input_value=[REDACTED]", ("input_value=",)),
)


_ANY_HINT = re.compile("|".join(re.escape(h) for _, _, hints in _REDACTIONS for h in hints), re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` without secrets or contact details (credentials, tokens, e-mails, phones, PANs)."""
    hinted = _ANY_HINT.search(text) is not None  # most lines (access lines) have no hint at all
    lowered = text.lower() if hinted else ""
    for pattern, replacement, hints in _REDACTIONS:
        if not hints or (hinted and any(hint in lowered for hint in hints)):
            text = pattern.sub(replacement, text)
    return text


class ContextFilter(logging.Filter):
    """Adds ``request_id`` (and, with traces on, ``trace_id``/``span_id`` of the current span)
    to every record, and redacts its message and exception text."""

    def __init__(self, *, with_trace_ids: bool = False) -> None:
        super().__init__()
        self.with_trace_ids = with_trace_ids

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        if self.with_trace_ids:
            _add_trace_ids(record)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: keep its template, drop the arguments unseen
            message = f"{record.msg} (log arguments did not match the message)"
        cleaned = redact(message)
        record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def _add_trace_ids(record: logging.LogRecord) -> None:
    # Lets a log line be found from its trace and back (same ids as the exported spans).
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        record.trace_id = format(context.trace_id, "032x")
        record.span_id = format(context.span_id, "016x")


_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
}


# Extras our own code fills from trusted values (the access log's): not worth redacting.
_TRUSTED = frozenset({"method", "route", "status", "duration_ms"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, pid, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "pid": record.process,  # tells the workers of one `omni serve --workers N` apart
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = redact(value) if isinstance(value, str) and key not in _TRUSTED else value
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


# Loggers that install their own handlers: route them through ours so every line has one format.
# (Not uvicorn.access: our access log replaces it, and it would log client addresses.)
_REROUTED = ("uvicorn", "uvicorn.error")


def configure_logging(settings: Settings) -> logging.Handler:
    """Install the one root handler (text or JSON, with request ids and redaction); idempotent."""
    root = logging.getLogger()
    for existing in [h for h in root.handlers if getattr(h, "_omni", False)]:
        root.removeHandler(existing)
    handler = _StderrHandler()
    handler._omni = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter(with_trace_ids=settings.otel_enabled))
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in _REROUTED:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # SQL echo would print statement parameters (e-mails, names, hashes): never at DEBUG by accident.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    return handler


# --- traces -----------------------------------------------------------------------------------

OTEL_PACKAGES = ("opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http")


def otel_sdk_available() -> bool:
    return all(
        importlib.util.find_spec(module) is not None
        for module in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")
    )


def telemetry_config(settings: Settings) -> dict[str, Any]:
    """FastAPI's native OpenTelemetry settings: spans exported over OTLP (the endpoint from
    ``OTEL_EXPORTER_OTLP_ENDPOINT``) when enabled and installed, otherwise entirely off."""
    off: dict[str, Any] = {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}
    if not settings.otel_enabled:
        return off
    if not otel_sdk_available():
        log.warning(
            "OMNI_OTEL_ENABLED is set but OpenTelemetry is not installed; traces are off. "
            "Install: pip install %s",
            " ".join(OTEL_PACKAGES),
        )
        return off
    return {"tracing": True, "metrics": False, "logs": False, "auto_configure": True}
