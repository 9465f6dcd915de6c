"""What the dashboard shows about one campaign (every step, rendered, with its
schedule and what the recipient did with it) and about one contact (their steps,
follow-ups and engagement in time order)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.content.templating import ContentError
from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    ScheduledFollowUp,
)
from automations.domain.schedule import DAY_NAMES
from automations.reports.engagement import EngagementEntry, campaign_engagement, contact_engagement
from automations.services.campaigns import get_campaign, render_step
from automations.services.contacts import get_contact
from automations.services.planning import zone_name
from automations.services.templates import step_as_input


@dataclass(frozen=True)
class StepDetail:
    id: int
    position: int
    name: str
    message_type: str
    delay_days: int
    delay_hours: int
    status: str
    scheduled_at: datetime
    executed_at: datetime | None
    attempts: int
    last_error: str | None
    subject: str  # personalised for the campaign's contact
    body: str
    webhook_url: str | None
    # Why the planned time is not the plain delay (window, holiday, quiet hours, cap).
    schedule_note: str | None = None
    # The first time the recipient opened, clicked, replied; when it hard-bounced.
    opened_at: datetime | None = None
    clicked_at: datetime | None = None
    replied_at: datetime | None = None
    bounced_at: datetime | None = None


@dataclass(frozen=True)
class CampaignDetail:
    id: int
    name: str
    status: str
    contact_id: int
    contact_name: str
    template_name: str | None
    start_at: datetime
    steps: list[StepDetail]
    pending_steps: list[dict[str, object]]  # as editable input, for "edit pending steps"
    # The IANA zone the steps are planned in (the contact's own by default), and the
    # schedule in words ("Contact's time zone (America/New_York) · Mon–Fri 09:00–17:00").
    zone: str = "UTC"
    schedule_text: str = ""
    # What the recipient did with the campaign's emails, the latest first.
    engagement: list[EngagementEntry] = field(default_factory=list)

    @property
    def progress(self) -> tuple[int, int]:
        done = sum(1 for s in self.steps if s.status in ("sent", "done", "failed", "skipped"))
        return done, len(self.steps)


def _rendered(step: AutomationStep, campaign: AutomationCampaign) -> tuple[str, str]:
    try:
        return render_step(step, campaign.contact, campaign.name)
    except ContentError as exc:  # shown instead of the content, never raised to the page
        return "", f"(cannot render: {exc})"
    except Exception as exc:  # a template error at render time is the step's problem, not the page's
        return "", f"(cannot render: {type(exc).__name__}: {exc})"


def campaign_detail(session: Session, campaign_id: int) -> CampaignDetail:
    """A campaign with each step's status, times, attempts, last error and content
    personalised for its contact."""
    campaign = get_campaign(session, campaign_id)
    steps = []
    for step in campaign.steps:
        subject, body = _rendered(step, campaign)
        steps.append(
            StepDetail(
                id=step.id,
                position=step.position,
                name=step.name,
                message_type=step.message_type,
                delay_days=step.delay_days,
                delay_hours=step.delay_hours,
                status=step.status,
                scheduled_at=step.scheduled_at,
                executed_at=step.executed_at,
                attempts=step.attempts,
                last_error=step.last_error,
                subject=subject,
                body=body,
                webhook_url=step.webhook_url,
                schedule_note=step.schedule_note,
                opened_at=step.opened_at,
                clicked_at=step.clicked_at,
                replied_at=step.replied_at,
                bounced_at=step.bounced_at,
            )
        )
    contact_timezone = campaign.contact.timezone
    return CampaignDetail(
        id=campaign.id,
        name=campaign.name,
        status=campaign.status,
        contact_id=campaign.contact_id,
        contact_name=campaign.contact.full_name,
        template_name=campaign.template.name if campaign.template else None,
        start_at=campaign.start_at,
        steps=steps,
        pending_steps=[step_as_input(s) for s in campaign.steps if s.status == "pending"],
        zone=zone_name(campaign.schedule, contact_timezone),
        schedule_text=schedule_summary(campaign.schedule, contact_timezone),
        engagement=campaign_engagement(session, campaign.id),
    )


def _days_text(days: list[str]) -> str:
    """Days of the week in words, runs of three or more as a range: "Mon–Fri", "Mon, Wed, Sat, Sun"."""
    chosen = sorted({DAY_NAMES.index(d) for d in days if d in DAY_NAMES})
    if len(chosen) == len(DAY_NAMES):
        return "Every day"
    runs: list[list[int]] = []
    for day in chosen:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    names = [[DAY_NAMES[d].capitalize() for d in run] for run in runs]
    return ", ".join(f"{run[0]}–{run[-1]}" if len(run) >= 3 else ", ".join(run) for run in names)


def schedule_summary(schedule: Mapping[str, Any] | None, contact_timezone: str | None) -> str:
    """A campaign's schedule in one line: whose clock, the send window, the holidays
    ("Contact's time zone (America/New_York) · Mon–Fri 09:00–17:00 · holidays US")."""
    schedule = schedule or {}
    zone = zone_name(schedule, contact_timezone)
    fixed = schedule.get("timezone") or "contact"
    # A fixed zone that does not exist falls back to the contact's (as planning does).
    parts = [f"Time zone {zone}" if fixed != "contact" and fixed == zone else f"Contact's time zone ({zone})"]
    window = schedule.get("send_window")
    if isinstance(window, Mapping) and window.get("days"):
        parts.append(f"{_days_text(list(window['days']))} {window['start']}–{window['end']}")
    else:
        parts.append("No send window")
    if schedule.get("holidays"):
        parts.append(f"holidays {schedule['holidays']}")
    if schedule.get("frequency_cap_exempt"):
        parts.append("not held back by the frequency caps")
    return " · ".join(parts)


@dataclass(frozen=True)
class TimelineEntry:
    when: datetime
    kind: str  # "step", "follow-up" or "engagement"
    what: str
    message_type: str
    status: str
    campaign_id: int | None
    campaign_name: str | None


def contact_timeline(session: Session, contact_id: int, limit: int = 200) -> list[TimelineEntry]:
    """A contact's campaign steps, follow-ups and engagement (opened, clicked with the
    URL, replied with its first lines, ...: `status` says which), most recent first."""
    get_contact(session, contact_id)
    steps = session.execute(
        select(AutomationStep, AutomationCampaign.name)
        .join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
        .where(AutomationCampaign.contact_id == contact_id)
        .order_by(AutomationStep.scheduled_at.desc())
        .limit(limit)
    ).all()
    followups = session.execute(
        select(ScheduledFollowUp, AutomationCampaign.name)
        .outerjoin(AutomationCampaign, AutomationCampaign.id == ScheduledFollowUp.campaign_id)
        .where(ScheduledFollowUp.contact_id == contact_id)
        .order_by(ScheduledFollowUp.due_at.desc())
        .limit(limit)
    ).all()
    entries = [
        TimelineEntry(
            when=step.executed_at or step.scheduled_at,
            kind="step",
            what=step.name,
            message_type=step.message_type,
            status=step.status,
            campaign_id=step.campaign_id,
            campaign_name=name,
        )
        for step, name in steps
    ] + [
        TimelineEntry(
            when=f.completed_at or f.due_at,
            kind="follow-up",
            what=f.title,
            message_type="task",
            status=f.status,
            campaign_id=f.campaign_id,
            campaign_name=name,
        )
        for f, name in followups
    ]
    entries += [
        TimelineEntry(
            when=e.when,
            kind="engagement",
            what=e.what,
            message_type=e.channel,
            status=e.label,
            campaign_id=e.campaign_id,
            campaign_name=e.campaign_name,
        )
        for e in contact_engagement(session, contact_id, limit)
    ]
    entries.sort(key=lambda e: e.when, reverse=True)
    return entries[:limit]
