"""The REST API (SPEC section 7): FastAPI over the same domain services as the dashboard.

`create_app(db, settings)` builds the application; `python -m automations api`
serves it with uvicorn. Every route needs `Authorization: Bearer
<AUTOMATIONS_API_TOKEN>`; the OpenAPI document (`/openapi.json`) and its page
(`/docs`) are open, as they hold no data.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime

from fastapi import Depends, FastAPI

from automations.api.deps import ApiContext, require_token
from automations.api.errors import install_error_handlers
from automations.api.guard import RequestGuard
from automations.api.schemas import Problem, Responses, ValidationProblem
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.timeutil import utcnow

# One module per area, each with a `router`; adding an area is one line here.
ROUTER_MODULES = [
    "automations.api.templates",
    "automations.api.campaigns",
    "automations.api.contacts",
    "automations.api.calendar",
    "automations.api.stats",
    "automations.api.rules",
]

# Documented on every route: the answers any request may get.
COMMON_RESPONSES: Responses = {
    401: {"model": Problem, "description": "Missing or wrong bearer token."},
    422: {"model": ValidationProblem, "description": "Invalid input: one message per field."},
}


def create_app(db: Database, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """The API application over `db`; `clock` gives "now" (tests pass a fixed one)."""
    app = FastAPI(
        title="Automations API",
        version="1.0",
        description=(
            "Templates, campaigns, contacts, the calendar and statistics of Automations. "
            "Send `Authorization: Bearer <AUTOMATIONS_API_TOKEN>` with every request. "
            'Lists answer `{"items": [...], "total": N}` and take `limit` and `offset`; '
            "times are ISO 8601 with an offset."
        ),
    )
    app.state.context = ApiContext(db=db, settings=settings, clock=clock)
    install_error_handlers(app)
    # Token and body size before a route reads anything; Idempotency-Key on POST.
    app.add_middleware(RequestGuard, db=db, settings=settings)
    for name in ROUTER_MODULES:
        app.include_router(
            importlib.import_module(name).router,
            dependencies=[Depends(require_token)],
            responses=COMMON_RESPONSES,
        )
    return app


__all__ = ["create_app", "ROUTER_MODULES"]
