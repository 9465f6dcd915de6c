"""What the reports say about time-aware scheduling: the steps moved by the send
window, holidays, SMS quiet hours and frequency caps (counted in SQL, on both
databases, in the statistics and over HTTP), a campaign's schedule in words with
each step's zone and note, and the planning zones of the calendar's events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from automations.api import create_app
from automations.domain.db import Database
from automations.domain.models import AutomationStep
from automations.reports.calendar import event_detail, planning_zones
from automations.reports.stats import (
    StatsFilter,
    automation_stats,
    moved_counts,
    moved_counts_query,
    stats_rows,
)
from automations.reports.timelines import campaign_detail, schedule_summary
from tests.api.conftest import AUTH, Clock, api_settings
from tests.conftest import NOW, query_plan
from tests.reports.schedule_data import CAP_NOTE, MONDAY_0900, WINDOW, WINDOW_NOTE, build_moved, quiet_hours_on

MARCH = StatsFilter(start=datetime(2026, 3, 1, tzinfo=UTC), end=datetime(2026, 4, 1, tzinfo=UTC))
SPRING = StatsFilter(start=datetime(2026, 3, 1, tzinfo=UTC), end=datetime(2026, 6, 1, tzinfo=UTC))


def test_moved_steps_are_counted_by_reason_over_the_planned_range(db: Database, monkeypatch) -> None:
    quiet_hours_on(monkeypatch)
    built = build_moved(db)
    with db.read_session() as s:
        # The Memorial Day email moved for two reasons: it counts under both.
        assert moved_counts(s, SPRING) == {"window": 2, "holidays": 1, "quiet_hours": 1, "frequency_cap": 1}
        assert moved_counts(s, MARCH) == {"window": 1, "holidays": 0, "quiet_hours": 1, "frequency_cap": 1}
        assert moved_counts(s) == moved_counts(s, SPRING)  # no range: every step
        only_sms = StatsFilter(MARCH.start, MARCH.end, message_type="sms")
        assert moved_counts(s, only_sms) == {"window": 0, "holidays": 0, "quiet_hours": 1, "frequency_cap": 0}
        one_template = StatsFilter(SPRING.start, SPRING.end, template_id=built.template_id)
        assert moved_counts(s, one_template) == {"window": 1, "holidays": 0, "quiet_hours": 0, "frequency_cap": 0}
        # The range is on the planned time: the capped email is planned on 13 March.
        thirteenth = StatsFilter(datetime(2026, 3, 13, tzinfo=UTC), datetime(2026, 3, 14, tzinfo=UTC))
        assert moved_counts(s, thirteenth)["frequency_cap"] == 1
        assert moved_counts(s, StatsFilter(datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC))) == {
            "window": 0,
            "holidays": 0,
            "quiet_hours": 0,
            "frequency_cap": 0,
        }
        # The figures carry them (every other key kept), and so does the stats CSV.
        figures = automation_stats(s, NOW, SPRING)
        assert figures["moved"] == moved_counts(s, SPRING) and figures["steps_total"] == 5
        assert ("moved", "quiet_hours", 1) in stats_rows(figures)


def test_a_holiday_name_that_reads_like_another_reason_is_still_a_holiday(db: Database) -> None:
    build = build_moved(db)
    with db.session() as s:
        step = s.get(AutomationStep, build.step_ids["Call"])
        step.schedule_note = "holiday (Day of the frequency cap and SMS quiet hours)"
    with db.read_session() as s:
        assert moved_counts(s, SPRING) == {"window": 2, "holidays": 2, "quiet_hours": 0, "frequency_cap": 1}


def test_the_moved_counts_read_the_planned_time_index(sqlite_db: Database, pg_db: Database) -> None:
    for db in (sqlite_db, pg_db):
        plan = query_plan(db, moved_counts_query(MARCH), prefer_indexes=True)
        assert "ix_automation_steps_scheduled_at" in plan, plan


def test_the_stats_api_answers_the_moved_counts(db: Database, monkeypatch) -> None:
    quiet_hours_on(monkeypatch)
    build_moved(db)
    with TestClient(create_app(db, api_settings(), clock=Clock(NOW)), headers=AUTH) as api:
        body = api.get(
            "/api/automation/stats/", params={"start": "2026-03-01T00:00:00Z", "end": "2026-06-01T00:00:00Z"}
        )
        assert body.status_code == 200, body.text
        figures = body.json()
        assert figures["moved"] == {"window": 2, "holidays": 1, "quiet_hours": 1, "frequency_cap": 1}
        assert {"steps_by_status", "success_rate", "lag_seconds", "followups"} <= set(figures)
        sms = api.get("/api/automation/stats/", params={"message_type": "sms"}).json()
        assert sms["moved"] == {"window": 0, "holidays": 0, "quiet_hours": 1, "frequency_cap": 0}
        described = api.get("/openapi.json").json()["components"]["schemas"]["MovedOut"]["properties"]
        assert set(described) == {"window", "holidays", "quiet_hours", "frequency_cap"}


def test_campaign_detail_has_the_schedule_in_words_and_each_steps_note(db: Database, monkeypatch) -> None:
    quiet_hours_on(monkeypatch)
    built = build_moved(db)
    with db.read_session() as s:
        detail = campaign_detail(s, built.campaign_ids["Window"])
        assert detail.zone == "America/New_York"
        assert detail.schedule_text == "Contact's time zone (America/New_York) · Mon–Fri 09:00–17:00 · holidays US"
        check_in, call = detail.steps
        assert check_in.scheduled_at == MONDAY_0900 and check_in.schedule_note == WINDOW_NOTE
        assert call.scheduled_at == MONDAY_0900 + timedelta(days=1) and call.schedule_note is None
        quiet = campaign_detail(s, built.campaign_ids["Quiet"])
        assert quiet.schedule_text == "Contact's time zone (America/New_York) · No send window"
        assert quiet.steps[0].schedule_note == "SMS quiet hours 21:00–08:00"


def test_schedule_summary_names_the_clock_the_days_and_the_exemption() -> None:
    assert schedule_summary(None, "Europe/Paris") == "Contact's time zone (Europe/Paris) · No send window"
    weekend = {"days": ["sat", "sun", "wed"], "start": "10:00", "end": "12:00"}
    assert (
        schedule_summary({"timezone": "Asia/Tokyo", "send_window": weekend, "frequency_cap_exempt": True}, "UTC")
        == "Time zone Asia/Tokyo · Wed, Sat, Sun 10:00–12:00 · not held back by the frequency caps"
    )
    every_day = {**WINDOW, "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}
    assert schedule_summary({"send_window": every_day}, "UTC") == "Contact's time zone (UTC) · Every day 09:00–17:00"


def test_events_have_their_planning_zone_and_note(db: Database, monkeypatch) -> None:
    quiet_hours_on(monkeypatch)
    built = build_moved(db)
    with db.read_session() as s:
        detail = event_detail(s, built.step_ids["Check-in"])
        assert (detail.zone, detail.schedule_note) == ("America/New_York", WINDOW_NOTE)
        assert event_detail(s, built.step_ids["Capped"]).schedule_note == CAP_NOTE
        ids = list(s.scalars(select(AutomationStep.campaign_id)))
        assert planning_zones(s, ids) == dict.fromkeys(built.campaign_ids.values(), "America/New_York")
        assert planning_zones(s, []) == {}


def test_a_campaign_in_a_fixed_zone_is_planned_and_shown_in_it(db: Database) -> None:
    from automations.services.campaigns import create_campaign

    built = build_moved(db)
    with db.session() as s:
        campaign = create_campaign(
            s,
            {
                "name": "Tokyo desk",
                "contact_id": built.contact_id,
                "steps": [{"name": "Ping", "message_type": "email", "subject": "Hi", "body": "b"}],
                "schedule": {"timezone": "Asia/Tokyo"},
            },
            now=NOW,
        )
        campaign_id = campaign.id
    with db.read_session() as s:
        assert planning_zones(s, [campaign_id]) == {campaign_id: "Asia/Tokyo"}
        assert campaign_detail(s, campaign_id).schedule_text == "Time zone Asia/Tokyo · No send window"


def test_nothing_moved_counts_zero_for_every_reason(sqlite_db: Database) -> None:
    with sqlite_db.read_session() as s:
        assert moved_counts(s, MARCH) == {"window": 0, "holidays": 0, "quiet_hours": 0, "frequency_cap": 0}
