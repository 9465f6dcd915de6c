"""The key figures over HTTP."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from automations.domain.db import Database
from automations.domain.models import AutomationStep, StepStatus
from automations.services import followups
from automations.services.scheduling import finish_step
from tests.api.conftest import EMAIL_STEP, SMS_STEP, TASK_STEP
from tests.conftest import NOW

STATS = "/api/automation/stats/"


def test_counts_rates_and_follow_ups(api: TestClient, db: Database, contact_id: int) -> None:
    assert api.get(STATS).json()["success_rate"] is None
    one = api.post(
        "/api/automation/campaigns/", json={"name": "A", "contact_id": contact_id, "steps": [EMAIL_STEP, SMS_STEP]}
    ).json()
    two = api.post(
        "/api/automation/campaigns/", json={"name": "B", "contact_id": contact_id, "steps": [TASK_STEP]}
    ).json()
    api.put(f"/api/automation/campaigns/{two['id']}/", json={"status": "canceled"})
    with db.session() as session:
        # What a runner records after executing the two steps of campaign A.
        first, second = (session.get(AutomationStep, s["id"]) for s in one["steps"])
        finish_step(session, first, StepStatus.SENT, NOW)
        finish_step(session, second, StepStatus.FAILED, NOW + timedelta(days=1, hours=3), error="550 no such user")
        followups.create_followup(
            session, {"contact_id": contact_id, "title": "Call", "due_at": NOW - timedelta(hours=1)}
        )
        followups.create_followup(
            session, {"contact_id": contact_id, "title": "Mail", "due_at": NOW + timedelta(days=1)}
        )

    figures = api.get(STATS)
    assert figures.status_code == 200, figures.text
    body = figures.json()
    assert body["campaigns_by_status"] == {"active": 0, "paused": 0, "completed": 1, "canceled": 1}
    assert body["campaigns_total"] == 2
    assert (
        body["steps_by_status"]["sent"],
        body["steps_by_status"]["failed"],
        body["steps_by_status"]["canceled"],
    ) == (1, 1, 1)
    assert body["steps_by_message_type"] == {"email": 1, "sms": 1, "task": 1, "webhook": 0}
    assert body["success_rate"] == 0.5 and body["completion_rate"] == 0.5
    assert body["followups"] == {"pending": 2, "overdue": 1}
    assert body["lag_seconds"]["executed"] == 2
    assert body["generated_at"] == NOW.isoformat()

    email_only = api.get(STATS, params={"message_type": "email"}).json()
    assert (email_only["steps_total"], email_only["success_rate"]) == (1, 1.0)
    later = api.get(STATS, params={"start": "2026-03-03", "end": "2026-03-10"}).json()
    assert later["steps_total"] == 2  # the SMS (executed 3 March) and the task (planned 4 March)
    refused = api.get(STATS, params={"start": "2026-03-03", "end": "2026-03-02"})
    assert (refused.status_code, list(refused.json()["errors"])) == (422, ["end"])
