"""Campaigns over HTTP: create, follow, pause, resume, cancel, edit and delete."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from tests.api.conftest import EMAIL_STEP, SMS_STEP, TASK_STEP, Clock
from tests.conftest import NOW

CAMPAIGNS = "/api/automation/campaigns/"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_create_from_a_template_plans_every_step(api: TestClient, contact_id: int) -> None:
    nurture = next(
        t for t in api.get("/api/automation/templates/").json()["items"] if t["name"] == "Lead Nurture (7-day)"
    )
    created = api.post(CAMPAIGNS, json={"name": "Nurture Ann", "contact_id": contact_id, "template_id": nurture["id"]})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["status"], body["contact_name"], body["template_name"]) == ("active", "Ann Lee", nurture["name"])
    assert (body["progress"], body["steps_finished"], body["steps_total"]) == (0.0, 0, nurture["step_count"])
    steps = body["steps"]
    assert [s["position"] for s in steps] == list(range(nurture["step_count"]))
    assert all(
        s["status"] == "pending" and s["attempts"] == 0 and s["executed_at"] is None and s["last_error"] is None
        for s in steps
    )
    assert all(s["scheduled_at"].endswith("+00:00") for s in steps)
    last = at(steps[-1]["scheduled_at"])
    assert last - at(steps[0]["scheduled_at"]) <= timedelta(hours=nurture["duration_hours"])
    assert (body["next_step_name"], at(body["next_step_at"])) == (steps[0]["name"], at(steps[0]["scheduled_at"]))
    assert api.get(f"{CAMPAIGNS}{body['id']}/").json() == body


def test_create_with_own_steps_and_a_start_time(api: TestClient, contact_id: int) -> None:
    start = NOW + timedelta(days=3)
    created = api.post(
        CAMPAIGNS,
        json={
            "name": "Mine",
            "contact_id": contact_id,
            "start_at": "2026-03-05T10:00:00+01:00",
            "steps": [EMAIL_STEP, SMS_STEP, TASK_STEP],
        },
    )
    assert created.status_code == 201, created.text
    times = [at(s["scheduled_at"]) for s in created.json()["steps"]]
    start = at("2026-03-05T09:00:00+00:00")
    assert times == [start, start + timedelta(days=1, hours=3), start + timedelta(days=3, hours=3)]
    assert at(created.json()["start_at"]) == start


def test_list_filters_and_pagination(api: TestClient, contact_id: int) -> None:
    other = api.post("/api/contacts/", json={"first_name": "Bo"}).json()["id"]
    ids = [
        api.post(CAMPAIGNS, json={"name": f"C{n}", "contact_id": cid, "steps": [EMAIL_STEP]}).json()["id"]
        for n, cid in enumerate([contact_id, contact_id, other])
    ]
    assert api.put(f"{CAMPAIGNS}{ids[1]}/", json={"status": "paused"}).status_code == 200
    everything = api.get(CAMPAIGNS).json()
    assert everything["total"] == 3
    assert [c["id"] for c in everything["items"]] == sorted(ids, reverse=True)
    paused = api.get(CAMPAIGNS, params={"status": "paused"}).json()
    assert (paused["total"], paused["items"][0]["id"]) == (1, ids[1])
    mine = api.get(CAMPAIGNS, params={"contact_id": contact_id, "limit": 1, "offset": 1}).json()
    assert (mine["total"], [c["id"] for c in mine["items"]]) == (2, [ids[0]])
    assert api.get(CAMPAIGNS, params={"status": "sleeping"}).json()["errors"].keys() == {"status"}
    assert api.get(CAMPAIGNS, params={"message_type": "sms"}).json()["total"] == 0


def test_pause_resume_cancel(api: TestClient, contact_id: int, clock: Clock) -> None:
    cid = api.post(
        CAMPAIGNS,
        json={
            "name": "C",
            "contact_id": contact_id,
            "start_at": (NOW + timedelta(days=1)).isoformat(),
            "steps": [EMAIL_STEP, SMS_STEP],
        },
    ).json()["id"]
    before = [at(s["scheduled_at"]) for s in api.get(f"{CAMPAIGNS}{cid}/").json()["steps"]]
    paused = api.put(f"{CAMPAIGNS}{cid}/", json={"status": "paused"})
    assert (paused.status_code, paused.json()["status"]) == (200, "paused")
    assert at(paused.json()["paused_at"]) == NOW
    clock.advance(timedelta(hours=5))
    resumed = api.put(f"{CAMPAIGNS}{cid}/", json={"status": "active"}).json()
    assert resumed["status"] == "active" and resumed["paused_at"] is None
    assert [at(s["scheduled_at"]) for s in resumed["steps"]] == [t + timedelta(hours=5) for t in before]

    canceled = api.put(f"{CAMPAIGNS}{cid}/", json={"status": "canceled"}).json()
    assert canceled["status"] == "canceled"
    assert {s["status"] for s in canceled["steps"]} == {"canceled"}
    refused = api.put(f"{CAMPAIGNS}{cid}/", json={"status": "active", "name": "Renamed"})
    assert refused.status_code == 409
    assert "cannot be resumed" in refused.json()["detail"]
    assert api.get(f"{CAMPAIGNS}{cid}/").json()["name"] == "C"  # nothing half-written
    assert api.put(f"{CAMPAIGNS}{cid}/", json={"status": "completed"}).status_code == 422


def test_edit_name_and_pending_steps(api: TestClient, contact_id: int) -> None:
    cid = api.post(CAMPAIGNS, json={"name": "C", "contact_id": contact_id, "steps": [TASK_STEP]}).json()["id"]
    edited = api.put(f"{CAMPAIGNS}{cid}/", json={"name": "Renamed", "steps": [SMS_STEP, EMAIL_STEP]})
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["name"] == "Renamed"
    assert [(s["name"], s["status"]) for s in body["steps"]] == [("Nudge", "pending"), ("Welcome", "pending")]
    assert at(body["steps"][0]["scheduled_at"]) == NOW + timedelta(days=1, hours=3)
    bad = api.put(f"{CAMPAIGNS}{cid}/", json={"steps": [{"name": "x", "message_type": "sms"}]})
    assert (bad.status_code, list(bad.json()["errors"])) == (422, ["steps.0.body"])
    assert api.get(f"{CAMPAIGNS}{cid}/").json()["steps"] == body["steps"]


def test_bad_campaigns_are_refused_and_nothing_is_stored(api: TestClient, contact_id: int) -> None:
    cases = [
        ({"name": "C", "contact_id": 987654, "steps": [EMAIL_STEP]}, {"contact_id"}),
        ({"name": "C", "contact_id": contact_id, "template_id": 987654}, {"template_id"}),
        ({"name": "", "contact_id": contact_id, "steps": [EMAIL_STEP]}, {"name"}),
        ({"name": "C", "contact_id": contact_id}, {"steps"}),
        ({"name": "C", "contact_id": "ann", "steps": [EMAIL_STEP]}, {"contact_id"}),
        (
            {"name": "C", "contact_id": contact_id, "start_at": "10000-01-01T00:00:00Z", "steps": [EMAIL_STEP]},
            {"start_at"},
        ),
        (
            {
                "name": "C",
                "contact_id": contact_id,
                "start_at": "2999-12-31T00:00:00Z",
                "steps": [{**EMAIL_STEP, "delay_days": 99999}],
            },
            {"steps.0.delay_days"},
        ),
        (
            {
                "name": "C",
                "contact_id": contact_id,
                "steps": [{"name": "Hook", "message_type": "webhook", "webhook_url": "http://10.0.0.5/x"}],
            },
            {"steps.0.webhook_url"},
        ),
        (
            {"name": "C", "contact_id": contact_id, "steps": [{**EMAIL_STEP, "subject": "{% for x in range(10) %}"}]},
            {"steps.0.subject"},
        ),
    ]
    for payload, fields in cases:
        response = api.post(CAMPAIGNS, json=payload)
        assert response.status_code == 422, (payload, response.text)
        assert set(response.json()["errors"]) == fields, (payload, response.json())
    assert api.get(CAMPAIGNS).json()["total"] == 0


def test_delete_keeps_the_contact_and_unknown_ids_are_404(api: TestClient, contact_id: int) -> None:
    cid = api.post(CAMPAIGNS, json={"name": "C", "contact_id": contact_id, "steps": [EMAIL_STEP]}).json()["id"]
    assert api.delete(f"{CAMPAIGNS}{cid}/").status_code == 204
    assert api.get(f"{CAMPAIGNS}{cid}/").status_code == 404
    assert api.delete(f"{CAMPAIGNS}{cid}/").status_code == 404
    assert api.put(f"{CAMPAIGNS}{cid}/", json={"name": "x"}).status_code == 404
    assert api.get(f"/api/contacts/{contact_id}/").status_code == 200


def test_duplicate_and_save_as_template(api: TestClient, contact_id: int, clock: Clock) -> None:
    cid = api.post(CAMPAIGNS, json={"name": "C", "contact_id": contact_id, "steps": [EMAIL_STEP, TASK_STEP]}).json()[
        "id"
    ]
    other = api.post("/api/contacts/", json={"first_name": "Bo"}).json()["id"]
    clock.advance(timedelta(days=1))
    copy = api.post(f"{CAMPAIGNS}{cid}/duplicate/", json={"contact_id": other})
    assert copy.status_code == 201, copy.text
    assert (copy.json()["name"], copy.json()["contact_id"]) == ("C (copy)", other)
    assert at(copy.json()["steps"][0]["scheduled_at"]) == NOW + timedelta(days=1)
    saved = api.post(f"{CAMPAIGNS}{cid}/save-as-template/", json={"name": "From C"})
    assert saved.status_code == 201
    assert [s["name"] for s in saved.json()["steps"]] == ["Welcome", "Call"]
    assert api.post(f"{CAMPAIGNS}999999/duplicate/").status_code == 404


def test_start_a_campaign_for_everyone_with_a_tag(api: TestClient, contact_id: int) -> None:
    tagged = [api.post("/api/contacts/", json={"first_name": n, "tags": ["trial"]}).json()["id"] for n in ("Bo", "Cy")]
    nurture = api.get("/api/automation/templates/").json()["items"][0]
    by_tag = api.post(f"{CAMPAIGNS}bulk/", json={"name": "Trials", "template_id": nurture["id"], "tag": "Trial"})
    assert by_tag.status_code == 201, by_tag.text
    assert by_tag.json()["created"] == 2
    assert sorted(api.get(f"{CAMPAIGNS}{cid}/").json()["contact_id"] for cid in by_tag.json()["campaign_ids"]) == tagged
    by_ids = api.post(
        f"{CAMPAIGNS}bulk/",
        json={"name": "Two", "steps": [EMAIL_STEP], "contact_ids": [contact_id, tagged[0], contact_id]},
    )
    assert by_ids.json()["created"] == 2
    assert api.get(CAMPAIGNS).json()["total"] == 4

    for payload, field in [
        ({"name": "X", "steps": [EMAIL_STEP]}, "contact_ids"),
        ({"name": "X", "steps": [EMAIL_STEP], "tag": "nobody"}, "tag"),
        ({"name": "X", "steps": [EMAIL_STEP], "contact_ids": []}, "contact_ids"),
        ({"name": "X", "steps": [EMAIL_STEP], "contact_ids": [contact_id, 987654]}, "contact_id"),
    ]:
        refused = api.post(f"{CAMPAIGNS}bulk/", json=payload)
        assert refused.status_code == 422, refused.text
        assert field in refused.json()["errors"], refused.json()
    assert api.get(CAMPAIGNS).json()["total"] == 4  # all or nothing


def test_attempt_log_of_a_step_not_run_yet_is_empty(api: TestClient, contact_id: int) -> None:
    body = api.post(CAMPAIGNS, json={"name": "C", "contact_id": contact_id, "steps": [EMAIL_STEP]}).json()
    step_id = body["steps"][0]["id"]
    assert api.get(f"{CAMPAIGNS}{body['id']}/steps/{step_id}/attempts/").json() == {"items": [], "total": 0}
    other = api.post(CAMPAIGNS, json={"name": "D", "contact_id": contact_id, "steps": [EMAIL_STEP]}).json()
    wrong = api.get(f"{CAMPAIGNS}{other['id']}/steps/{step_id}/attempts/")
    assert wrong.status_code == 404 and wrong.json()["detail"] == f"step {step_id} does not exist"
