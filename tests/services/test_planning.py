"""Campaigns planned in the recipient's clock, end to end through the services:
created at any time, edited, shifted by a late step, paused and resumed, a step
never lands outside the window, on a holiday or (SMS) in quiet hours, and the gaps
between steps are at least their delays."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from automations.domain.config import get_settings
from automations.domain.db import Database
from automations.domain.models import AutomationStep, StepStatus
from automations.domain.schedule import holiday_calendar
from automations.domain.timeutil import UTC
from automations.services.campaigns import (
    create_campaign,
    pause_campaign,
    preview_schedule,
    replace_pending_steps,
    resume_campaign,
)
from automations.services.contacts import create_contact
from automations.services.scheduling import finish_step
from automations.services.seed import seed_system_templates
from automations.services.templates import create_template

NEW_YORK = ZoneInfo("America/New_York")
WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
OFFICE_HOURS = {"timezone": "contact", "send_window": WINDOW, "holidays": "US"}
US = holiday_calendar("US")

STEPS: list[dict[str, Any]] = [
    {"name": "Welcome", "message_type": "email", "subject": "Hi", "body": "Welcome"},
    {"name": "Nudge", "message_type": "sms", "delay_days": 1, "delay_hours": 5, "body": "Still there?"},
    {"name": "Call", "message_type": "task", "delay_days": 2, "business_days": True, "subject": "Call"},
    {"name": "Day 6", "message_type": "email", "delay_days": 3, "send_at": "08:30", "subject": "Hi", "body": "x"},
    {"name": "Later", "message_type": "email", "delay_hours": 30, "subject": "Hi", "body": "x"},
]
DELAYS = [timedelta(days=s.get("delay_days", 0), hours=s.get("delay_hours", 0)) for s in STEPS]


@pytest.fixture(autouse=True)
def _quiet_hours(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AUTOMATIONS_SMS_QUIET_HOURS", "21:00-08:00")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def ada(sqlite_db: Database) -> int:
    with sqlite_db.session() as session:
        seed_system_templates(session)
        contact = create_contact(session, {"first_name": "Ada", "timezone": "America/New_York"})
        return contact.id


def _in_office_hours(moment: datetime, message_type: str) -> bool:
    local = moment.astimezone(NEW_YORK)
    inside = local.weekday() < 5 and 9 <= local.hour < 17 and local.date() not in US
    if message_type == "sms":
        inside = inside and 8 <= local.hour < 21
    return inside


def _steps(db: Database, campaign_id: int) -> list[Any]:
    with db.read_session() as session:
        return list(
            session.execute(
                select(AutomationStep.__table__).where(AutomationStep.campaign_id == campaign_id).order_by("position")
            )
        )


STARTS = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31)).map(
    lambda naive: naive.replace(tzinfo=UTC)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=STARTS)
def test_a_new_york_campaign_started_at_any_time_stays_inside_the_window(
    sqlite_db: Database, ada: int, start: datetime
) -> None:
    with sqlite_db.session() as session:
        campaign = create_campaign(
            session,
            {"name": "Office hours", "contact_id": ada, "steps": STEPS, "schedule": OFFICE_HOURS, "start_at": start},
            now=start,
        )
        planned = [(s.scheduled_at, s.message_type, s.schedule_note) for s in campaign.steps]
    previous = start
    for (at, kind, _note), delay in zip(planned, DELAYS, strict=True):
        assert _in_office_hours(at, kind), (start, at.astimezone(NEW_YORK), kind)
        assert at - previous >= delay - timedelta(hours=1)  # a DST change may take back an hour of a day
        previous = at
    # the preview shows the same times and reasons before anything is saved
    preview = preview_schedule(
        STEPS, start_at=start, schedule=OFFICE_HOURS, contact_timezone="America/New_York", now=start
    )
    assert [(p.at, p.note) for p in preview] == [(at, note) for at, _, note in planned]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=STARTS,
    pause_after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
    paused_for=st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=20)),
)
def test_after_a_pause_the_gaps_are_at_least_the_delays_and_inside_the_window(
    sqlite_db: Database, ada: int, start: datetime, pause_after: timedelta, paused_for: timedelta
) -> None:
    with sqlite_db.session() as session:
        campaign = create_campaign(
            session, {"name": "P", "contact_id": ada, "steps": STEPS, "schedule": OFFICE_HOURS}, now=start
        )
        campaign_id = campaign.id
        before = [s.scheduled_at for s in campaign.steps]
        pause_campaign(session, campaign_id, now=start + pause_after)
        resume_campaign(session, campaign_id, now=start + pause_after + paused_for)
    steps = _steps(sqlite_db, campaign_id)
    for step, old in zip(steps, before, strict=True):
        assert _in_office_hours(step.scheduled_at, step.message_type)
        assert step.scheduled_at >= old + paused_for - timedelta(hours=1)  # never earlier than the pause allows
        assert step.due_at >= step.scheduled_at
    for earlier, later in zip(steps, steps[1:], strict=False):
        delay = timedelta(days=later.delay_days, hours=later.delay_hours)
        assert later.scheduled_at - earlier.scheduled_at >= delay - timedelta(hours=1)


def test_a_late_step_moves_the_next_ones_back_inside_the_window(sqlite_db: Database, ada: int) -> None:
    start = datetime(2026, 12, 1, 10, 0, tzinfo=NEW_YORK)  # Tuesday 10:00
    with sqlite_db.session() as session:
        campaign = create_campaign(
            session, {"name": "Late", "contact_id": ada, "steps": STEPS[:2], "schedule": OFFICE_HOURS}, now=start
        )
        first, second = campaign.steps
        assert second.scheduled_at.astimezone(NEW_YORK) == datetime(2026, 12, 2, 15, 0, tzinfo=NEW_YORK)
        # The runner was down: the first step ran 6 hours late (16:00), so the SMS
        # moves 6 hours too, to Wednesday 21:00, past the window: Thursday 09:00.
        first.status = StepStatus.RUNNING.value
        finish_step(session, first, StepStatus.SENT, start + timedelta(hours=6))
        campaign_id = campaign.id
    second = _steps(sqlite_db, campaign_id)[1]
    assert second.scheduled_at.astimezone(NEW_YORK) == datetime(2026, 12, 3, 9, 0, tzinfo=NEW_YORK)
    assert second.due_at == second.scheduled_at
    assert "outside the send window" in (second.schedule_note or "")


def test_edited_pending_steps_are_planned_in_the_window(sqlite_db: Database, ada: int) -> None:
    now = datetime(2026, 12, 5, 11, 0, tzinfo=NEW_YORK)  # Saturday
    with sqlite_db.session() as session:
        campaign = create_campaign(
            session, {"name": "E", "contact_id": ada, "steps": STEPS[:1], "schedule": OFFICE_HOURS}, now=now
        )
        campaign = replace_pending_steps(session, campaign.id, [STEPS[0], STEPS[3]], now=now)
        times = [s.scheduled_at.astimezone(NEW_YORK) for s in campaign.steps]
    # Monday 09:00; 3 days later is Thursday 09:00, the next 08:30 after it Friday's,
    # before the window opens: Friday 09:00.
    assert times == [datetime(2026, 12, 7, 9, 0, tzinfo=NEW_YORK), datetime(2026, 12, 11, 9, 0, tzinfo=NEW_YORK)]


def test_a_campaign_from_a_template_copies_its_schedule(sqlite_db: Database, ada: int) -> None:
    now = datetime(2026, 12, 25, 12, 0, tzinfo=NEW_YORK)  # Christmas, a Friday
    with sqlite_db.session() as session:
        template = create_template(session, {"name": "Office", "steps": STEPS, "schedule": OFFICE_HOURS})
        campaign = create_campaign(session, {"name": "C", "contact_id": ada, "template_id": template.id}, now=now)
        assert campaign.schedule == {**OFFICE_HOURS, "frequency_cap_exempt": False}
        first = campaign.steps[0]
        assert first.scheduled_at.astimezone(NEW_YORK) == datetime(2026, 12, 28, 9, 0, tzinfo=NEW_YORK)
        assert "holiday (Christmas Day)" in (first.schedule_note or "")
        # a schedule given with the campaign wins over the template's
        own = create_campaign(
            session, {"name": "D", "contact_id": ada, "template_id": template.id, "schedule": {}}, now=now
        )
        assert own.schedule["send_window"] is None and own.steps[0].scheduled_at == now


def test_a_fixed_zone_plans_in_that_zone_whatever_the_contacts(sqlite_db: Database, ada: int) -> None:
    now = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)  # 15:00 in New York, 05:00 in Tokyo the next day
    schedule = {"timezone": "Asia/Tokyo", "send_window": WINDOW}
    with sqlite_db.session() as session:
        campaign = create_campaign(
            session, {"name": "T", "contact_id": ada, "steps": STEPS[:1], "schedule": schedule}, now=now
        )
        at = campaign.steps[0].scheduled_at
    assert at.astimezone(ZoneInfo("Asia/Tokyo")) == datetime(2026, 12, 2, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def test_a_contact_without_a_zone_is_planned_in_the_teams(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATIONS_TIMEZONE", "Europe/Berlin")
    get_settings.cache_clear()
    now = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # 08:00 in Berlin
    with sqlite_db.session() as session:
        contact = create_contact(session, {"first_name": "Grace"})
        assert contact.timezone == "Europe/Berlin"
        campaign = create_campaign(
            session,
            {"name": "B", "contact_id": contact.id, "steps": STEPS[:1], "schedule": {"send_window": WINDOW}},
            now=now,
        )
        at = campaign.steps[0].scheduled_at
    assert at.astimezone(ZoneInfo("Europe/Berlin")).hour == 9
