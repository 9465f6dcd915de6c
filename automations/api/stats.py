"""/api/automation/stats/: counts by campaign status, by step status and message type,
success rate, scheduling lag, pending and overdue follow-ups, the steps moved by
their schedule and the email funnel per template (all counted in SQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from automations.api.deps import INSTANT_DOC, Context, instant
from automations.api.schemas import MAX_ID, Timestamp
from automations.domain.errors import ValidationError
from automations.domain.models import MessageType
from automations.reports import stats
from automations.reports.engagement import email_funnel
from automations.reports.stats import StatsFilter

router = APIRouter(prefix="/api/automation/stats", tags=["stats"])


class LagOut(BaseModel):
    average: float | None = Field(description="Average seconds between a step's planned and actual execution.")
    p95: float | None = Field(description="95th percentile of that lag, in seconds.")
    executed: int = Field(description="Executed steps the lag is measured on.")


class FollowUpCounts(BaseModel):
    pending: int = Field(description="Follow-up tasks not done yet.")
    overdue: int = Field(description="Pending follow-up tasks due before now.")


class MovedOut(BaseModel):
    window: int = Field(description="Steps planned in the range that the send window moved.")
    holidays: int = Field(description="Steps planned in the range that a holiday moved.")
    quiet_hours: int = Field(description="SMS steps planned in the range that SMS quiet hours moved.")
    frequency_cap: int = Field(description="Steps planned in the range that a frequency cap deferred.")


class FunnelOut(BaseModel):
    template_id: int | None = Field(description="The template; null for campaigns not made from one.")
    template_name: str | None = Field(description="Its name; null for campaigns not made from a template.")
    sent: int = Field(description="Emails of the template's campaigns sent in the range.")
    opened: int = Field(
        description="Of those, the emails opened (by a person; machine opens only with machine_opens=true)."
    )
    clicked: int = Field(description="Of those, the emails with a clicked link.")
    replied: int = Field(description="Of those, the emails replied to.")
    bounced: int = Field(description="Of those, the emails that bounced hard (delivered = sent - bounced).")
    unsubscribed: int = Field(description="Of those, the emails the contact unsubscribed from.")


class StatsOut(BaseModel):
    generated_at: Timestamp = Field(description="When the figures were counted.")
    campaigns_by_status: dict[str, int] = Field(description="active, paused, completed, canceled.")
    campaigns_total: int = Field(description="All campaigns counted.")
    steps_by_status: dict[str, int] = Field(description="pending, running, sent, done, failed, skipped, canceled.")
    steps_by_message_type: dict[str, int] = Field(description="email, sms, task, webhook.")
    status_by_message_type: dict[str, dict[str, int]] = Field(description="Step counts per type, then per status.")
    steps_total: int = Field(description="All steps counted.")
    success_rate: float | None = Field(description="(sent + done) / (sent + done + failed); null when none ran.")
    completion_rate: float | None = Field(
        description="completed / (completed + canceled) campaigns; null when none ended."
    )
    lag_seconds: LagOut = Field(description="How late steps ran.")
    followups: FollowUpCounts = Field(description="Follow-up tasks.")
    moved: MovedOut = Field(
        description="Steps planned (scheduled_at) in the range whose time moved, by reason (a step moved "
        "for two reasons counts under both)."
    )
    funnel: list[FunnelOut] = Field(
        description="Per template, what the recipients of the emails sent in the range did (whenever they did "
        "it); distinct from the statistics page's per-step template_funnel."
    )


@router.get("/", response_model=StatsOut, summary="Key figures")
def automation_stats(
    context: Context,
    start: Annotated[
        datetime | None, Query(description=f"Only steps and campaigns from this time. {INSTANT_DOC}")
    ] = None,
    end: Annotated[
        datetime | None, Query(description=f"Only steps and campaigns before this time. {INSTANT_DOC}")
    ] = None,
    template_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only campaigns made from this template.")
    ] = None,
    message_type: Annotated[MessageType | None, Query(description="Only steps of this channel.")] = None,
    machine_opens: Annotated[
        bool, Query(description="Count in the funnel the opens of mail-privacy proxies and link scanners.")
    ] = False,
) -> StatsOut:
    """A step counts at its execution time, or its planned time while it has not run;
    a campaign at its start."""
    first = instant(start, "start", context) if start else None
    after = instant(end, "end", context) if end else None
    if first and after and after <= first:
        raise ValidationError.single("end", "must be after start")
    filters = StatsFilter(
        start=first,
        end=after,
        template_id=template_id,
        message_type=message_type.value if message_type else None,
    )
    with context.db.read_session() as session:
        figures = stats.automation_stats(session, context.now(), filters)
        figures["funnel"] = [row.as_api() for row in email_funnel(session, filters, machine_opens=machine_opens)]
    return StatsOut.model_validate(figures)
