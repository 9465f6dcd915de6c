"""The REST API (SPEC section 7): FastAPI over the same domain services as the dashboard.

`create_app(db, settings)` builds the application; `python -m automations api`
serves it with uvicorn. Every route needs `Authorization: Bearer
<AUTOMATIONS_API_TOKEN>`; the OpenAPI document (`/openapi.json`) and its pages
(`/docs`, Swagger UI, and `/redoc`) are open, as they hold no data. The pages'
scripts, styles and icon are served by the API itself (from the `fastapi-offline`
package), so they work without internet access.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from automations.api.deps import ApiContext, require_token
from automations.api.errors import install_error_handlers
from automations.api.guard import RequestGuard
from automations.api.schemas import Problem, Responses, ValidationProblem
from automations.api.tracking import TrackingFastPath
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
    "automations.api.inbound",
]

# Where the documentation pages' scripts, styles and icon are served (outside /api/,
# so that, like the pages, they need no token).
DOCS_ASSETS_URL = "/docs/assets"
# Swagger UI would otherwise show a badge image fetched from validator.swagger.io.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
REDOC_IMAGES_POLICY = "img-src 'self' data: blob:"

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
        # The pages FastAPI would add load their assets from a CDN: ours are local.
        docs_url=None,
        redoc_url=None,
    )
    _install_docs(app)
    app.state.context = ApiContext(db=db, settings=settings, clock=clock)
    install_error_handlers(app)
    # Token and body size before a route reads anything; Idempotency-Key on POST.
    app.add_middleware(RequestGuard, db=db, settings=settings)
    # Outermost: the open pixel and tracked links answered before any routing.
    app.add_middleware(TrackingFastPath)
    for name in ROUTER_MODULES:
        app.include_router(
            importlib.import_module(name).router,
            dependencies=[Depends(require_token)],
            responses=COMMON_RESPONSES,
        )
    # What recipients open from an email: no token (the tracking tokens are signed).
    app.include_router(importlib.import_module("automations.api.tracking").router)
    return app


def _install_docs(app: FastAPI) -> None:
    """`/docs` (Swagger UI) and `/redoc`, with every asset served from `DOCS_ASSETS_URL`."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    def assets(request: Request) -> str:
        # Behind a proxy that serves the API under a prefix, every URL carries it.
        return f"{request.scope.get('root_path', '')}{DOCS_ASSETS_URL}"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth2_redirect_url}",
            swagger_js_url=f"{assets(request)}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets(request)}/swagger-ui.css",
            swagger_favicon_url=f"{assets(request)}/favicon.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{assets(request)}/redoc.standalone.js",
            redoc_favicon_url=f"{assets(request)}/favicon.png",
            with_google_fonts=False,
        )
        # ReDoc always shows its maker's logo from their CDN; the browser is told to
        # load images from here only (the logo then hides itself, as it does offline).
        page.headers["content-security-policy"] = REDOC_IMAGES_POLICY
        return page


__all__ = ["create_app", "ROUTER_MODULES"]
