"""The calendar over HTTP: every step of a range, in time order, with filters."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from automations.api import create_app
from tests.api.conftest import (
    AUTH,
    EMAIL_STEP,
    SMS_STEP,
    TASK_STEP,
    Clock,
    api_settings,
)
from tests.conftest import NOW

CALENDAR = "/api/automation/calendar/"


def test_events_of_a_range_in_time_order(api: TestClient, contact_id: int) -> None:
    campaign = api.post(
        "/api/automation/campaigns/",
        json={"name": "Trial", "contact_id": contact_id, "steps": [EMAIL_STEP, SMS_STEP, TASK_STEP]},
    ).json()
    other = api.post("/api/contacts/", json={"first_name": "Bo"}).json()["id"]
    api.post("/api/automation/campaigns/", json={"name": "Other", "contact_id": other, "steps": [SMS_STEP]})

    week = api.get(CALENDAR, params={"start": "2026-03-02T00:00:00+00:00", "end": "2026-03-09T00:00:00+00:00"})
    assert week.status_code == 200, week.text
    body = week.json()
    assert body["total"] == 4
    starts = [datetime.fromisoformat(e["start"]) for e in body["items"]]
    assert starts == sorted(starts) and body["items"][0]["start"] == "2026-03-02T09:00:00+00:00"
    first = body["items"][0]
    assert first == {
        "id": campaign["steps"][0]["id"],
        "campaign_id": campaign["id"],
        "campaign_name": "Trial",
        "contact_id": contact_id,
        "contact_name": "Ann Lee",
        "message_type": "email",
        "title": "Welcome",
        "status": "pending",
        "start": "2026-03-02T09:00:00+00:00",
        "schedule_note": None,
    }

    mine = api.get(
        CALENDAR,
        params={"start": "2026-03-01", "end": "2026-04-01", "contact_id": contact_id, "message_type": ["sms", "task"]},
    ).json()
    assert [e["title"] for e in mine["items"]] == ["Nudge", "Call"]
    page = api.get(CALENDAR, params={"start": "2026-03-01", "end": "2026-04-01", "limit": 1, "offset": 1}).json()
    assert page["total"] == 4 and len(page["items"]) == 1
    assert page["items"][0]["id"] == body["items"][1]["id"]
    assert api.get(CALENDAR, params={"start": "2026-03-02T09:00:01Z", "end": "2026-03-03"}).json()["total"] == 0

    api.put(f"/api/automation/campaigns/{campaign['id']}/", json={"status": "canceled"})
    canceled = api.get(CALENDAR, params={"start": "2026-03-01", "end": "2026-04-01", "status": "canceled"}).json()
    assert canceled["total"] == 3


def test_days_without_an_offset_are_in_the_configured_timezone(db, contact_id: int, api: TestClient) -> None:
    api.post("/api/automation/campaigns/", json={"name": "T", "contact_id": contact_id, "steps": [EMAIL_STEP]})
    tokyo = TestClient(create_app(db, api_settings(timezone="Asia/Tokyo"), clock=Clock(NOW)), headers=AUTH)
    # 09:00 UTC is 18:00 in Tokyo on 2 March: inside Tokyo's 2 March, outside its 3 March.
    assert tokyo.get(CALENDAR, params={"start": "2026-03-02", "end": "2026-03-03"}).json()["total"] == 1
    assert tokyo.get(CALENDAR, params={"start": "2026-03-03", "end": "2026-03-04"}).json()["total"] == 0
    assert tokyo.get(CALENDAR, params={"start": "2026-03-02T18:00", "end": "2026-03-02T18:01"}).json()["total"] == 1


def test_bad_ranges_are_refused(api: TestClient) -> None:
    for params, field in [
        ({"end": "2026-03-02"}, "start"),
        ({"start": "2026-03-02"}, "end"),
        ({"start": "yesterday", "end": "2026-03-02"}, "start"),
        ({"start": "2026-03-02", "end": "2026-03-01"}, "end"),
        ({"start": "2026-03-02", "end": "2026-03-02"}, "end"),
        ({"start": "2026-01-01", "end": "2027-02-06"}, "end"),
        ({"start": "0001-01-01T00:00:00+01:00", "end": "2026-03-02"}, "start"),
        ({"start": "2026-03-01", "end": "2026-03-02", "message_type": "fax"}, "message_type.0"),
    ]:
        response = api.get(CALENDAR, params=params)
        assert response.status_code == 422, (params, response.text)
        assert field in response.json()["errors"], (params, response.json())
    exactly = api.get(
        CALENDAR,
        params={"start": "2026-01-01T00:00:00Z", "end": (datetime(2026, 1, 1) + timedelta(days=400)).isoformat() + "Z"},
    )
    assert exactly.status_code == 200
