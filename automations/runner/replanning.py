"""Moving the pending steps of many campaigns at once, re-fitted to each
campaign's schedule (`planning.shift_plan`): after a batch of late steps, and
after the claim held steps back (send window, quiet hours, frequency caps).

Batched like the rest of the runner: one read of the pending steps of every
campaign concerned (with the campaign's schedule and the contact's zone), one
executemany writing `scheduled_at`, `due_at` and `schedule_note`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from automations.domain.db import id_in, table_of
from automations.domain.models import AutomationCampaign, AutomationStep, Contact, StepStatus
from automations.domain.schedule import Planner, QuietHours
from automations.domain.timeutil import as_utc
from automations.services.planning import planner_for, shift_plan

S = AutomationStep


def status_among(*statuses: str) -> Any:
    """`status IN (...)` that the planner cannot answer from the (status, due_at)
    index: next to `campaign_id IN (...)` that index would scan every pending step
    of the table (a million future ones), while the (campaign_id, position) index
    reads a few rows per campaign."""
    return (S.status + "").in_(statuses)


@dataclass
class PendingStep:
    """A pending step as `shift_plan` reads it, with its campaign's schedule and
    its contact's zone; `changed` once its time was moved."""

    id: int
    campaign_id: int
    position: int
    scheduled_at: datetime
    due_at: datetime
    schedule_note: str | None
    delay_days: int
    delay_hours: int
    message_type: str
    business_days: bool
    send_at: str | None
    schedule: dict[str, Any] | None
    timezone: str | None
    changed: bool = False


def pending_steps(session: Session, campaign_ids: Collection[int]) -> dict[int, list[PendingStep]]:
    """The pending steps of `campaign_ids`, by campaign, in position order."""
    if not campaign_ids:
        return {}
    C, P = AutomationCampaign, Contact
    rows = session.execute(
        select(
            S.id,
            S.campaign_id,
            S.position,
            S.scheduled_at,
            S.due_at,
            S.schedule_note,
            S.delay_days,
            S.delay_hours,
            S.message_type,
            S.business_days,
            S.send_at,
            C.schedule,
            P.timezone,
        )
        .join(C, C.id == S.campaign_id)
        .join(P, P.id == C.contact_id)
        .where(id_in(session, S.campaign_id, sorted(campaign_ids)), status_among(StepStatus.PENDING.value))
        .order_by(S.campaign_id, S.position)
    ).all()
    found: dict[int, list[PendingStep]] = {}
    for row in rows:
        found.setdefault(row.campaign_id, []).append(PendingStep(**row._asdict()))
    return found


def campaign_planner(step: PendingStep, quiet_hours: QuietHours | None) -> Planner:
    return planner_for(step.schedule, step.timezone, quiet_hours=quiet_hours)


def shift(planner: Planner, steps: Sequence[PendingStep], delta: timedelta) -> None:
    """Move `steps` (one campaign's, in position order) by `delta`, re-fitted with
    the gaps kept, as `scheduling.shift_pending_steps` does for one campaign."""
    if delta <= timedelta(0):
        return
    for moved in shift_plan(planner, steps, delta):
        step: PendingStep = moved.step
        step.due_at = max(moved.at, as_utc(step.due_at) + delta)
        step.scheduled_at = moved.at
        step.schedule_note = moved.note
        step.changed = True


def write_times(session: Session, steps: Sequence[PendingStep]) -> int:
    """Write the new times of the steps that `changed`, in one executemany."""
    rows = [
        {"_id": s.id, "scheduled_at": s.scheduled_at, "due_at": s.due_at, "schedule_note": s.schedule_note}
        for s in steps
        if s.changed
    ]
    if rows:
        table = table_of(S)
        session.execute(
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values(
                scheduled_at=bindparam("scheduled_at"),
                due_at=bindparam("due_at"),
                schedule_note=bindparam("schedule_note"),
            ),
            rows,
        )
    return len(rows)
