"""Follow-up rules and inbound events over HTTP."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from automations.domain.db import Database
from automations.runner.rules import process_rules
from tests.api.conftest import Clock


def _template_id(api: TestClient, name: str) -> int:
    items = api.get("/api/automation/templates/", params={"limit": 100}).json()["items"]
    return next(t["id"] for t in items if t["name"] == name)


def test_rule_crud_and_validation(api: TestClient) -> None:
    onboarding = _template_id(api, "Customer Onboarding")
    created = api.post(
        "/api/automation/rules/",
        json={
            "name": "Trial onboarding",
            "trigger": "tag_added",
            "trigger_config": {"tag": "Trial"},
            "action": "start_campaign",
            "action_config": {"template_id": onboarding},
            "conditions": [{"kind": "opted_in", "channel": "email"}],
            "reenroll_after_days": 30,
        },
    )
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["trigger_config"] == {"tag": "trial"}
    assert rule["description"] == "When tag 'trial' is added: start the campaign 'Customer Onboarding'"
    assert (rule["is_active"], rule["applied"], rule["reenroll_after_days"]) == (True, 0, 30)
    rid = rule["id"]

    assert api.get(f"/api/automation/rules/{rid}/").json() == rule
    updated = api.put(f"/api/automation/rules/{rid}/", json={"is_active": False, "delay_days": 2})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["is_active"], updated.json()["delay_days"], updated.json()["name"]) == (
        False,
        2,
        "Trial onboarding",
    )
    assert api.get("/api/automation/rules/").json()["total"] == 1

    bad = api.post(
        "/api/automation/rules/",
        json={"name": "x", "trigger": "inbound_event", "action": "create_followup", "action_config": {}},
    )
    assert bad.status_code == 422
    assert set(bad.json()["errors"]) == {"trigger_config.event", "action_config.title"}

    assert api.delete(f"/api/automation/rules/{rid}/").status_code == 204
    assert api.get(f"/api/automation/rules/{rid}/").status_code == 404
    assert api.get(f"/api/automation/rules/{rid}/history/").status_code == 404


def test_posted_replied_event_stops_campaigns_and_shows_in_history(
    api: TestClient, db: Database, clock: Clock, contact_id: int
) -> None:
    nurture = _template_id(api, "Lead Nurture (7-day)")
    started = api.post(
        "/api/automation/campaigns/", json={"name": "Nurture", "contact_id": contact_id, "template_id": nurture}
    )
    assert started.status_code == 201, started.text
    rule = api.post(
        "/api/automation/rules/",
        json={
            "name": "Reply",
            "trigger": "inbound_event",
            "trigger_config": {"event": "replied"},
            "stop_other_campaigns": True,
            "action": "create_followup",
            "action_config": {"title": "Answer {{ contact.first_name }}"},
        },
    ).json()

    clock.advance(timedelta(hours=1))
    posted = api.post(
        "/api/automation/events/", json={"contact_id": contact_id, "name": "replied", "payload": {"text": "yes please"}}
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["payload"] == {"text": "yes please"}
    assert api.post("/api/automation/events/", json={"contact_id": 999999, "name": "replied"}).status_code == 422

    process_rules(db, now=clock.now, runner_id="api-test")
    campaign = api.get(f"/api/automation/campaigns/{started.json()['id']}/").json()
    assert campaign["status"] == "canceled"
    history = api.get(f"/api/automation/rules/{rule['id']}/history/").json()
    assert history["total"] == 1
    [row] = history["items"]
    assert (row["status"], row["contact_name"], row["event_kind"]) == ("applied", "Ann Lee", "inbound_event")
    assert "stopped 1 other campaign" in row["detail"] and "Answer Ann" in row["detail"]
    assert api.get(f"/api/automation/rules/{rule['id']}/").json()["applied"] == 1
