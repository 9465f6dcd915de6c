"""The scheduling rules of a campaign (SPEC section 3), with `now` passed in.

- A step's delay counts from the previous step; the first from the campaign's start.
  Times are computed when the campaign is created, so the calendar shows its future.
- A step whose time is already past when the campaign is created (a start in the
  past) is due at once; such steps run one after the other, in order.
- A step that finishes more than `LATE_GRACE` after its time moves the pending
  steps after it by its lateness, so the gaps between steps are kept.
- Resuming after a pause moves the pending steps by the length of the pause.
- A campaign is completed when none of its steps is pending or running.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    CampaignStatus,
    StepStatus,
)
from automations.domain.timeutil import as_utc
from automations.services.events import record_event
from automations.services.planning import planner_for, shift_plan

# Lateness below this is the runner's normal poll delay, not an outage: it does
# not move the following steps (which would rewrite them after every step).
LATE_GRACE = timedelta(seconds=60)

OPEN_STEP_STATUSES = (StepStatus.PENDING.value, StepStatus.RUNNING.value)


class HasDelay(Protocol):
    delay_days: int
    delay_hours: int


def plan_times(start_at: datetime, steps: Sequence[HasDelay], now: datetime) -> list[datetime]:
    """The time of each step: cumulative delays from `start_at`, never before `now`."""
    times: list[datetime] = []
    planned = as_utc(start_at)
    now = as_utc(now)
    for step in steps:
        planned = planned + timedelta(days=step.delay_days, hours=step.delay_hours)
        times.append(max(planned, now))
    return times


def total_duration(steps: Iterable[HasDelay]) -> timedelta:
    return sum((timedelta(days=s.delay_days, hours=s.delay_hours) for s in steps), timedelta())


def shift_pending_steps(session: Session, campaign_id: int, delta: timedelta, after_position: int = -1) -> int:
    """Move the campaign's pending steps after `after_position` by `delta`, re-fitted
    to its send window with the gaps kept (`planning.shift_plan`). Returns how many."""
    if not delta:
        return 0
    steps = session.scalars(
        select(AutomationStep)
        .where(
            AutomationStep.campaign_id == campaign_id,
            AutomationStep.position > after_position,
            AutomationStep.status == StepStatus.PENDING.value,
        )
        .order_by(AutomationStep.position)
    ).all()
    if not steps:
        return 0
    campaign = session.get(AutomationCampaign, campaign_id)
    assert campaign is not None  # it has steps
    planner = planner_for(campaign.schedule, campaign.contact.timezone)
    for moved in shift_plan(planner, steps, delta):
        step = moved.step
        step.due_at = max(moved.at, step.due_at + delta)
        step.scheduled_at = moved.at
        step.schedule_note = moved.note
    return len(steps)


def keep_gaps_after(session: Session, step: AutomationStep, finished_at: datetime) -> timedelta:
    """After `step` finished at `finished_at`, move the steps after it by its lateness
    (when above the grace). Returns the shift applied."""
    lateness = as_utc(finished_at) - step.scheduled_at
    if lateness <= LATE_GRACE:
        return timedelta(0)
    shift_pending_steps(session, step.campaign_id, lateness, after_position=step.position)
    return lateness


def open_step_count(session: Session, campaign_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(AutomationStep)
            .where(
                AutomationStep.campaign_id == campaign_id,
                AutomationStep.status.in_(OPEN_STEP_STATUSES),
            )
        )
        or 0
    )


def refresh_completion(session: Session, campaign: AutomationCampaign, now: datetime) -> bool:
    """Mark `campaign` completed when none of its steps is pending or running.

    Records a `campaign_completed` event for the follow-up rules. Returns True when
    the campaign has just been completed.
    """
    if campaign.status not in (CampaignStatus.ACTIVE.value, CampaignStatus.PAUSED.value):
        return False
    session.flush()
    if open_step_count(session, campaign.id):
        return False
    campaign.status = CampaignStatus.COMPLETED.value
    campaign.completed_at = as_utc(now)
    campaign.paused_at = None
    record_event(
        session,
        contact_id=campaign.contact_id,
        kind="campaign_completed",
        payload={"campaign_id": campaign.id, "template_id": campaign.template_id},
        now=now,
    )
    return True


def finish_step(
    session: Session,
    step: AutomationStep,
    status: StepStatus,
    now: datetime,
    *,
    error: str | None = None,
) -> None:
    """Bring `step` to a final status at `now`: keep the gaps after it, complete the
    campaign when it was the last open step, and record a `step_failed` event."""
    step.status = status.value
    step.executed_at = as_utc(now)
    step.claim_token = None
    step.claimed_by = None
    step.lease_expires_at = None
    if error is not None:
        step.last_error = error
    keep_gaps_after(session, step, now)
    campaign = step.campaign
    if status is StepStatus.FAILED:
        record_event(
            session,
            contact_id=campaign.contact_id,
            kind="step_failed",
            payload={"campaign_id": campaign.id, "step_id": step.id, "error": error or ""},
            now=now,
        )
    refresh_completion(session, campaign, now)


def cancel_pending_steps(session: Session, campaign_id: int) -> int:
    result = session.execute(
        update(AutomationStep)
        .where(
            AutomationStep.campaign_id == campaign_id,
            AutomationStep.status == StepStatus.PENDING.value,
        )
        .values(status=StepStatus.CANCELED.value)
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)  # a CursorResult for an UPDATE


__all__ = [
    "LATE_GRACE",
    "plan_times",
    "total_duration",
    "shift_pending_steps",
    "keep_gaps_after",
    "refresh_completion",
    "finish_step",
    "cancel_pending_steps",
]
