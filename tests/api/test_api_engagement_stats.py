"""The stats API's `funnel`: what the recipients of the range's emails did, per template."""

from __future__ import annotations

from fastapi.testclient import TestClient

from automations.domain.db import Database
from tests.reports.engagement_data import build_engagement

STATS = "/api/automation/stats/"
WEEK = {"start": "2026-03-02T09:00:00Z", "end": "2026-03-09T09:00:00Z"}
FIELDS = {"template_id", "template_name", "sent", "opened", "clicked", "replied", "bounced", "unsubscribed"}


def test_funnel_per_template(api: TestClient, db: Database) -> None:
    built = build_engagement(db)
    answer = api.get(STATS, params=WEEK)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # Additive: the figures are all still there, the per-step funnel of the page is not this one.
    assert {"campaigns_by_status", "steps_by_status", "success_rate", "moved", "lag_seconds"} <= set(body)
    onboarding, own = body["funnel"]
    assert set(onboarding) == FIELDS
    assert onboarding == {
        "template_id": built.template_id,
        "template_name": "Onboarding",
        "sent": 7,
        "opened": 3,
        "clicked": 3,
        "replied": 1,
        "bounced": 1,
        "unsubscribed": 1,
    }
    assert own["template_id"] is None and (own["sent"], own["opened"]) == (1, 1)


def test_funnel_follows_the_filters_and_counts_machine_opens_when_asked(api: TestClient, db: Database) -> None:
    built = build_engagement(db)
    machines = api.get(STATS, params={**WEEK, "machine_opens": "true"}).json()["funnel"]
    assert machines[0]["opened"] == 4  # and Ben's, opened by a mail proxy only
    one = api.get(STATS, params={**WEEK, "template_id": built.template_id}).json()["funnel"]
    assert [row["template_name"] for row in one] == ["Onboarding"]
    assert api.get(STATS, params={**WEEK, "message_type": "sms"}).json()["funnel"] == []
    everything = api.get(STATS).json()["funnel"]
    assert everything[0]["sent"] == 8  # the welcome sent to Eve before the week too


def test_an_empty_database_has_an_empty_funnel(api: TestClient) -> None:
    assert api.get(STATS).json()["funnel"] == []
