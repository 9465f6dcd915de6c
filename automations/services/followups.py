"""Follow-up tasks for a person: created by a Task step, a rule, or by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from automations.domain.errors import Conflict, NotFound, Problems
from automations.domain.models import (
    AutomationCampaign,
    Contact,
    FollowUpStatus,
    ScheduledFollowUp,
)
from automations.domain.timeutil import as_utc, utcnow
from automations.services.schemas import FollowUpInput, parse


def get_followup(session: Session, followup_id: int) -> ScheduledFollowUp:
    followup = session.get(ScheduledFollowUp, followup_id)
    if followup is None:
        raise NotFound("follow-up", followup_id)
    return followup


def create_followup(
    session: Session,
    data: FollowUpInput | dict[str, Any],
    *,
    step_id: int | None = None,
    rule_id: int | None = None,
    now: datetime | None = None,
) -> ScheduledFollowUp:
    """Add a pending follow-up task for a contact (every problem of `data` in one
    `ValidationError`)."""
    problems = Problems()
    values: FollowUpInput | None = None
    with problems.gather():
        values = parse(FollowUpInput, data)
    raw = data if isinstance(data, dict) else data.model_dump()
    for field, model, entity in (("contact_id", Contact, "contact"), ("campaign_id", AutomationCampaign, "campaign")):
        ident = getattr(values, field) if values is not None else raw.get(field)
        if field in problems or not isinstance(ident, int) or isinstance(ident, bool):
            continue
        if session.get(model, ident) is None:
            problems.add(field, f"No {entity} with id {ident}.")
    problems.raise_if_any()
    assert values is not None  # no problem, so parsed
    followup = ScheduledFollowUp(
        contact_id=values.contact_id,
        campaign_id=values.campaign_id,
        step_id=step_id,
        rule_id=rule_id,
        title=values.title,
        notes=values.notes,
        due_at=values.due_at,
        status=FollowUpStatus.PENDING.value,
        created_at=as_utc(now or utcnow()),
    )
    session.add(followup)
    session.flush()
    return followup


def _pending(session: Session, followup_id: int) -> ScheduledFollowUp:
    followup = get_followup(session, followup_id)
    if followup.status != FollowUpStatus.PENDING.value:
        raise Conflict(f"follow-up is already {followup.status}")
    return followup


def complete_followup(session: Session, followup_id: int, *, now: datetime | None = None) -> ScheduledFollowUp:
    followup = _pending(session, followup_id)
    followup.status = FollowUpStatus.DONE.value
    followup.completed_at = as_utc(now or utcnow())
    session.flush()
    return followup


def cancel_followup(session: Session, followup_id: int, *, now: datetime | None = None) -> ScheduledFollowUp:
    followup = _pending(session, followup_id)
    followup.status = FollowUpStatus.CANCELED.value
    followup.completed_at = as_utc(now or utcnow())
    session.flush()
    return followup


def snooze_followup(session: Session, followup_id: int, until: datetime) -> ScheduledFollowUp:
    """Move a pending follow-up's due time."""
    followup = _pending(session, followup_id)
    followup.due_at = as_utc(until)
    session.flush()
    return followup


@dataclass(frozen=True)
class FollowUpCounts:
    pending: int
    overdue: int
    due_today: int


def day_bounds(now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """Start and end (UTC) of `now`'s day in the display timezone."""
    local = as_utc(now).astimezone(tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return as_utc(start), as_utc(start + timedelta(days=1))


def followup_counts(session: Session, now: datetime, tz: tzinfo) -> FollowUpCounts:
    _, end_of_day = day_bounds(now, tz)
    pending = ScheduledFollowUp.status == FollowUpStatus.PENDING.value
    count = func.count()
    total = session.scalar(select(count).select_from(ScheduledFollowUp).where(pending)) or 0
    overdue = (
        session.scalar(
            select(count).select_from(ScheduledFollowUp).where(pending, ScheduledFollowUp.due_at < as_utc(now))
        )
        or 0
    )
    today = (
        session.scalar(
            select(count)
            .select_from(ScheduledFollowUp)
            .where(pending, ScheduledFollowUp.due_at >= as_utc(now), ScheduledFollowUp.due_at < end_of_day)
        )
        or 0
    )
    return FollowUpCounts(pending=total, overdue=overdue, due_today=today)


def list_followups(
    session: Session,
    *,
    status: str | None = FollowUpStatus.PENDING.value,
    contact_id: int | None = None,
    due_before: datetime | None = None,
    due_from: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[ScheduledFollowUp], int]:
    """A page of follow-ups ordered by due time, and the total."""
    conditions = []
    if status:
        conditions.append(ScheduledFollowUp.status == status)
    if contact_id:
        conditions.append(ScheduledFollowUp.contact_id == contact_id)
    if due_before is not None:
        conditions.append(ScheduledFollowUp.due_at < as_utc(due_before))
    if due_from is not None:
        conditions.append(ScheduledFollowUp.due_at >= as_utc(due_from))
    total = session.scalar(select(func.count()).select_from(ScheduledFollowUp).where(*conditions)) or 0
    rows = session.scalars(
        select(ScheduledFollowUp)
        .where(*conditions)
        .order_by(ScheduledFollowUp.due_at, ScheduledFollowUp.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total
