"""The figures of the dashboard's landing page, each one aggregated in the database.

Every query here is bounded (an indexed count, or an indexed range with a LIMIT),
so the overview stays fast on a million steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    CampaignStatus,
    Contact,
    RunnerHeartbeat,
    StepStatus,
)
from automations.domain.timeutil import as_utc
from automations.services.followups import FollowUpCounts, day_bounds, followup_counts

# A runner ticks every few seconds (`--interval`, default 5); one silent for this
# long is taken for dead.
RUNNER_STALE_AFTER = timedelta(seconds=60)
SUCCESS_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class OverviewFigures:
    active_campaigns: int
    paused_campaigns: int
    steps_due_today: int
    steps_overdue: int  # pending, past their time, in active campaigns: due now, being executed
    steps_waiting_on_paused: int  # pending, past their time, in paused campaigns: they wait for a resume
    followups: FollowUpCounts
    executed_last_7_days: int
    succeeded_last_7_days: int
    failed_last_7_days: int

    @property
    def success_rate(self) -> float | None:
        """Sent or done over sent, done and failed (skipped steps are left out); None
        when nothing ran."""
        judged = self.succeeded_last_7_days + self.failed_last_7_days
        return self.succeeded_last_7_days / judged if judged else None


@dataclass(frozen=True)
class StepLine:
    step_id: int
    campaign_id: int
    campaign_name: str
    contact_name: str
    step_name: str
    message_type: str
    status: str
    scheduled_at: datetime
    executed_at: datetime | None
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class RunnerState:
    runner_id: str
    host: str
    pid: int
    started_at: datetime
    last_tick_at: datetime
    steps_done: int
    last_error: str | None
    stopped_at: datetime | None
    alive: bool


def overview_figures(session: Session, now: datetime, tz: tzinfo) -> OverviewFigures:
    """Counts for the landing page; "today" is the day of `now` in `tz`."""
    now = as_utc(now)
    start_of_day, end_of_day = day_bounds(now, tz)
    by_status = dict(
        session.execute(
            select(AutomationCampaign.status, func.count())
            .where(AutomationCampaign.status.in_((CampaignStatus.ACTIVE.value, CampaignStatus.PAUSED.value)))
            .group_by(AutomationCampaign.status)
        ).all()
    )
    open_steps = (StepStatus.PENDING.value, StepStatus.RUNNING.value)
    due_today = (
        session.scalar(
            select(func.count())
            .select_from(AutomationStep)
            .where(
                AutomationStep.status.in_(open_steps),
                AutomationStep.due_at >= start_of_day,
                AutomationStep.due_at < end_of_day,
            )
        )
        or 0
    )
    overdue_by_status = dict(
        session.execute(
            select(AutomationCampaign.status, func.count())
            .select_from(AutomationStep)
            .join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
            .where(
                AutomationStep.status == StepStatus.PENDING.value,
                AutomationStep.due_at < now - timedelta(minutes=5),
            )
            .group_by(AutomationCampaign.status)
        ).all()
    )
    success = (StepStatus.SENT.value, StepStatus.DONE.value)
    executed, succeeded, failed = session.execute(
        select(
            func.count(),
            func.sum(case((AutomationStep.status.in_(success), 1), else_=0)),
            func.sum(case((AutomationStep.status == StepStatus.FAILED.value, 1), else_=0)),
        ).where(AutomationStep.executed_at >= now - SUCCESS_WINDOW, AutomationStep.executed_at <= now)
    ).one()
    return OverviewFigures(
        active_campaigns=int(by_status.get(CampaignStatus.ACTIVE.value, 0)),
        paused_campaigns=int(by_status.get(CampaignStatus.PAUSED.value, 0)),
        steps_due_today=int(due_today),
        steps_overdue=int(overdue_by_status.get(CampaignStatus.ACTIVE.value, 0)),
        steps_waiting_on_paused=int(overdue_by_status.get(CampaignStatus.PAUSED.value, 0)),
        followups=followup_counts(session, now, tz),
        executed_last_7_days=int(executed or 0),
        succeeded_last_7_days=int(succeeded or 0),
        failed_last_7_days=int(failed or 0),
    )


def _step_lines(session: Session, query: object) -> list[StepLine]:
    rows = session.execute(query).all()  # type: ignore[call-overload]
    return [
        StepLine(
            step_id=step.id,
            campaign_id=step.campaign_id,
            campaign_name=campaign_name,
            contact_name=f"{first} {last}".strip(),
            step_name=step.name,
            message_type=step.message_type,
            status=step.status,
            scheduled_at=step.scheduled_at,
            executed_at=step.executed_at,
            attempts=step.attempts,
            last_error=step.last_error,
        )
        for step, campaign_name, first, last in rows
    ]


def _with_names() -> Any:
    return (
        select(AutomationStep, AutomationCampaign.name, Contact.first_name, Contact.last_name)
        .join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
        .join(Contact, Contact.id == AutomationCampaign.contact_id)
    )


def next_scheduled_steps(session: Session, now: datetime, limit: int = 10) -> list[StepLine]:
    """The pending steps of active campaigns that run next (overdue ones first)."""
    query = (
        _with_names()
        .where(
            AutomationStep.status == StepStatus.PENDING.value,
            AutomationCampaign.status == CampaignStatus.ACTIVE.value,
        )
        # (status, due_at) is indexed; for a pending step due_at is its planned time
        # or a retry's backoff, which is when it will actually run.
        .order_by(AutomationStep.due_at, AutomationStep.id)
        .limit(limit)
    )
    return _step_lines(session, query)


def latest_executions(session: Session, now: datetime, limit: int = 15) -> list[StepLine]:
    """The latest executed steps, the failures of the last 7 days first."""
    now = as_utc(now)
    failures = _step_lines(
        session,
        _with_names()
        .where(
            AutomationStep.status == StepStatus.FAILED.value,
            AutomationStep.executed_at >= now - SUCCESS_WINDOW,
        )
        .order_by(AutomationStep.executed_at.desc())
        .limit(limit),
    )
    latest = _step_lines(
        session,
        _with_names()
        .where(AutomationStep.executed_at.is_not(None), AutomationStep.executed_at <= now)
        .order_by(AutomationStep.executed_at.desc())
        .limit(limit),
    )
    seen = {line.step_id for line in failures}
    return (failures + [line for line in latest if line.step_id not in seen])[:limit]


def runner_states(session: Session, now: datetime) -> list[RunnerState]:
    """Every runner that has recorded a heartbeat, the most recent first, and whether
    it is alive (ticked within `RUNNER_STALE_AFTER` and not stopped)."""
    now = as_utc(now)
    beats = session.scalars(select(RunnerHeartbeat).order_by(RunnerHeartbeat.last_tick_at.desc()).limit(20)).all()
    return [
        RunnerState(
            runner_id=b.runner_id,
            host=b.host,
            pid=b.pid,
            started_at=b.started_at,
            last_tick_at=b.last_tick_at,
            steps_done=b.steps_done,
            last_error=b.last_error,
            stopped_at=b.stopped_at,
            alive=b.stopped_at is None and now - b.last_tick_at <= RUNNER_STALE_AFTER,
        )
        for b in beats
    ]


@dataclass(frozen=True)
class SilentHolder:
    """Steps claimed by a runner that stopped heartbeating (killed, frozen, cut
    off): they stay `running` until their lease expires, then another runner
    takes them over."""

    runner_id: str
    steps: int
    silent_since: datetime | None  # its last heartbeat (None: it never wrote one)
    lease_expires_at: datetime | None  # when the last of its claims may be taken over


def silent_holders(session: Session, now: datetime, *, campaign_id: int | None = None) -> list[SilentHolder]:
    """Runners holding running steps (of `campaign_id`, or any) that are silent
    or whose claims lapsed."""
    now = as_utc(now)
    query = select(AutomationStep.claimed_by, func.count(), func.max(AutomationStep.lease_expires_at)).where(
        AutomationStep.status == StepStatus.RUNNING.value
    )
    if campaign_id is not None:
        query = query.where(AutomationStep.campaign_id == campaign_id)
    held = session.execute(query.group_by(AutomationStep.claimed_by)).all()
    if not held:
        return []
    beats = {
        b.runner_id: b
        for b in session.scalars(
            select(RunnerHeartbeat).where(RunnerHeartbeat.runner_id.in_([r[0] for r in held if r[0]]))
        )
    }
    silent = []
    for runner_id, steps, lease in held:
        beat = beats.get(runner_id or "")
        quiet = beat is None or beat.stopped_at is not None or now - beat.last_tick_at > RUNNER_STALE_AFTER
        lapsed = lease is not None and as_utc(lease) < now
        if quiet or lapsed:
            silent.append(
                SilentHolder(
                    runner_id or "?",
                    int(steps),
                    beat.last_tick_at if beat else None,
                    as_utc(lease) if lease else None,
                )
            )
    return silent
