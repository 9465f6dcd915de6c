"""Schedule settings over HTTP (SPEC section 10): send windows, the recipient's zone,
holidays, business days and send_at, with the 422s that name the field."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import EMAIL_STEP, TASK_STEP, Clock

TEMPLATES = "/api/automation/templates/"
CAMPAIGNS = "/api/automation/campaigns/"
NEW_YORK = ZoneInfo("America/New_York")
WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
OFFICE_HOURS = {"timezone": "contact", "send_window": WINDOW, "holidays": "US"}


@pytest.fixture
def new_yorker(api: TestClient) -> int:
    response = api.post(
        "/api/contacts/",
        json={"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "timezone": "America/New_York"},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _template(api: TestClient, schedule: Any, steps: list[dict[str, Any]] | None = None) -> Any:
    return api.post(TEMPLATES, json={"name": "Office hours", "steps": steps or [EMAIL_STEP], "schedule": schedule})


@pytest.mark.parametrize(
    ("schedule", "field", "words"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "schedule.timezone", "Unknown timezone"),
        ({"send_window": {**WINDOW, "start": "17:00", "end": "09:00"}}, "schedule.send_window.end", "after the start"),
        ({"send_window": {**WINDOW, "start": "25:00"}}, "schedule.send_window.start", "HH:MM"),
        ({"send_window": {**WINDOW, "days": ["mon", "someday"]}}, "schedule.send_window.days", "Unknown day"),
        ({"send_window": {**WINDOW, "days": []}}, "schedule.send_window.days", "at least one day"),
        ({"holidays": "XX"}, "schedule.holidays", "Unknown holiday calendar"),
        ({"holidays": "US-ZZ"}, "schedule.holidays", "Unknown holiday calendar"),
    ],
)
def test_a_bad_schedule_is_a_422_naming_the_field(
    api: TestClient, new_yorker: int, schedule: dict[str, Any], field: str, words: str
) -> None:
    for response in (
        _template(api, schedule),
        api.post(CAMPAIGNS, json={"name": "Hi", "contact_id": new_yorker, "steps": [EMAIL_STEP], "schedule": schedule}),
    ):
        assert response.status_code == 422, response.text
        errors = response.json()["errors"]
        assert words in errors[field], errors
    assert api.get(TEMPLATES).json()["total"] == 6  # nothing written
    assert api.get(CAMPAIGNS).json()["total"] == 0


def test_a_bad_send_at_names_the_step(api: TestClient) -> None:
    response = _template(api, None, [{**EMAIL_STEP, "send_at": "25:00"}, {**TASK_STEP, "send_at": "9h"}])
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert "HH:MM" in errors["steps.0.send_at"] and "HH:MM" in errors["steps.1.send_at"]


def test_every_problem_comes_back_at_once(api: TestClient) -> None:
    response = _template(
        api, {"timezone": "Nowhere/City", "send_window": {**WINDOW, "start": "18:00"}}, [{**EMAIL_STEP, "subject": ""}]
    )
    assert response.status_code == 422
    assert {"schedule.timezone", "schedule.send_window.end", "steps.0.subject"} <= set(response.json()["errors"])


def test_a_campaign_from_a_template_copies_its_schedule_and_plans_inside_the_window(
    api: TestClient, clock: Clock, new_yorker: int
) -> None:
    # Friday 2026-11-27 16:30 in New York (the day after Thanksgiving); a 2-hour delay
    # lands after the window closes, so the step moves to Monday 09:00.
    clock.now = datetime(2026, 11, 27, 16, 30, tzinfo=NEW_YORK)
    steps = [
        {**EMAIL_STEP, "delay_hours": 2},
        {**TASK_STEP, "delay_days": 2, "business_days": True},
        {**EMAIL_STEP, "name": "Day 3", "delay_days": 1, "send_at": "10:00"},
    ]
    template = _template(api, OFFICE_HOURS, steps)
    assert template.status_code == 201, template.text
    body = template.json()
    assert body["schedule"] == {**OFFICE_HOURS, "frequency_cap_exempt": False}
    assert [(s["business_days"], s["send_at"]) for s in body["steps"]] == [
        (False, None),
        (True, None),
        (False, "10:00"),
    ]

    created = api.post(CAMPAIGNS, json={"name": "Ada", "contact_id": new_yorker, "template_id": body["id"]})
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert campaign["schedule"] == body["schedule"]
    assert campaign["planning_timezone"] == "America/New_York"
    local = [datetime.fromisoformat(s["scheduled_at"]).astimezone(NEW_YORK) for s in campaign["steps"]]
    assert local[0] == datetime(2026, 11, 30, 9, 0, tzinfo=NEW_YORK)  # Monday 09:00
    assert "outside the send window" in campaign["steps"][0]["schedule_note"]
    assert local[1] == datetime(2026, 12, 2, 9, 0, tzinfo=NEW_YORK)  # 2 business days later
    assert local[2] == datetime(2026, 12, 3, 10, 0, tzinfo=NEW_YORK)  # the next day at 10:00
    assert campaign["steps"][2]["schedule_note"] is None
    for moment in local:
        assert moment.weekday() < 5 and 9 <= moment.hour < 17
    # The calendar's events say the same.
    events = api.get(
        "/api/automation/calendar/", params={"start": "2026-11-29T00:00:00Z", "end": "2026-12-05T00:00:00Z"}
    )
    assert events.status_code == 200, events.text
    notes = {e["id"]: e["schedule_note"] for e in events.json()["items"]}
    assert notes[campaign["steps"][0]["id"]] == campaign["steps"][0]["schedule_note"]
    assert notes[campaign["steps"][2]["id"]] is None


def test_changing_a_campaigns_schedule_plans_its_pending_steps_again(
    api: TestClient, clock: Clock, new_yorker: int
) -> None:
    clock.now = datetime(2026, 3, 7, 12, 0, tzinfo=NEW_YORK)  # a Saturday
    created = api.post(CAMPAIGNS, json={"name": "Ada", "contact_id": new_yorker, "steps": [EMAIL_STEP]}).json()
    assert created["schedule"]["send_window"] is None
    first = datetime.fromisoformat(created["steps"][0]["scheduled_at"])
    assert first == clock.now  # no window: at once

    changed = api.put(f"{CAMPAIGNS}{created['id']}/", json={"schedule": OFFICE_HOURS})
    assert changed.status_code == 200, changed.text
    step = changed.json()["steps"][0]
    assert datetime.fromisoformat(step["scheduled_at"]).astimezone(NEW_YORK) == datetime(
        2026, 3, 9, 9, 0, tzinfo=NEW_YORK
    )
    assert "outside the send window" in step["schedule_note"]

    refused = api.put(f"{CAMPAIGNS}{created['id']}/", json={"schedule": {"send_window": {**WINDOW, "end": "08:00"}}})
    assert refused.status_code == 422 and "schedule.send_window.end" in refused.json()["errors"]


def test_bulk_start_takes_a_schedule_for_each_contacts_own_zone(api: TestClient, clock: Clock) -> None:
    ids = []
    for name, zone in (("Tokyo", "Asia/Tokyo"), ("Paris", "Europe/Paris"), ("Kolkata", "Asia/Kolkata")):
        response = api.post("/api/contacts/", json={"first_name": name, "timezone": zone})
        ids.append((response.json()["id"], zone))
    clock.now = datetime(2026, 3, 4, 23, 0, tzinfo=ZoneInfo("UTC"))
    started = api.post(
        f"{CAMPAIGNS}bulk/",
        json={
            "name": "Hello",
            "contact_ids": [cid for cid, _ in ids],
            "steps": [EMAIL_STEP],
            "schedule": {"send_window": WINDOW},
        },
    )
    assert started.status_code == 201, started.text
    for campaign_id, (_, zone) in zip(started.json()["campaign_ids"], ids, strict=True):
        step = api.get(f"{CAMPAIGNS}{campaign_id}/").json()["steps"][0]
        local = datetime.fromisoformat(step["scheduled_at"]).astimezone(ZoneInfo(zone))
        assert local.weekday() < 5 and 9 <= local.hour < 17, (zone, local)
