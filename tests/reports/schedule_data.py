"""Campaigns whose steps moved for each reason the planner gives, made through the
services (for the schedule reports, the API and the pages' tests).

A contact in New York; a Monday-to-Friday 09:00–17:00 window with US holidays:
- "Window" starts Friday 6 March 2026 16:30 New York time: its email, 1 hour later,
  falls after the window and moves to Monday 9 March 09:00 (EDT, 13:00 UTC); its
  task a day later (Tuesday 09:00) did not move;
- "Quiet" (no window) starts Tuesday 10 March 21:30: its SMS waits for the end of
  SMS quiet hours, Wednesday 08:00;
- "Holiday" starts Friday 22 May 16:30: its email moves past the weekend and
  Memorial Day to Tuesday 26 May 09:00 (two reasons);
- "Capped" (no window) starts Thursday 12 March 10:00: its email is deferred by a
  frequency cap to Friday 13 March, as a runner records it when it claims the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from automations.domain.config import get_settings
from automations.domain.db import Database
from automations.domain.models import AutomationStep
from automations.services.campaigns import create_campaign
from automations.services.contacts import create_contact
from automations.services.templates import create_template

NEW_YORK = ZoneInfo("America/New_York")
WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
WINDOW_NOTE = "outside the send window (Mon, Tue, Wed, Thu, Fri 09:00–17:00)"
CAP_NOTE = "frequency cap email 3/day: deferred to the next day"
FRIDAY_1630 = datetime(2026, 3, 6, 16, 30, tzinfo=NEW_YORK)
MONDAY_0900 = datetime(2026, 3, 9, 9, 0, tzinfo=NEW_YORK)


def email(name: str, **delay: int) -> dict[str, object]:
    return {"name": name, "message_type": "email", "subject": "Hi {{ contact.first_name }}", "body": "Hello", **delay}


@dataclass
class Moved:
    contact_id: int = 0
    template_id: int = 0  # the template of the "Window" campaign
    campaign_ids: dict[str, int] = field(default_factory=dict)
    step_ids: dict[str, int] = field(default_factory=dict)


def quiet_hours_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """SMS quiet hours 21:00–08:00 (the suite turns them off by default)."""
    monkeypatch.setenv("AUTOMATIONS_SMS_QUIET_HOURS", "21:00-08:00")
    get_settings.cache_clear()


def build_moved(db: Database) -> Moved:
    built = Moved()
    schedule = {"timezone": "contact", "send_window": WINDOW, "holidays": "US"}
    with db.session() as s:
        contact = create_contact(
            s,
            {
                "first_name": "Nina",
                "last_name": "Park",
                "email": "nina@example.com",
                "phone": "+12125550100",
                "timezone": "America/New_York",
            },
        )
        built.contact_id = contact.id
        template = create_template(
            s, {"name": "Business hours", "category": "custom", "steps": [email("Check-in", delay_hours=1)]}
        )
        built.template_id = template.id
        specs: list[tuple[str, datetime, dict | None, list[dict[str, object]], int | None]] = [
            (
                "Window",
                FRIDAY_1630,
                schedule,
                [
                    email("Check-in", delay_hours=1),
                    {"name": "Call", "message_type": "task", "delay_days": 1, "subject": "Call Nina", "body": ""},
                ],
                template.id,
            ),
            (
                "Quiet",
                datetime(2026, 3, 10, 21, 30, tzinfo=NEW_YORK),
                None,
                [{"name": "Nudge", "message_type": "sms", "body": "Still there?"}],
                None,
            ),
            ("Holiday", datetime(2026, 5, 22, 16, 30, tzinfo=NEW_YORK), schedule, [email("Late", delay_hours=1)], None),
            ("Capped", datetime(2026, 3, 12, 10, 0, tzinfo=NEW_YORK), None, [email("Capped")], None),
        ]
        for name, start, plan, steps, template_id in specs:
            campaign = create_campaign(
                s,
                {
                    "name": name,
                    "contact_id": contact.id,
                    "template_id": template_id,
                    "start_at": start,
                    "steps": steps,
                    "schedule": plan,
                },
                now=start,
            )
            built.campaign_ids[name] = campaign.id
            built.step_ids.update({step.name: step.id for step in campaign.steps})
        # What a runner writes when a frequency cap defers the step it claims.
        capped = s.get(AutomationStep, built.step_ids["Capped"])
        assert capped is not None
        capped.scheduled_at = capped.due_at = capped.scheduled_at + timedelta(days=1)
        capped.schedule_note = CAP_NOTE
    return built
