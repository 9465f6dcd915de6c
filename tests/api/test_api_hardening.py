"""Bad input never breaks the API: every refusal is JSON naming the field and the
limit, nothing is half-written, a retry with an Idempotency-Key creates nothing
new, and a busy database answers 503 with Retry-After."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from automations.api import create_app
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.models import AutomationCampaign, AutomationStep, Contact, ContactEvent
from tests.api.conftest import AUTH, EMAIL_STEP, TOKEN, api_settings
from tests.channels.support import sqlite_write_lock

CAMPAIGNS = "/api/automation/campaigns/"


def _counts(db: Database) -> tuple[int, ...]:
    with db.read_session() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(m)) or 0
            for m in (Contact, AutomationCampaign, AutomationStep, ContactEvent)
        )


def _nested(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


def test_a_payload_nested_hundreds_deep_is_refused_before_anything_is_written(
    api: TestClient, db: Database, contact_id: int
) -> None:
    before = _counts(db)
    deep = {**EMAIL_STEP, "message_type": "webhook", "webhook_url": "https://example.com/h"}
    for levels, field in ((300, "body"), (40, "steps.0.webhook_payload")):
        answer = api.post(
            CAMPAIGNS,
            json={"name": "Deep", "contact_id": contact_id, "steps": [{**deep, "webhook_payload": _nested(levels)}]},
        )
        assert answer.status_code == 422, answer.text
        assert "nested more than" in answer.json()["errors"][field]
    assert _counts(db) == before
    assert api.get(f"{CAMPAIGNS}?limit=5").status_code == 200  # the list still answers


def test_custom_fields_are_bounded_and_the_limit_is_named(api: TestClient, db: Database) -> None:
    before = _counts(db)
    many = api.post("/api/contacts/", json={"first_name": "Ann", "custom_fields": {f"f{i}": i for i in range(101)}})
    assert many.status_code == 422 and "at most 100" in many.json()["errors"]["custom_fields"]
    big = api.post("/api/contacts/", json={"first_name": "Ann", "custom_fields": {"notes": "x" * 70_000}})
    assert big.status_code == 422 and "64 KB" in big.json()["errors"]["custom_fields"]
    assert _counts(db) == before


def test_a_body_over_the_limit_is_413_json_and_one_without_a_token_is_401_unread(db: Database, api: TestClient) -> None:
    huge = b'{"first_name": "' + b"x" * 2_000_000 + b'"}'
    answer = api.post("/api/contacts/", content=huge, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "1,048,576 bytes" in answer.json()["detail"]

    def stream():  # a 100 MB body, made as it is sent
        for _ in range(100):
            yield b"x" * 1_000_000

    with TestClient(create_app(db, api_settings())) as anonymous:
        refused = anonymous.post("/api/contacts/", content=stream(), headers={"Content-Type": "application/json"})
    assert refused.status_code == 401 and refused.json()["detail"].startswith("missing bearer token")
    bigger = Settings(_env_file=None, api_token=TOKEN, api_max_body=4_000_000)
    with TestClient(create_app(db, bigger), headers=AUTH) as roomy:
        answer = roomy.post("/api/contacts/", content=huge, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and "first_name" in answer.json()["errors"]  # read, then validated


def test_a_template_bomb_is_refused_within_a_second(api: TestClient, db: Database, contact_id: int) -> None:
    before = _counts(db)
    for subject in (
        "{{ 'a' * 10**9 }}",
        "{% for i in range(20000) %}{% for j in range(20000) %}{% endfor %}{% endfor %}",
    ):
        began = time.monotonic()
        answer = api.post(
            CAMPAIGNS, json={"name": "Bomb", "contact_id": contact_id, "steps": [{**EMAIL_STEP, "subject": subject}]}
        )
        assert time.monotonic() - began < 1.5
        assert answer.status_code == 422
        assert "too costly to render" in answer.json()["errors"]["steps.0.subject"]
    assert _counts(db) == before


def test_a_retry_with_the_same_idempotency_key_creates_nothing_new(
    api: TestClient, db: Database, contact_id: int
) -> None:
    body = {"name": "Once", "contact_id": contact_id, "steps": [EMAIL_STEP]}
    first = api.post(CAMPAIGNS, json=body, headers={"Idempotency-Key": "order-42"})
    again = api.post(CAMPAIGNS, json=body, headers={"Idempotency-Key": "order-42"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(AutomationCampaign)) == 1
    other = api.post(CAMPAIGNS, json={**body, "name": "Other"}, headers={"Idempotency-Key": "order-42"})
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["errors"]
    without = api.post(CAMPAIGNS, json=body)
    assert without.status_code == 201 and without.json()["id"] != first.json()["id"]


def test_a_database_locked_past_its_timeout_answers_503_with_retry_after(sqlite_db: Database) -> None:
    settings = Settings(_env_file=None, api_token=TOKEN, sqlite_busy_timeout=0.3)
    db = Database(sqlite_db.url, settings=settings)
    before = _counts(db)
    with sqlite_write_lock(sqlite_db), TestClient(create_app(db, settings), headers=AUTH) as client:
        answer = client.post("/api/contacts/", json={"first_name": "Ann"})
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "5" and "nothing was changed" in answer.json()["detail"]
    assert _counts(db) == before
    db.dispose()


@pytest.mark.parametrize("key", ["", "k" * 300])
def test_a_malformed_idempotency_key_is_named(api: TestClient, key: str) -> None:
    answer = api.post("/api/contacts/", json={"first_name": "Ann"}, headers={"Idempotency-Key": key})
    assert answer.status_code == 422 and "Idempotency-Key" in answer.json()["errors"]
