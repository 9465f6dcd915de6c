"""Templates over HTTP: the system templates, custom ones, and what is refused."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import EMAIL_STEP, SMS_STEP, TASK_STEP

TEMPLATES = "/api/automation/templates/"


def test_list_shows_the_six_system_templates_first(api: TestClient) -> None:
    page = api.get(TEMPLATES).json()
    assert page["total"] == 6
    assert all(t["is_system"] for t in page["items"])
    nurture = next(t for t in page["items"] if t["name"] == "Lead Nurture (7-day)")
    assert nurture["step_count"] > 1 and nurture["duration_hours"] > 0 and nurture["campaigns"] == 0
    assert set(nurture["message_types"]) <= {"email", "sms", "task", "webhook"}
    second = api.get(TEMPLATES, params={"limit": 2, "offset": 2}).json()
    assert second["total"] == 6
    assert [t["id"] for t in second["items"]] == [t["id"] for t in page["items"][2:4]]


def test_create_edit_clone_and_delete_a_custom_template(api: TestClient) -> None:
    created = api.post(
        TEMPLATES,
        json={
            "name": "Trial follow-up",
            "category": "nurture",
            "description": "For trials",
            "steps": [EMAIL_STEP, SMS_STEP],
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["is_system"], body["category"], body["step_count"]) == (False, "nurture", 2)
    assert body["duration_hours"] == 27
    assert [s["name"] for s in body["steps"]] == ["Welcome", "Nudge"]
    tid = body["id"]
    assert api.get(TEMPLATES).json()["total"] == 7

    edited = api.put(f"{TEMPLATES}{tid}/", json={"steps": [TASK_STEP], "description": "Calls only"})
    assert edited.status_code == 200, edited.text
    assert ([s["message_type"] for s in edited.json()["steps"]], edited.json()["description"]) == (
        ["task"],
        "Calls only",
    )
    assert api.get(f"{TEMPLATES}{tid}/").json() == edited.json()

    copy = api.post(f"{TEMPLATES}{tid}/clone/", json={"name": "Trial follow-up B"})
    assert copy.status_code == 201 and copy.json()["steps"][0]["subject"] == "Call Ann"

    assert api.delete(f"{TEMPLATES}{tid}/").status_code == 204
    assert api.get(f"{TEMPLATES}{tid}/").status_code == 404
    assert api.get(TEMPLATES).json()["total"] == 7


def test_system_templates_are_read_only_but_can_be_cloned(api: TestClient) -> None:
    system = api.get(TEMPLATES).json()["items"][0]
    refused = api.put(f"{TEMPLATES}{system['id']}/", json={"name": "Mine now"})
    assert refused.status_code == 409
    assert "system template" in refused.json()["detail"]
    assert api.delete(f"{TEMPLATES}{system['id']}/").status_code == 409
    clone = api.post(f"{TEMPLATES}{system['id']}/clone/")
    assert clone.status_code == 201
    assert (clone.json()["name"], clone.json()["is_system"]) == (f"{system['name']} (copy)", False)
    assert api.put(f"{TEMPLATES}{clone.json()['id']}/", json={"name": "Mine now"}).json()["name"] == "Mine now"


def test_bad_templates_are_refused_field_by_field_and_nothing_is_stored(api: TestClient) -> None:
    escape = {**EMAIL_STEP, "body": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}
    private = {"name": "Hook", "message_type": "webhook", "webhook_url": "http://127.0.0.1:8080/hook"}
    unknown_type = {"name": "Fax", "message_type": "fax"}
    no_subject = {"name": "Mail", "message_type": "email", "body": "x"}
    response = api.post(TEMPLATES, json={"name": "Bad", "steps": [escape, private, no_subject]})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert set(errors) == {"steps.0.body", "steps.1.webhook_url", "steps.2.subject"}
    assert "not allowed" in errors["steps.0.body"] or "unsafe" in errors["steps.0.body"]
    assert "loopback" in errors["steps.1.webhook_url"]

    typed = api.post(TEMPLATES, json={"name": "Bad", "steps": [unknown_type]})
    assert typed.status_code == 422
    assert "steps.0.message_type" in typed.json()["errors"]
    assert api.post(TEMPLATES, json={"name": "Bad", "category": "spam", "steps": [EMAIL_STEP]}).json()[
        "errors"
    ].keys() == {"category"}
    assert api.post(TEMPLATES, json={"name": "Empty", "steps": []}).status_code == 422
    taken = api.post(TEMPLATES, json={"name": "lead nurture (7-day)", "steps": [EMAIL_STEP]})
    assert "already exists" in taken.json()["errors"]["name"]
    assert api.get(TEMPLATES).json()["total"] == 6


def test_private_webhooks_are_accepted_when_the_setting_allows_them(db, clock) -> None:
    from automations.api import create_app
    from tests.api.conftest import AUTH, api_settings

    client = TestClient(create_app(db, api_settings(webhook_allow_private=True), clock=clock), headers=AUTH)
    hook = {
        "name": "Hook",
        "message_type": "webhook",
        "webhook_url": "http://127.0.0.1:8080/hook",
        "webhook_payload": {"source": "crm"},
    }
    created = client.post(TEMPLATES, json={"name": "Internal", "steps": [hook]})
    assert created.status_code == 201, created.text
    assert created.json()["steps"][0]["webhook_payload"] == {"source": "crm"}


def test_a_duplicate_non_ascii_name_is_refused_not_a_server_error(api: TestClient) -> None:
    assert api.post(TEMPLATES, json={"name": "Ärger", "steps": [EMAIL_STEP]}).status_code == 201
    # Names are compared without case in every alphabet, on SQLite as on PostgreSQL.
    for name in ("Ärger", "ärger", "ÄRGER"):
        again = api.post(TEMPLATES, json={"name": name, "steps": [EMAIL_STEP]})
        assert again.status_code == 422, again.text
        assert "name" in again.text
    assert api.get(TEMPLATES).json()["total"] == 7
