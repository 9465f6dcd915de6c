"""Errors as JSON: the domain's exceptions mapped to HTTP statuses.

- `ValidationError` (and a request FastAPI cannot parse) -> 422
  `{"detail": ..., "errors": {field: problem}}`, one message per field;
- `NotFound` -> 404, `Conflict` -> 409, a missing or wrong token -> 401
  (`{"detail": ...}`);
- a write that collides with a concurrent one on a unique column -> 409;
- the database busy past its timeout or unreachable -> 503 with `Retry-After`;
- anything else -> 500, as JSON too. Each request's transaction is rolled back
  on any error, so an error answer never follows a write.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from automations.domain.db import is_transient
from automations.domain.errors import Conflict, NotFound, ValidationError
from automations.services.schemas import plain_message

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5

# Where FastAPI found the problem; the field path starts after it.
_LOCATIONS = {"body", "query", "path", "header", "cookie"}


class Unauthorized(Exception):
    """No bearer token, or not the configured one."""


def _field(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in _LOCATIONS and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _problem(error: dict[str, Any]) -> str:
    """One request error in the same plain words as the domain's own checks."""
    if error.get("type", "") == "json_invalid":
        reason = error.get("ctx", {}).get("error", "")
        return f"not valid JSON: {reason}" if reason else "not valid JSON"
    return plain_message(error)


def request_errors(errors: Sequence[dict[str, Any]]) -> dict[str, str]:
    """FastAPI's list of errors as one message per field (the first one wins)."""
    fields: dict[str, str] = {}
    for error in errors:
        # A JSON syntax error's location is a character offset, not a field.
        field = "body" if error.get("type") == "json_invalid" else _field(error.get("loc", ()))
        fields.setdefault(field, _problem(error))
    return fields


def _invalid(errors: dict[str, str]) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": "invalid input", "errors": errors})


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error responses on `app`."""

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _invalid(request_errors(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        # FastAPI answers 400 to a body it cannot even decode (not UTF-8, say):
        # to a client that is one more malformed body, like bad JSON.
        if exc.status_code == 400:
            return _invalid({"body": f"not valid JSON: {exc.detail}"})
        return await http_exception_handler(request, exc)

    @app.exception_handler(ValidationError)
    async def _domain_invalid(_request: Request, exc: ValidationError) -> JSONResponse:
        return _invalid(exc.errors or {"input": str(exc)})

    @app.exception_handler(NotFound)
    async def _not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(Conflict)
    async def _conflict(_request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(IntegrityError)
    async def _collision(request: Request, exc: IntegrityError) -> JSONResponse:
        # The services check uniqueness first; this is the race between two writers.
        log.warning("%s %s: integrity error: %s", request.method, request.url.path, exc.orig)
        return JSONResponse(
            status_code=409,
            content={"detail": "the change conflicts with data written at the same time; retry"},
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # The request's transaction was rolled back (`Database.session`): nothing half-written.
        if is_transient(exc):
            log.warning("%s %s: database busy or unreachable: %s", request.method, request.url.path, exc.orig)
            return JSONResponse(
                status_code=503,
                content={"detail": "the database is busy or unreachable; nothing was changed, retry shortly"},
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        log.error("%s %s: database error", request.method, request.url.path, exc_info=exc)
        return JSONResponse(status_code=500, content={"detail": "internal error; nothing was changed"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s: unexpected error", request.method, request.url.path, exc_info=exc)
        return JSONResponse(status_code=500, content={"detail": "internal error; nothing was changed"})

    @app.exception_handler(Unauthorized)
    async def _unauthorized(_request: Request, exc: Unauthorized) -> JSONResponse:
        return JSONResponse(
            status_code=401,
            content={"detail": str(exc)},
            headers={"WWW-Authenticate": "Bearer"},
        )
