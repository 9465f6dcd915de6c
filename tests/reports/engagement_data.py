"""Emails with known engagement, built through the services: campaigns made with
`create_campaign`, steps brought to `sent` with `finish_step` as a runner does,
opens, clicks and unsubscribes recorded as the tracking routes record them, and
replies, auto-replies and bounces applied by `apply_effect` as the inbound
service applies them.

Template "Onboarding" (two emails, "Welcome" then "Tips" a day later) for five
contacts, all started at T0; in the week from T0:

| contact | Welcome                                             | Tips                |
|---------|-----------------------------------------------------|---------------------|
| Ann     | opened, clicked OFFER twice, replied                | opened, clicked OFFER |
| Ben     | opened by a machine only, clicked GUIDE             | sent                |
| Cem     | hard bounce                                         | (skipped: bouncing) |
| Dee     | opened, soft bounce, unsubscribed                   | —                   |
| Eve     | auto-replied (back on 2026-03-09)                   | —                   |

Also a campaign without a template for Eve ("=Personal note": one email, sent
and opened in the week) and an Onboarding campaign for Eve sent ten days before T0 (out of the week).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from automations.domain.db import Database
from automations.domain.models import AutomationCampaign, AutomationStep, EngagementEvent, StepStatus
from automations.engagement.inbound import Classification
from automations.services.campaigns import create_campaign
from automations.services.contacts import create_contact
from automations.services.engagement import apply_effect
from automations.services.scheduling import finish_step
from automations.services.templates import create_template
from tests.reports.calendar_data import T0

H = timedelta(hours=1)
D = timedelta(days=1)
OFFER = "https://example.com/offer"
GUIDE = "https://example.com/guide"
WEEK = (T0, T0 + 7 * D)


@dataclass
class Engaged:
    template_id: int = 0
    contacts: dict[str, int] = field(default_factory=dict)
    campaigns: dict[str, int] = field(default_factory=dict)
    steps: dict[tuple[str, str], int] = field(default_factory=dict)  # (contact, step name): step id


def send(s: Session, step: AutomationStep, at: datetime) -> None:
    """What a runner records for an email it delivered."""
    finish_step(s, step, StepStatus.SENT, at)


def track(s: Session, step: AutomationStep, kind: str, at: datetime, **extra: Any) -> None:
    """An open, click or unsubscribe as the /t/ routes record it."""
    campaign = step.campaign
    machine = bool(extra.pop("machine", False))
    s.add(
        EngagementEvent(
            kind=kind,
            step_id=step.id,
            campaign_id=campaign.id,
            contact_id=campaign.contact_id,
            occurred_at=at,
            machine=machine,
            **extra,
        )
    )
    if kind == "open" and not machine and step.opened_at is None:
        step.opened_at = at
    if kind == "click":
        step.clicked_at = step.clicked_at or at
    if kind == "unsubscribe":
        campaign.contact.email_opt_out = True
    s.flush()


def answer(s: Session, step: AutomationStep, found: Classification, at: datetime) -> None:
    """A reply, auto-reply or bounce matched to `step`, applied as the inbound service does."""
    apply_effect(s, step, found, at)
    s.flush()


def _campaign(s: Session, who: int, template_id: int | None, start: datetime, **extra: Any) -> AutomationCampaign:
    data: dict[str, Any] = {"name": extra.pop("name", "Onboarding"), "contact_id": who, "start_at": start}
    if template_id is not None:
        data["template_id"] = template_id
    data.update(extra)
    return create_campaign(s, data, now=start)


def build_engagement(db: Database) -> Engaged:
    built = Engaged()
    with db.session() as s:
        template = create_template(
            s,
            {
                "name": "Onboarding",
                "category": "onboarding",
                "steps": [
                    {"name": "Welcome", "message_type": "email", "subject": "Hi", "body": f"See [it]({OFFER})"},
                    {"name": "Tips", "message_type": "email", "delay_days": 1, "subject": "Tips", "body": "More"},
                ],
            },
        )
        built.template_id = template.id
        for first in ("Ann", "Ben", "Cem", "Dee", "Eve"):
            email = f"{first.lower()}@example.com"
            contact = create_contact(s, {"first_name": first, "last_name": "Test", "email": email}, now=T0 - 30 * D)
            built.contacts[first] = contact.id
        for first, who in built.contacts.items():
            campaign = _campaign(s, who, template.id, T0)
            built.campaigns[first] = campaign.id
            for step in campaign.steps:
                built.steps[(first, step.name)] = step.id

        def step(first: str, name: str) -> AutomationStep:
            found = s.get(AutomationStep, built.steps[(first, name)])
            assert found is not None
            return found

        for first in built.contacts:
            send(s, step(first, "Welcome"), T0 + H)
        ann, ben, cem, dee, eve = (step(f, "Welcome") for f in ("Ann", "Ben", "Cem", "Dee", "Eve"))
        track(s, ann, "open", T0 + 2 * H, user_agent="Mozilla/5.0")
        track(s, ann, "click", T0 + 2 * H + timedelta(minutes=1), link_index=0, url=OFFER)
        track(s, ann, "click", T0 + 3 * H, link_index=0, url=OFFER)
        track(s, ben, "open", T0 + H + timedelta(seconds=3), machine=True, user_agent="GoogleImageProxy")
        track(s, ben, "click", T0 + 4 * H, link_index=1, url=GUIDE)
        answer(s, cem, Classification("bounce", hard=True, status="5.1.1"), T0 + H + timedelta(minutes=2))
        track(s, dee, "open", T0 + 5 * H)
        answer(s, dee, Classification("bounce", hard=False, status="4.2.2"), T0 + 5 * H + timedelta(minutes=1))
        track(s, dee, "unsubscribe", T0 + 6 * H)
        answer(s, eve, Classification("auto_reply", return_on=date(2026, 3, 9)), T0 + 2 * H)

        send(s, step("Ann", "Tips"), T0 + D + H)
        send(s, step("Ben", "Tips"), T0 + D + H)
        tips = step("Ann", "Tips")
        track(s, tips, "open", T0 + D + 2 * H)
        track(s, tips, "click", T0 + D + 2 * H, link_index=0, url=OFFER)
        # Ann's reply to the welcome comes after the tips: it stops her campaign then.
        answer(s, ann, Classification("reply", first_lines="Thanks, this helps!\nSee you Monday"), T0 + 2 * D)

        own = _campaign(
            s,
            built.contacts["Eve"],
            None,
            T0,
            name="=Personal note",  # a formula, for the export's neutralisation
            steps=[{"name": "Note", "message_type": "email", "subject": "Hello", "body": "Hi"}],
        )
        built.campaigns["own"] = own.id
        send(s, own.steps[0], T0 + 3 * H)
        track(s, own.steps[0], "open", T0 + 4 * H)

        earlier = _campaign(s, built.contacts["Eve"], template.id, T0 - 10 * D, name="Earlier")
        built.campaigns["earlier"] = earlier.id
        send(s, earlier.steps[0], T0 - 10 * D + H)
        track(s, earlier.steps[0], "open", T0 - 10 * D + 2 * H)
        track(s, earlier.steps[0], "click", T0 - 10 * D + 2 * H, link_index=0, url=OFFER)
    return built
