"""A small database with known steps, for the calendar, statistics and export tests.

Rows are written directly (the services that create them are tested elsewhere),
so every status, time and count below is exactly known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from automations.domain.db import Database
from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    AutomationTemplate,
    Contact,
    ContactTag,
    ScheduledFollowUp,
    TemplateStep,
)
from automations.domain.timeutil import UTC

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


@dataclass
class Built:
    contact_ids: list[int] = field(default_factory=list)
    template_id: int = 0
    campaign_ids: list[int] = field(default_factory=list)
    step_ids: dict[str, int] = field(default_factory=dict)


def add_contact(s: Session, first: str, last: str = "", **extra: object) -> Contact:
    contact = Contact(first_name=first, last_name=last, created_at=T0, updated_at=T0, **extra)
    s.add(contact)
    s.flush()
    return contact


def add_campaign(
    s: Session,
    name: str,
    contact: Contact,
    steps: list[dict[str, object]],
    *,
    template_id: int | None = None,
    status: str = "active",
    start_at: datetime = T0,
) -> AutomationCampaign:
    campaign = AutomationCampaign(
        name=name,
        contact_id=contact.id,
        template_id=template_id,
        status=status,
        start_at=start_at,
        created_at=start_at,
        updated_at=start_at,
    )
    rows = []
    for position, spec in enumerate(steps, start=1):
        spec = dict(spec)
        scheduled = spec.pop("at")
        rows.append(
            AutomationStep(
                position=position,
                name=spec.pop("name", f"Step {position}"),
                message_type=spec.pop("type", "email"),
                scheduled_at=scheduled,
                due_at=scheduled,
                status=spec.pop("status", "pending"),
                subject=spec.pop("subject", "Hello {{ contact.first_name }}"),
                body=spec.pop("body", "Body"),
                attempts=spec.pop("attempts", 0),
                **spec,
            )
        )
    campaign.steps = rows
    s.add(campaign)
    s.flush()
    return campaign


def build_known(db: Database) -> Built:
    """Two contacts, one template, three campaigns, nine steps, three follow-ups.

    Steps (time shown = event time):
      A1 email sent     sched T0          exec T0+60s     (lag 60)
      A2 sms   failed   sched T0+1d       exec T0+1d+180s (lag 180)
      A3 task  done     sched T0+2d       exec T0+2d+600s (lag 600)
      A4 email pending  sched T0+9d
      B1 email sent     sched T0          exec T0+20s     (lag 20)  completed campaign
      B2 webhook skipped sched T0+1d      exec T0+1d      (lag 0)
      C1 email canceled sched T0+3d                                  canceled campaign
      C2 sms   canceled sched T0+4d
      C3 webhook sent   sched T0-1d       exec T0-1d+5s   (lag 5)
    """
    built = Built()
    d = timedelta(days=1)
    with db.session() as s:
        ann = add_contact(s, "Ann", "Lee", email="ann@example.com", phone="+14155550101")
        s.add(ContactTag(contact_id=ann.id, tag="vip"))
        bob = add_contact(s, "=Bob", "Stone", email="bob@example.com", company="@Evil")
        built.contact_ids = [ann.id, bob.id]
        template = AutomationTemplate(
            name="Welcome", description="", category="onboarding", created_at=T0, updated_at=T0
        )
        template.steps = [TemplateStep(position=1, name="Hi", message_type="email")]
        s.add(template)
        s.flush()
        built.template_id = template.id
        a = add_campaign(
            s,
            "Alpha",
            ann,
            [
                {"name": "A1", "at": T0, "status": "sent", "executed_at": T0 + timedelta(seconds=60), "attempts": 1},
                {
                    "name": "A2",
                    "type": "sms",
                    "at": T0 + d,
                    "status": "failed",
                    "executed_at": T0 + d + timedelta(seconds=180),
                    "attempts": 5,
                    "last_error": "HTTP 400",
                },
                {
                    "name": "A3",
                    "type": "task",
                    "at": T0 + 2 * d,
                    "status": "done",
                    "executed_at": T0 + 2 * d + timedelta(seconds=600),
                    "attempts": 1,
                },
                {"name": "A4", "at": T0 + 9 * d},
            ],
            template_id=template.id,
        )
        b = add_campaign(
            s,
            "Beta",
            bob,
            [
                {"name": "B1", "at": T0, "status": "sent", "executed_at": T0 + timedelta(seconds=20), "attempts": 1},
                {
                    "name": "B2",
                    "type": "webhook",
                    "at": T0 + d,
                    "status": "skipped",
                    "executed_at": T0 + d,
                    "webhook_url": "https://example.com/hook",
                },
            ],
            template_id=template.id,
            status="completed",
        )
        c = add_campaign(
            s,
            "Gamma",
            ann,
            [
                {"name": "C1", "at": T0 + 3 * d, "status": "canceled"},
                {"name": "C2", "type": "sms", "at": T0 + 4 * d, "status": "canceled"},
                {
                    "name": "C3",
                    "type": "webhook",
                    "at": T0 - d,
                    "status": "sent",
                    "executed_at": T0 - d + timedelta(seconds=5),
                    "webhook_url": "https://example.com/h",
                },
            ],
            status="canceled",
            start_at=T0 - d,
        )
        built.campaign_ids = [a.id, b.id, c.id]
        for campaign in (a, b, c):
            for step in campaign.steps:
                built.step_ids[step.name] = step.id
        s.add_all(
            [
                ScheduledFollowUp(
                    contact_id=ann.id,
                    campaign_id=a.id,
                    title="Call Ann",
                    due_at=T0 - d,
                    status="pending",
                    created_at=T0,
                ),
                ScheduledFollowUp(
                    contact_id=ann.id, title="+Check in", due_at=T0 + 5 * d, status="pending", created_at=T0
                ),
                ScheduledFollowUp(
                    contact_id=bob.id,
                    title="Done one",
                    due_at=T0 - 2 * d,
                    status="done",
                    completed_at=T0 - d,
                    created_at=T0,
                ),
            ]
        )
    return built
