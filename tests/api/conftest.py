"""An API client per test, on the test's own database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from automations.api import create_app
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.services.seed import seed_system_templates
from tests.conftest import NOW

TOKEN = "s3cret-api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Clock:
    """A "now" the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now = self.now + delta


def api_settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, api_token=TOKEN, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def api(db: Database, clock: Clock) -> Iterator[TestClient]:
    """A client that sends the right token, on a database with the system templates."""
    with db.session() as session:
        seed_system_templates(session)
    with TestClient(create_app(db, api_settings(), clock=clock), headers=AUTH) as client:
        yield client


@pytest.fixture
def contact_id(api: TestClient) -> int:
    response = api.post(
        "/api/contacts/",
        json={"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com", "phone": "+14155550123"},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


EMAIL_STEP = {
    "name": "Welcome",
    "message_type": "email",
    "subject": "Hi {{ contact.first_name }}",
    "body": "Welcome aboard",
}
TASK_STEP = {"name": "Call", "message_type": "task", "delay_days": 2, "subject": "Call Ann", "body": "notes"}
SMS_STEP = {"name": "Nudge", "message_type": "sms", "delay_days": 1, "delay_hours": 3, "body": "Still there?"}
