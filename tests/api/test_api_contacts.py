"""Contacts over HTTP: what a CRM script does to keep its people in sync."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import EMAIL_STEP


def test_create_read_update_and_delete_a_contact(api: TestClient) -> None:
    created = api.post(
        "/api/contacts/",
        json={
            "first_name": " Ben ",
            "last_name": "Ode",
            "email": "Ben@Example.com",
            "phone": "+44 20 7946 0958",
            "tags": ["VIP", "trial", "vip"],
            "custom_fields": {"plan": "pro", "seats": 5},
            "timezone": "Europe/London",
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["first_name"] == "Ben" and body["full_name"] == "Ben Ode"
    assert body["phone"] == "+442079460958"
    assert body["tags"] == ["trial", "vip"]
    assert body["custom_fields"] == {"plan": "pro", "seats": 5}
    assert body["created_at"].endswith("+00:00")
    cid = body["id"]

    assert api.get(f"/api/contacts/{cid}/").json() == body

    updated = api.put(f"/api/contacts/{cid}/", json={"company": "Acme", "sms_opt_out": True, "phone": None})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["company"], updated.json()["sms_opt_out"], updated.json()["phone"]) == ("Acme", True, None)
    assert updated.json()["email"] == body["email"]  # untouched fields stay

    assert api.delete(f"/api/contacts/{cid}/").status_code == 204
    gone = api.get(f"/api/contacts/{cid}/")
    assert gone.status_code == 404
    assert gone.json() == {"detail": f"contact {cid} does not exist"}


def test_search_filter_and_paginate(api: TestClient) -> None:
    for first, last, tags in [
        ("Ann", "Adams", ["lead"]),
        ("Bob", "Brown", []),
        ("Cat", "Clark", ["lead"]),
        ("Dan", "Dorsey", ["lead"]),
    ]:
        assert (
            api.post(
                "/api/contacts/",
                json={
                    "first_name": first,
                    "last_name": last,
                    "tags": tags,
                    "company": "Initech" if first != "Bob" else "Hooli",
                },
            ).status_code
            == 201
        )
    page = api.get("/api/contacts/", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 4
    assert [c["last_name"] for c in page["items"]] == ["Brown", "Clark"]
    assert api.get("/api/contacts/", params={"search": "hoo"}).json()["items"][0]["first_name"] == "Bob"
    tagged = api.get("/api/contacts/", params={"tag": "LEAD", "limit": 500}).json()
    assert (tagged["total"], [c["first_name"] for c in tagged["items"]]) == (3, ["Ann", "Cat", "Dan"])
    assert api.get("/api/contacts/", params={"limit": 501}).status_code == 422
    assert api.get("/api/contacts/", params={"limit": 0}).json()["errors"] == {"limit": "Must be 1 or more."}


def test_invalid_contacts_get_one_message_per_field_and_nothing_is_stored(api: TestClient) -> None:
    response = api.post(
        "/api/contacts/",
        json={"first_name": "", "email": "not-an-email", "phone": "12345", "timezone": "Mars/Base"},
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert set(errors) == {"first_name", "email", "phone", "timezone"}
    assert errors["first_name"] == "Give the contact's first name."
    assert errors["phone"] == "Use the international format with the country code, e.g. +14155550123."
    assert api.get("/api/contacts/").json()["total"] == 0

    wrong_type = api.post("/api/contacts/", json={"first_name": "Al", "tags": "a,b", "email_opt_out": "maybe"})
    assert wrong_type.status_code == 422
    assert set(wrong_type.json()["errors"]) == {"tags", "email_opt_out"}
    unknown = api.post("/api/contacts/", json={"first_name": "Al", "nickname": "A"})
    assert unknown.json()["errors"] == {"nickname": "Unknown field."}
    nul = api.post("/api/contacts/", json={"first_name": "A\u0000l"})
    assert (nul.status_code, nul.json()["errors"]) == (422, {"first_name": "must not contain NUL characters"})
    assert api.get("/api/contacts/", params={"search": "a\x00"}).status_code == 422
    assert api.get("/api/contacts/").json()["total"] == 0


def test_malformed_json_is_a_422(api: TestClient) -> None:
    response = api.post("/api/contacts/", content=b'{"first_name": "Al",', headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["body"]
    assert response.json()["errors"]["body"].startswith("not valid JSON")
    not_object = api.post("/api/contacts/", json=["Al"])
    assert not_object.status_code == 422


def test_duplicate_email_and_unknown_ids(api: TestClient, contact_id: int) -> None:
    again = api.post("/api/contacts/", json={"first_name": "Other", "email": "ANN@example.com"})
    assert again.status_code == 422
    assert "already has this email" in again.json()["errors"]["email"]
    assert api.put("/api/contacts/999999/", json={"company": "x"}).status_code == 404
    assert api.delete("/api/contacts/999999/").status_code == 404
    assert api.get("/api/contacts/0/").status_code == 422
    assert api.get("/api/contacts/99999999999999999999/").status_code == 422


def test_a_contact_with_a_running_campaign_is_deleted_only_on_request(api: TestClient, contact_id: int) -> None:
    campaign = api.post(
        "/api/automation/campaigns/", json={"name": "C", "contact_id": contact_id, "steps": [EMAIL_STEP]}
    )
    assert campaign.status_code == 201
    refused = api.delete(f"/api/contacts/{contact_id}/")
    assert refused.status_code == 409
    assert "active or paused campaign" in refused.json()["detail"]
    assert api.get(f"/api/contacts/{contact_id}/").status_code == 200
    assert api.delete(f"/api/contacts/{contact_id}/", params={"cancel_campaigns": "true"}).status_code == 204
    assert api.get(f"/api/automation/campaigns/{campaign.json()['id']}/").status_code == 404
