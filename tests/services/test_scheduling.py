"""SPEC section 3, with `now` passed in: what a user sees on the calendar and in a campaign."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from automations.domain.errors import Conflict
from automations.domain.models import (
    AutomationStep,
    CampaignStatus,
    ContactEvent,
    StepStatus,
)
from automations.services import campaigns, contacts
from automations.services.scheduling import LATE_GRACE, finish_step
from tests.conftest import NOW


def _steps(*delays: tuple[int, int]) -> list[dict]:
    return [
        {
            "name": f"Step {i + 1}",
            "message_type": "task",
            "delay_days": d,
            "delay_hours": h,
            "subject": f"Call #{i + 1}",
        }
        for i, (d, h) in enumerate(delays)
    ]


def _campaign(session, steps, start_at=None, now=NOW):
    contact = contacts.create_contact(session, {"first_name": "Grace", "email": "grace@example.com"}, now=now)
    return campaigns.create_campaign(
        session,
        {"name": "Follow-up", "contact_id": contact.id, "steps": steps, "start_at": start_at},
        now=now,
    )


def _times(session, campaign_id):
    steps = session.scalars(
        select(AutomationStep).where(AutomationStep.campaign_id == campaign_id).order_by(AutomationStep.position)
    ).all()
    return [(s.status, s.scheduled_at) for s in steps]


def test_delays_count_from_the_previous_step_and_the_start(db):
    with db.session() as s:
        c = _campaign(s, _steps((0, 0), (2, 0), (0, 5), (1, 1)))
        assert [t for _, t in _times(s, c.id)] == [
            NOW,
            NOW + timedelta(days=2),
            NOW + timedelta(days=2, hours=5),
            NOW + timedelta(days=3, hours=6),
        ]
        assert c.status == CampaignStatus.ACTIVE.value


def test_future_start_schedules_everything_from_the_start(db):
    start = NOW + timedelta(days=10)
    with db.session() as s:
        c = _campaign(s, _steps((1, 0), (1, 0)), start_at=start)
        assert [t for _, t in _times(s, c.id)] == [start + timedelta(days=1), start + timedelta(days=2)]


def test_past_start_makes_overdue_steps_due_now_and_keeps_future_ones(db):
    start = NOW - timedelta(days=10)
    with db.session() as s:
        c = _campaign(s, _steps((0, 0), (1, 0), (12, 0)), start_at=start)
        times = [t for _, t in _times(s, c.id)]
    # the two overdue steps run at once (in order); the third keeps its time
    assert times == [NOW, NOW, start + timedelta(days=13)]


def test_a_late_step_moves_the_pending_steps_after_it_keeping_gaps(db):
    with db.session() as s:
        c = _campaign(s, _steps((0, 0), (1, 0), (0, 3)))
        first = c.steps[0]
        late_by = timedelta(hours=7)  # the runner was down
        finish_step(s, first, StepStatus.DONE, NOW + late_by)
        times = _times(s, c.id)
    assert times[0] == (StepStatus.DONE.value, NOW)
    assert times[1][1] == NOW + timedelta(days=1) + late_by
    assert times[2][1] - times[1][1] == timedelta(hours=3)


def test_a_step_on_time_moves_nothing(db):
    with db.session() as s:
        c = _campaign(s, _steps((0, 0), (1, 0)))
        finish_step(s, c.steps[0], StepStatus.DONE, NOW + LATE_GRACE - timedelta(seconds=1))
        assert _times(s, c.id)[1][1] == NOW + timedelta(days=1)


def test_pause_and_resume_moves_pending_steps_by_the_pause(db):
    with db.session() as s:
        c = _campaign(s, _steps((0, 0), (2, 0), (1, 0)))
        finish_step(s, c.steps[0], StepStatus.DONE, NOW)
        campaigns.pause_campaign(s, c.id, now=NOW + timedelta(hours=1))
        assert c.status == CampaignStatus.PAUSED.value
        campaigns.resume_campaign(s, c.id, now=NOW + timedelta(days=3, hours=1))
        times = _times(s, c.id)
    assert c.status == CampaignStatus.ACTIVE.value
    assert times[0][1] == NOW  # executed steps keep their time
    assert times[1][1] == NOW + timedelta(days=5)
    assert times[2][1] == NOW + timedelta(days=6)


def test_cancel_cancels_pending_steps_and_cannot_be_resumed(db):
    with db.session() as s:
        c = _campaign(s, _steps((0, 0), (1, 0), (1, 0)))
        finish_step(s, c.steps[0], StepStatus.DONE, NOW)
        campaigns.cancel_campaign(s, c.id, now=NOW)
        statuses = [status for status, _ in _times(s, c.id)]
        assert statuses == ["done", "canceled", "canceled"]
        with pytest.raises(Conflict):
            campaigns.resume_campaign(s, c.id, now=NOW)
        with pytest.raises(Conflict):
            campaigns.update_campaign(s, c.id, {"status": "active"}, now=NOW)


def test_campaign_completes_when_no_step_is_open_and_records_the_event(db):
    with db.session() as s:
        c = _campaign(s, _steps((0, 0), (1, 0)))
        finish_step(s, c.steps[0], StepStatus.DONE, NOW)
        assert c.status == CampaignStatus.ACTIVE.value
        finish_step(s, c.steps[1], StepStatus.FAILED, NOW + timedelta(days=1), error="HTTP 404")
        assert c.status == CampaignStatus.COMPLETED.value
        assert c.completed_at == NOW + timedelta(days=1)
        kinds = s.scalars(select(ContactEvent.kind).where(ContactEvent.contact_id == c.contact_id)).all()
    # a permanently failed step is recorded and the campaign still completes
    assert "step_failed" in kinds and "campaign_completed" in kinds


def test_editing_replaces_only_pending_steps_and_replans_them(db):
    with db.session() as s:
        c = _campaign(s, _steps((0, 0), (1, 0), (1, 0)))
        finish_step(s, c.steps[0], StepStatus.DONE, NOW + timedelta(minutes=5))
        campaigns.update_campaign(
            s, c.id, {"name": "Renamed", "steps": _steps((0, 4), (2, 0))}, now=NOW + timedelta(hours=1)
        )
        times = _times(s, c.id)
        assert c.name == "Renamed"
    assert [status for status, _ in times] == ["done", "pending", "pending"]
    # re-planned from the last executed step
    assert times[1][1] == NOW + timedelta(minutes=5, hours=4)
    assert times[2][1] == NOW + timedelta(minutes=5, hours=4, days=2)


def test_editing_away_every_pending_step_completes_the_campaign(db):
    with db.session() as s:
        c = _campaign(s, _steps((0, 0), (1, 0)))
        finish_step(s, c.steps[0], StepStatus.DONE, NOW)
        campaigns.replace_pending_steps(s, c.id, [], now=NOW)
        assert c.status == CampaignStatus.COMPLETED.value


def test_deleting_a_campaign_keeps_the_contact(db):
    with db.session() as s:
        c = _campaign(s, _steps((0, 0)))
        contact_id, campaign_id = c.contact_id, c.id
    with db.session() as s:
        campaigns.delete_campaign(s, campaign_id)
    with db.read_session() as s:
        assert contacts.get_contact(s, contact_id).first_name == "Grace"
        assert s.scalars(select(AutomationStep).where(AutomationStep.campaign_id == campaign_id)).all() == []


def test_progress_and_next_step_in_the_campaign_list(db):
    with db.session() as s:
        c = _campaign(s, _steps((0, 0), (1, 0), (2, 0)))
        finish_step(s, c.steps[0], StepStatus.DONE, NOW)
    with db.read_session() as s:
        rows, total = campaigns.list_campaigns(s, campaigns.CampaignFilter(status="active"))
    assert total == 1
    assert (rows[0].steps_finished, rows[0].steps_total) == (1, 3)
    assert rows[0].next_step_name == "Step 2"
    assert rows[0].next_step_at == NOW + timedelta(days=1)
