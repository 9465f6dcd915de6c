"""The API's documentation pages (Swagger UI at /docs, ReDoc at /redoc) load every
script, style and icon from the API itself, and stay open without a token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from automations.api import create_app
from automations.domain.db import Database
from tests.api.conftest import api_settings

CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture
def anonymous(sqlite_db: Database) -> Iterator[TestClient]:
    """A client without the bearer token."""
    with TestClient(create_app(sqlite_db, api_settings())) as client:
        yield client


def asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_local_assets_that_answer(anonymous: TestClient, page: str) -> None:
    answer = anonymous.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    urls = asset_urls(answer.text)
    assert urls and "cdn" not in answer.text and "fonts.googleapis" not in answer.text
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/docs/assets/"), url
        asset = anonymous.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[suffix]), url
        assert len(asset.content) > 1000, url
    assert {url.rsplit("/", 1)[1] for url in urls} >= (
        {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"} if page == "/docs" else {"redoc.standalone.js"}
    )


def test_swagger_ui_loads_the_openapi_document_and_no_validator_badge(anonymous: TestClient) -> None:
    html = anonymous.get("/docs").text
    assert "url: '/openapi.json'" in html
    assert '"validatorUrl": null' in html  # the badge would be an image from validator.swagger.io
    assert anonymous.get("/openapi.json").json()["info"]["title"] == "Automations API"


def test_redoc_may_load_images_from_the_api_only(anonymous: TestClient) -> None:
    # ReDoc shows its maker's logo from a CDN; the policy keeps the browser from fetching it.
    policy = anonymous.get("/redoc").headers["content-security-policy"]
    assert policy == "img-src 'self' data: blob:"


def test_docs_stay_open_and_the_api_still_needs_the_token(anonymous: TestClient) -> None:
    assert anonymous.get("/docs/oauth2-redirect").status_code == 200
    assert anonymous.get("/docs/assets/swagger-ui.css").status_code == 200
    assert anonymous.get("/docs/assets/missing.js").status_code == 404
    assert anonymous.get("/api/automation/templates/").status_code == 401


def test_docs_behind_a_path_prefix_use_the_prefix(sqlite_db: Database) -> None:
    # A proxy that serves the API under /automations passes it as the root path.
    with TestClient(create_app(sqlite_db, api_settings()), root_path="/automations") as client:
        html = client.get("/docs").text
    assert 'src="/automations/docs/assets/swagger-ui-bundle.js"' in html
    assert "url: '/automations/openapi.json'" in html
