"""Domain errors and their one rendering: RFC 9457 ``application/problem+json``.

Every context raises subclasses of :class:`DomainError` carrying a ``code`` and an HTTP
``status``; nothing else builds error bodies.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("omnicommerce.errors")

PROBLEM_BASE = "https://omnicommerce.dev/problems/"
PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    code: ClassVar[str] = "domain-error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request cannot be processed"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class NotFound(DomainError):
    code = "not-found"
    status = 404
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    status = 409
    title = "Conflict"


class InvalidInput(DomainError):
    code = "invalid-input"
    status = 422
    title = "Invalid input"


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401
    title = "Authentication required"


class Forbidden(DomainError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class ServiceUnavailable(DomainError):
    code = "service-unavailable"
    status = 503
    title = "Service unavailable"


def problem(
    status: int, code: str, title: str, detail: str, instance: str | None = None, **ext: Any
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(ext)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_schema(*errors: type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the problems a route may answer."""
    out: dict[int | str, dict[str, Any]] = {}
    for err in errors:
        entry = out.setdefault(err.status, {"description": "", "content": {PROBLEM_JSON: {}}})
        entry["description"] = ", ".join(filter(None, [entry["description"], f"{err.title} (`{err.code}`)"]))
    return out


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        out.append({"field": ".".join(loc), "message": err.get("msg", "invalid"), "code": err.get("type")})
    return out


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem(exc.status, exc.code, exc.title, exc.detail, request.url.path, **exc.extensions)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        if any(e["code"] == "json_invalid" for e in errors):
            return problem(
                400,
                "malformed-json",
                "Malformed JSON",
                "The request body is not valid JSON.",
                request.url.path,
            )
        detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)
        return problem(422, "validation-error", "Invalid request", detail, request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}
        return problem(
            exc.status_code,
            f"http-{exc.status_code}",
            titles.get(exc.status_code, "HTTP error"),
            str(exc.detail),
            request.url.path,
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _db_down(request: Request, exc: OperationalError | PoolTimeout) -> JSONResponse:
        # Connection loss, lock timeouts, deadlock victims and a pool with no free connection
        # alike: nothing was committed, retry is safe.
        log.warning("database unavailable: %s", type(getattr(exc, "orig", None) or exc).__name__)
        response = problem(
            503,
            "service-unavailable",
            "Service unavailable",
            "The database could not complete the request; nothing was changed. Retry shortly.",
            request.url.path,
        )
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError) -> JSONResponse:
        log.exception("database error")
        return problem(
            500, "internal-error", "Internal error", "An unexpected error occurred.", request.url.path
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(
            500, "internal-error", "Internal error", "An unexpected error occurred.", request.url.path
        )
