"""What every endpoint needs: the bearer-token check and the application's context."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from automations.api.errors import Unauthorized
from automations.api.schemas import EARLIEST_YEAR, LATEST_YEAR
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.errors import ValidationError
from automations.domain.timeutil import as_utc, utcnow

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="`Authorization: Bearer <AUTOMATIONS_API_TOKEN>`",
)


@dataclass(frozen=True)
class ApiContext:
    """The database, the settings and the clock of one application."""

    db: Database
    settings: Settings
    clock: Callable[[], datetime] = field(default=utcnow)

    def now(self) -> datetime:
        return self.clock()

    @property
    def allow_private(self) -> bool:
        return self.settings.webhook_allow_private


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(get_context)]


def require_token(
    request: Request,
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let the request through only with `Authorization: Bearer <AUTOMATIONS_API_TOKEN>`,
    or when the guard found a valid Twilio signature on the SMS webhook (`api.guard`)."""
    if credentials is None and request.scope.get("state", {}).get("twilio"):
        return
    expected = context.settings.api_token
    if expected is None or not expected.get_secret_value():
        raise Unauthorized("the API has no token configured (AUTOMATIONS_API_TOKEN)")
    if credentials is None:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    # Bytes, so that any header value compares in constant time without a TypeError.
    if not hmac.compare_digest(
        credentials.credentials.encode("utf-8", "surrogateescape"),
        expected.get_secret_value().encode("utf-8"),
    ):
        raise Unauthorized("invalid bearer token")


# Query texts go into SQL LIKE patterns; PostgreSQL refuses NUL characters in text.
NO_NUL = r"^[^\x00]*$"


def reject_nul(value: Any, path: str = "") -> None:
    """Refuse text with NUL characters anywhere in a request body (PostgreSQL cannot store them)."""
    problems: dict[str, str] = {}

    def walk(item: Any, where: str) -> None:
        if isinstance(item, str):
            if "\x00" in item:
                problems.setdefault(where or "body", "must not contain NUL characters")
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and "\x00" in key:
                    problems.setdefault(where or "body", "field names must not contain NUL characters")
                walk(child, f"{where}.{key}" if where else str(key))
        elif isinstance(item, (list, tuple)):
            for index, child in enumerate(item):
                walk(child, f"{where}.{index}" if where else str(index))

    walk(value, path)
    if problems:
        raise ValidationError(problems)


Limit = Annotated[int, Query(ge=1, le=500, description="Page size (1 to 500).")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="Rows to skip.")]


INSTANT_DOC = (
    "ISO 8601 date or time; without an offset it is read in the configured timezone "
    "(AUTOMATIONS_TIMEZONE), so `2026-03-01` is that day's midnight there."
)


def instant(value: datetime, field: str, context: ApiContext) -> datetime:
    """A query time as an aware UTC instant; without an offset it is in the configured
    timezone (whose days the calendar and the statistics count)."""
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValidationError.single(field, f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=context.settings.tz)
    return as_utc(value)
