"""The queries behind the dashboard: overview figures, runner health, timelines, CSV import."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from automations.domain.db import Database
from automations.domain.errors import ValidationError
from automations.domain.models import AutomationStep, Contact, RunnerHeartbeat
from automations.domain.timeutil import UTC
from automations.reports.overview import (
    latest_executions,
    next_scheduled_steps,
    overview_figures,
    runner_states,
    silent_holders,
)
from automations.reports.timelines import campaign_detail, contact_timeline
from automations.services.campaigns import create_campaign, pause_campaign
from automations.services.contact_import import import_contacts, preview_import
from automations.services.contacts import create_contact
from automations.services.followups import create_followup
from tests.conftest import NOW

STEPS = [
    {"name": "Hello", "message_type": "email", "subject": "Hi {{ contact.first_name }}", "body": "Welcome"},
    {"name": "Call", "message_type": "task", "delay_days": 1, "subject": "Call {{ contact.first_name }}"},
]


def _campaign(db: Database) -> tuple[int, int]:
    with db.session() as s:
        contact = create_contact(s, {"first_name": "Ada", "email": "ada@example.com"}, now=NOW)
        campaign = create_campaign(s, {"name": "Welcome", "contact_id": contact.id, "steps": STEPS}, now=NOW)
        return contact.id, campaign.id


def test_overview_counts_and_success_rate(db: Database) -> None:
    contact_id, campaign_id = _campaign(db)
    with db.session() as s:
        first = s.scalars(select(AutomationStep).where(AutomationStep.position == 0)).one()
        first.status, first.executed_at = "failed", NOW - timedelta(hours=1)
        first.last_error = "550 mailbox unavailable"
        create_followup(s, {"contact_id": contact_id, "title": "Late", "due_at": NOW - timedelta(days=1)})
    with db.read_session() as s:
        figures = overview_figures(s, NOW, UTC)
        assert figures.active_campaigns == 1
        assert figures.failed_last_7_days == 1 and figures.success_rate == 0.0
        assert figures.followups.overdue == 1
        nxt = next_scheduled_steps(s, NOW)
        assert [line.step_name for line in nxt] == ["Call"]
        latest = latest_executions(s, NOW)
        assert latest[0].status == "failed" and latest[0].last_error == "550 mailbox unavailable"


def test_runner_alive_only_while_it_ticks(db: Database) -> None:
    with db.session() as s:
        s.add(RunnerHeartbeat(runner_id="r1", host="h", pid=1, started_at=NOW, last_tick_at=NOW))
    with db.read_session() as s:
        assert runner_states(s, NOW + timedelta(seconds=10))[0].alive
        assert not runner_states(s, NOW + timedelta(minutes=5))[0].alive


def test_campaign_detail_is_personalised_and_timeline_lists_steps(db: Database) -> None:
    contact_id, campaign_id = _campaign(db)
    with db.read_session() as s:
        detail = campaign_detail(s, campaign_id)
        assert [step.subject for step in detail.steps] == ["Hi Ada", "Call Ada"]
        assert len(detail.pending_steps) == 2 and detail.progress == (0, 2)
        entries = contact_timeline(s, contact_id)
        assert {e.what for e in entries} == {"Hello", "Call"}


CSV = (
    "first_name,last_name,email,phone,tags,email_opt_out,plan\n"
    "Ann,Lee,ann@example.com,+14155550123,vip;lead,no,gold\n"
    ",NoName,noname@example.com,,,,\n"
    "Bob,Ray,not-an-email,,,,\n"
    "Cy,Dup,ann@example.com,,,,\n"
    "Dee,Old,taken@example.com,,,maybe,\n"
    "Eve,Ok,,+44 20 7946 0958,,yes,silver\n"
)


def test_csv_import_creates_valid_rows_and_reports_every_bad_one(db: Database) -> None:
    with db.session() as s:
        create_contact(s, {"first_name": "Old", "email": "taken@example.com"})
    with db.read_session() as s:
        fmt, preview, total = preview_import(s, CSV.encode())
    assert (fmt.encoding, fmt.delimiter, total) == ("utf-8", ",", 6)
    assert [(r.line, sorted(r.errors)) for r in preview] == [
        (2, []),
        (3, ["first_name"]),
        (4, ["email"]),
        (5, ["email"]),
        (6, ["email_opt_out"]),
        (7, []),
    ]
    result = import_contacts(db.session, io.BytesIO(CSV.encode()), now=NOW)
    assert result.created == 2
    assert [r.line for r in result.rejected] == [3, 4, 5, 6]
    with db.read_session() as s:
        ann = s.scalars(select(Contact).where(Contact.email == "ann@example.com")).one()
        assert ann.tags == ["lead", "vip"] and ann.custom_fields == {"plan": "gold"}
        eve = s.scalars(select(Contact).where(Contact.first_name == "Eve")).one()
        assert eve.phone == "+442079460958" and eve.email_opt_out
        assert s.scalar(select(func.count()).select_from(Contact)) == 3


def test_csv_without_a_header_is_refused(sqlite_db: Database) -> None:
    with pytest.raises(ValidationError) as caught:
        import_contacts(sqlite_db.session, io.BytesIO(b"Ann,Lee\n"))
    assert "first_name" in caught.value.errors["file"]


def test_overdue_steps_of_paused_campaigns_are_counted_apart(db: Database) -> None:
    contact_id, _ = _campaign(db)
    with db.session() as s:
        other = create_campaign(s, {"name": "Later", "contact_id": contact_id, "steps": STEPS}, now=NOW)
        pause_campaign(s, other.id, now=NOW)
    with db.read_session() as s:
        figures = overview_figures(s, NOW + timedelta(days=3), UTC)
    # Two steps of the active campaign are due now; the paused one's wait for a resume.
    assert (figures.steps_overdue, figures.steps_waiting_on_paused) == (2, 2)


def test_steps_held_by_a_silent_runner_are_named_with_when_they_are_taken_over(db: Database) -> None:
    _campaign(db)
    lease = NOW + timedelta(seconds=30)
    with db.session() as s:
        s.add(RunnerHeartbeat(runner_id="gone", host="h", pid=1, started_at=NOW, last_tick_at=NOW))
        s.add(
            RunnerHeartbeat(runner_id="busy", host="h", pid=2, started_at=NOW, last_tick_at=NOW + timedelta(minutes=5))
        )
        first, second = s.scalars(select(AutomationStep).order_by(AutomationStep.position)).all()
        first.status, first.claimed_by, first.claim_token, first.lease_expires_at = "running", "gone", "t1", lease
        second.status, second.claimed_by, second.claim_token = "running", "busy", "t2"
        second.lease_expires_at = NOW + timedelta(minutes=5, seconds=30)
    with db.read_session() as s:
        holders = silent_holders(s, NOW + timedelta(minutes=5))
    assert [(h.runner_id, h.steps, h.silent_since, h.lease_expires_at) for h in holders] == [("gone", 1, NOW, lease)]
