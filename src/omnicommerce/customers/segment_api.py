"""The Segment tracking API (``/v1/track`` … ``/v1/batch``), mounted at the root so existing web
and mobile trackers work by changing only their host. The write key is an API key with the
``events:write`` scope, sent as Segment sends it: ``Authorization: Basic base64(writeKey:)``
(a ``Bearer`` key works too), or as ``writeKey`` in the JSON body when there is no
``Authorization`` header. Bodies may be gzip-compressed (``Content-Encoding: gzip``, as
analytics-node and the mobile libraries send them). Answers are Segment's ``{"success": true}``
plus per-event results."""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Request
from starlette.responses import Response

from omnicommerce.customers import ingestion
from omnicommerce.customers.ingestion import BatchTooLarge, InvalidEvent
from omnicommerce.customers.schemas import EventBatchIn, IngestResult
from omnicommerce.platform.auth import Principal, Scope, authenticate, authenticate_api_key
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.errors import Forbidden, Unauthorized, problem_schema
from omnicommerce.platform.limits import BodyTooLarge
from omnicommerce.platform.web import Route, UoW


class _GzipRequest(Request):
    """A request whose body is inflated when it came gzip-compressed, never beyond the
    configured body limit (a small compressed body can inflate to gigabytes). Errors are
    HTTPExceptions: FastAPI lets only those through its body parsing (400, 413, 415)."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            raw = await super().body()
            encoding = self.headers.get("content-encoding", "").strip().lower()
            if encoding == "gzip":
                limit = self.app.state.settings.max_body_bytes
                raw = _gunzip(raw, limit)
            elif encoding not in ("", "identity"):
                raise HTTPException(415, f"Content-Encoding {encoding!r} is not supported; use gzip")
            self._body = raw
        return self._body


def _gunzip(raw: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise HTTPException(400, "Content-Encoding is gzip but the body is not valid gzip") from exc
    if len(body) > limit or inflater.unconsumed_tail:
        raise BodyTooLarge(limit)
    return body


class _GzipRoute(Route):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def gzip_aware(request: Request) -> Response:
            return await handler(_GzipRequest(request.scope, request.receive))

        return gzip_aware


router = APIRouter(tags=["segment"], route_class=_GzipRoute)


async def write_key(
    request: Request,
    authorization: Annotated[
        str | None, Header(description="Basic base64(writeKey:) — the write key is an API key (omk_…)")
    ] = None,
) -> Principal:
    settings: Settings = request.app.state.settings
    db: Database = request.app.state.db
    if authorization is None:  # Segment's HTTP API also takes the write key in the body
        authorization = await _body_write_key(request)
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() == "basic":
        principal = authenticate_api_key(
            db.engine.connect, _basic_user(credentials), cache_seconds=settings.api_key_cache_seconds
        )
    else:
        principal = authenticate(
            settings.secret_key,
            db.engine.connect,
            authorization,
            cache_seconds=settings.api_key_cache_seconds,
        )
    principal.require(Scope.EVENTS_WRITE)
    return principal


async def _body_write_key(request: Request) -> str | None:
    """``Basic base64(writeKey:)`` for a ``writeKey`` sent in the JSON body, else None."""
    try:
        document = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
    key = document.get("writeKey") if isinstance(document, dict) else None
    if not isinstance(key, str) or not key:
        return None
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def _basic_user(credentials: str) -> str:
    try:
        user = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise Unauthorized("Basic credentials must be base64 of 'writeKey:'") from exc
    if not user.startswith("omk_"):
        raise Unauthorized("the write key must be an API key (omk_…) with the events:write scope")
    return user


WriteKey = Annotated[Principal, Depends(write_key)]
_PROBLEMS = problem_schema(Unauthorized, Forbidden, InvalidEvent, BatchTooLarge)


@router.post(
    "/v1/batch", response_model=IngestResult, summary="Segment: a batch of events", responses=_PROBLEMS
)
def segment_batch(body: EventBatchIn, actor: WriteKey, uow: UoW) -> IngestResult:
    """200 with a result per event: one bad event never drops the others."""
    result = ingestion.retry_deadlocks(
        uow,
        lambda: ingestion.ingest(
            uow, actor, body.batch, sent_at=body.sent_at, context=body.context, commit_profiles=uow.commit
        ),
    )
    uow.commit()
    return result


def _single(event_type: str) -> Any:
    def endpoint(body: Annotated[dict[str, Any], Body()], actor: WriteKey, uow: UoW) -> IngestResult:
        result = ingestion.retry_deadlocks(
            uow,
            lambda: ingestion.ingest(uow, actor, [{**body, "type": event_type}], commit_profiles=uow.commit),
        )
        outcome = result.results[0]
        if outcome.status == "rejected":
            detail = "; ".join(f"{e['field'] or 'event'}: {e['message']}" for e in outcome.errors)
            raise InvalidEvent(detail, errors=outcome.errors)
        uow.commit()
        return result

    endpoint.__name__ = f"segment_{event_type}"
    return endpoint


for _type in ("track", "identify", "page", "screen", "alias", "group"):
    router.add_api_route(
        f"/v1/{_type}",
        _single(_type),
        methods=["POST"],
        response_model=IngestResult,
        summary=f"Segment: one {_type} event",
        responses=_PROBLEMS,
        description="One event in the Segment spec (the `EventIn` shape); its type is the path's.",
    )
