"""The token guards every route; the OpenAPI document describes the API."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from automations.api import create_app
from automations.domain.config import Settings
from tests.api.conftest import TOKEN, api_settings

SPEC_PATHS = {
    "/api/automation/templates/": {"get", "post"},
    "/api/automation/campaigns/": {"get", "post"},
    "/api/automation/campaigns/{campaign_id}/": {"get", "put", "delete"},
    "/api/automation/calendar/": {"get"},
    "/api/automation/stats/": {"get"},
    "/api/contacts/": {"get", "post"},
    "/api/contacts/{contact_id}/": {"get", "put", "delete"},
}


def concrete(path: str) -> str:
    """The path with every `{id}` parameter set to 1."""
    return re.sub(r"\{[a-z_]+\}", "1", path)


def test_every_route_needs_the_token(sqlite_db) -> None:
    app = create_app(sqlite_db, api_settings())
    client = TestClient(app)
    routes = [(method, path) for path, ops in app.openapi()["paths"].items() for method in ops]
    assert len(routes) >= 14
    for method, path in routes:
        if True:
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": f"Basic {TOKEN}"},
                {"Authorization": f"Bearer {TOKEN}x"},
                {"Authorization": "Bearer ünïcode".encode("latin-1")},
            ):
                response = client.request(method, concrete(path), headers=headers, json={})
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
                assert TOKEN not in response.text
    ok = client.get("/api/contacts/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200


def test_without_a_configured_token_nothing_is_served(sqlite_db) -> None:
    client = TestClient(create_app(sqlite_db, Settings(_env_file=None)))
    response = client.get("/api/contacts/", headers={"Authorization": "Bearer "})
    assert response.status_code == 401
    assert "no token configured" in response.json()["detail"]


def test_openapi_document_lists_the_spec_paths_and_describes_every_input(sqlite_db) -> None:
    client = TestClient(create_app(sqlite_db, api_settings()))
    document = client.get("/openapi.json").json()
    for path, methods in SPEC_PATHS.items():
        assert methods <= set(document["paths"][path]), path
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    schemas = document["components"]["schemas"]
    from automations.api import calendar, stats
    from automations.api import schemas as api_schemas

    ours = [
        name
        for module in (api_schemas, calendar, stats)
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, BaseModel) and name in schemas
    ]
    assert len(ours) >= 20
    for name in ours:
        for field, spec in schemas[name]["properties"].items():
            assert spec.get("description"), f"{name}.{field} has no description"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert {"401", "422"} <= set(operation["responses"]), (method, path)
            assert operation.get("security") == [{"token": []}], (method, path)
            for parameter in operation.get("parameters", []):
                assert parameter.get("description"), (method, path, parameter["name"])
    assert "CampaignStepOut" in schemas
    step_fields = set(schemas["CampaignStepOut"]["properties"])
    assert {"id", "position", "status", "scheduled_at", "executed_at", "attempts", "last_error"} <= step_fields
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


@pytest.mark.parametrize("path", ["/api/automation/campaigns/", "/api/contacts/"])
def test_lists_answer_items_and_total(api: TestClient, path: str) -> None:
    assert api.get(path).json() == {"items": [], "total": 0}
