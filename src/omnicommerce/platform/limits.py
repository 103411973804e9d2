"""Defences in front of the routes: rate limits and the request body size limit.

Both are plain ASGI middleware answering RFC 9457 problems before any route runs.

Rate limits are token buckets kept in process memory, one per credential: an API key, a customer
or staff token, or — for requests without a credential (sign-in, sign-up, OTP) — the client IP. With N
API processes the effective limit is N times the configured one; the limits are a ceiling against
runaway clients and credential stuffing, not a quota to bill by. Buckets are keyed by a hash of
the credential, never the secret itself, and are checked before the credential is verified, so an
invalid token costs a bucket too (its own: a forged token cannot drain someone else's).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omnicommerce.platform.config import Settings
from omnicommerce.platform.errors import problem
from omnicommerce.platform.observability import api_routes, takes_credential

# Probes and scrapes must answer even when a client floods the API.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
MAX_BUCKETS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBucket:
    """``per_minute`` requests per minute per key, up to ``burst_seconds`` worth of them at once."""

    def __init__(self, per_minute: int, burst_seconds: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self._buckets: dict[int, _Bucket] = {}

    def take(self, key: int, now: float) -> float:
        """Take one token for ``key``: 0.0 if granted, else the seconds until one is available."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_idle(now)
            self._buckets[key] = _Bucket(self.capacity - 1.0, now)
            return 0.0
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: dropping it loses nothing.
        full_after = self.capacity / self.rate
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < full_after}
        if len(self._buckets) >= MAX_BUCKETS:
            self._buckets.clear()


def _credential(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"authorization":
            return value
    return None


def credential_free_paths(app: FastAPI) -> frozenset[str]:
    """Paths of the routes that take no credential at all (sign-in, sign-up, refresh, OTP)."""
    free = set()
    for template, route in api_routes(app):
        if "{" not in template and not takes_credential(route.dependant):
            free.add(template)
    return frozenset(free)


class RateLimitMiddleware:
    """429 problem+json with ``Retry-After`` once a credential (or an anonymous IP) runs dry.

    Routes that take no credential are limited per client IP whatever the request carries:
    otherwise a made-up token per request would buy a fresh bucket for each password guess.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        credential_free: Callable[[], frozenset[str]] = frozenset,
        on_reject: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self._credential_free = credential_free
        self._free_paths: frozenset[str] | None = None  # read once all routes are in
        per_minute = {
            "api_key": settings.rate_limit_per_minute,
            "customer": settings.rate_limit_customer_per_minute,
            "staff": settings.rate_limit_staff_per_minute,
            "anonymous": settings.rate_limit_anonymous_per_minute,
        }
        self.limits = {
            kind: TokenBucket(rate, settings.rate_limit_burst_seconds) for kind, rate in per_minute.items()
        }
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self._free_paths is None:
            self._free_paths = self._credential_free()
        kind, key = self._who(scope, self._free_paths)
        wait = self.limits[kind].take(key, time.monotonic())
        if wait == 0.0:
            await self.app(scope, receive, send)
            return
        if self.on_reject is not None:
            self.on_reject("rate_limit")
        retry_after = max(1, math.ceil(wait))
        response = problem(
            429,
            "rate-limited",
            "Too many requests",
            f"rate limit for this {kind.replace('_', ' ')} reached; retry in {retry_after} s",
            scope["path"],
        )
        response.headers["Retry-After"] = str(retry_after)
        await response(scope, receive, send)

    @staticmethod
    def _who(scope: Scope, credential_free: frozenset[str]) -> tuple[str, int]:
        credential = None if scope["path"] in credential_free else _credential(scope["headers"])
        if credential:
            scheme, _, token = credential.partition(b" ")
            token = token.strip()
            if token:
                # Keys come as `Bearer omk_…` or Basic (Segment), staff tokens as `Bearer oms_…`,
                # customer tokens as bearer JWTs.
                if scheme.lower() != b"bearer" or token.startswith(b"omk_"):
                    return "api_key", hash(token)
                return ("staff" if token.startswith(b"oms_") else "customer"), hash(token)
        client = scope.get("client")
        return "anonymous", hash(client[0] if client else "")


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` while the body streams in; FastAPI lets HTTPExceptions from a
    middleware through its body parsing, and the app renders it as problem+json."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodySizeLimitMiddleware:
    """413 problem+json for bodies over ``max_bytes``: at once when ``Content-Length`` says so,
    otherwise as soon as the streamed chunks pass the limit (a chunked body is never buffered
    whole first)."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, on_reject: Callable[[str], None] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope["headers"])
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if self.on_reject is not None:
                        self.on_reject("body_too_large")
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.on_reject is not None:
            self.on_reject("body_too_large")
        response = problem(
            413, "http-413", "Payload too large", str(BodyTooLarge(self.max_bytes).detail), scope["path"]
        )
        response.headers["Connection"] = "close"  # the unread body is not worth receiving
        await response(scope, receive, send)


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
