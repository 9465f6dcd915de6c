"""The six system templates (`python -m automations seed-templates`).

Seeding is idempotent: a missing system template is created, one whose content
changed in a new release is brought up to date, the rest is left alone. Custom
templates are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.domain.db import folded
from automations.domain.models import AutomationTemplate, TemplateStep
from automations.services.schemas import TemplateInput, parse
from automations.services.templates import step_as_input, step_rows

HI = '{{ contact.first_name | default("there") }}'
TEAM = '{{ contact.company | default("your team") }}'
SIGN = "\n\nBest regards,\nThe Customer Success team"


def email(name: str, days: int, subject: str, body: str, hours: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "message_type": "email",
        "delay_days": days,
        "delay_hours": hours,
        "subject": subject,
        "body": body + SIGN,
    }


def sms(name: str, days: int, body: str, hours: int = 0) -> dict[str, Any]:
    return {"name": name, "message_type": "sms", "delay_days": days, "delay_hours": hours, "body": body}


def task(name: str, days: int, title: str, notes: str, hours: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "message_type": "task",
        "delay_days": days,
        "delay_hours": hours,
        "subject": title,
        "body": notes,
    }


def webhook(name: str, days: int, url: str, event: str, hours: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "message_type": "webhook",
        "delay_days": days,
        "delay_hours": hours,
        "webhook_url": url,
        "webhook_payload": {"event": event},
    }


SYSTEM_TEMPLATES: list[dict[str, Any]] = [
    {
        "key": "lead-nurture-7",
        "name": "Lead Nurture (7-day)",
        "category": "nurture",
        "description": "A one-week sequence for a fresh inbound lead: a prompt thank-you, "
        "useful material, a short text and a call on day 7.",
        "steps": [
            email(
                "Thank-you email",
                0,
                f"Thanks for reaching out, {HI}",
                f"Hi {HI},\n\nThank you for your interest. I'd love to understand what {TEAM} "
                "is working on and whether we can help.\n\nIf it's easier, just reply to this "
                "email with a good time for a 15-minute call.",
            ),
            email(
                "Resources email",
                2,
                "Three ideas teams like yours start with",
                f"Hi {HI},\n\nHere are three short guides that teams like {TEAM} found useful "
                "in their first week:\n\n1. Setting up your first follow-up sequence\n"
                "2. Measuring what works\n3. Keeping your data in one place\n\n"
                "Any questions? Just hit reply.",
            ),
            sms(
                "Check-in text",
                3,
                f"Hi {HI}, did the guides I sent help? Happy to answer any question by text or call.",
            ),
            task(
                "Qualification call",
                2,
                "Call {{ contact.full_name | default('the lead') }}",
                "Day 7 of the nurture sequence. Ask about goals, timeline and budget; "
                "log the outcome and book a demo if it fits.",
            ),
        ],
    },
    {
        "key": "lead-nurture-30",
        "name": "Lead Nurture (30-day)",
        "category": "nurture",
        "description": "A month-long, low-pressure nurture for leads not ready to buy: "
        "education, proof, a personal touch and a polite close.",
        "steps": [
            email(
                "Welcome email",
                0,
                f"Welcome, {HI}",
                f"Hi {HI},\n\nThanks for signing up. Over the next few weeks I'll share a few "
                "short, practical notes, no more than one a week. Reply anytime to ask for "
                "something specific.",
            ),
            email(
                "Getting-started guide",
                3,
                "A 10-minute guide to getting started",
                f"Hi {HI},\n\nMost teams get value fastest by starting small. This guide shows "
                "the three steps we see work best, with examples.",
            ),
            sms(
                "Personal text",
                4,
                f"Hi {HI}, it's your contact from the sales team. Anything I can help {TEAM} with this week?",
            ),
            email(
                "Case study",
                7,
                f"How a team like {TEAM} saved 5 hours a week",
                f"Hi {HI},\n\nI thought you'd like this short case study: a team of eight cut their "
                "manual follow-up work by five hours a week in their first month.",
            ),
            task(
                "Personal follow-up call",
                7,
                "Call {{ contact.full_name | default('the lead') }}",
                "Three weeks into the 30-day nurture. Reference the case study and ask what is holding them back.",
            ),
            email(
                "Break-up email",
                9,
                "Should I close your file?",
                f"Hi {HI},\n\nI haven't heard back, so I'll assume the timing isn't right. "
                "I'll stop reaching out for now. If anything changes, just reply to this email "
                "and I'll pick it up from there.",
            ),
        ],
    },
    {
        "key": "customer-onboarding",
        "name": "Customer Onboarding",
        "category": "onboarding",
        "description": "The first two weeks of a new customer: welcome, setup help, a kickoff "
        "call, a CRM update and a check at the end of week two.",
        "steps": [
            email(
                "Welcome aboard",
                0,
                f"Welcome aboard, {HI}!",
                f"Hi {HI},\n\nWelcome! We're glad to have {TEAM} with us. Over the next two "
                "weeks we'll help you get set up and make sure you see results quickly.\n\n"
                "Your first step: reply with the best time for a 30-minute kickoff call.",
            ),
            email(
                "Setup guide",
                1,
                "Your setup checklist",
                f"Hi {HI},\n\nHere is the checklist most customers finish in their first week:\n"
                "- import your contacts\n- invite your teammates\n- start your first campaign\n\n"
                "Stuck on anything? Reply and we'll help.",
            ),
            task(
                "Kickoff call",
                2,
                "Kickoff call with {{ contact.full_name | default('the customer') }}",
                "Walk through their goals, confirm the setup checklist and agree on a success "
                "measure for the first month.",
            ),
            webhook(
                "Notify CRM: onboarding started",
                0,
                "https://hooks.example.com/crm/onboarding",
                "onboarding.kickoff_scheduled",
                hours=1,
            ),
            sms(
                "Day-7 check", 4, f"Hi {HI}, one week in! How is the setup going? Reply here if anything's in the way."
            ),
            email(
                "Two-week review",
                7,
                "How are your first two weeks going?",
                f"Hi {HI},\n\nYou've been with us for two weeks. Could you tell us in one line "
                "how it's going? Your answer goes straight to your account manager.",
            ),
        ],
    },
    {
        "key": "weekly-check-in",
        "name": "Weekly Check-in",
        "category": "engagement",
        "description": "Four weekly touches to keep an active account engaged, alternating "
        "channels so it never feels automated.",
        "steps": [
            email(
                "Week 1 check-in",
                0,
                "Quick check-in",
                f"Hi {HI},\n\nJust checking in: is there anything {TEAM} needs from us this week?",
            ),
            task(
                "Week 2 call",
                7,
                "Check-in call with {{ contact.full_name | default('the customer') }}",
                "A short call: wins since last week, blockers, next steps.",
            ),
            sms("Week 3 text", 7, f"Hi {HI}, anything we can help with this week? Just reply."),
            email(
                "Week 4 summary",
                7,
                "Your month in review",
                f"Hi {HI},\n\nThanks for a great month. Reply with one thing you'd like us to "
                "improve next month, and we'll make it happen.",
            ),
        ],
    },
    {
        "key": "re-engagement",
        "name": "Re-engagement Campaign",
        "category": "re-engagement",
        "description": "Win back a contact who went quiet: a friendly nudge, an offer, and a "
        "final note before the file is closed.",
        "steps": [
            email(
                "We miss you",
                0,
                f"It's been a while, {HI}",
                f"Hi {HI},\n\nWe haven't heard from {TEAM} in a while and wanted to check that "
                "everything is all right. Has anything changed on your side?",
            ),
            sms("Friendly nudge", 3, f"Hi {HI}, just checking in. Is now a better time to reconnect?"),
            email(
                "Come-back offer",
                4,
                "Something to welcome you back",
                f"Hi {HI},\n\nIf you'd like to pick things up again, we'll give {TEAM} a free "
                "one-hour review session. Just reply to book it.",
            ),
            task(
                "Last personal attempt",
                3,
                "Call {{ contact.full_name | default('the contact') }}",
                "Final personal attempt before closing the file. Note the reason if they left.",
            ),
            email(
                "Closing the file",
                4,
                "Closing the loop",
                f"Hi {HI},\n\nI'll stop reaching out after this note. If you ever want to talk "
                "again, simply reply, and I'll be glad to help.",
            ),
        ],
    },
    {
        "key": "product-launch",
        "name": "Product Launch Sequence",
        "category": "launch",
        "description": "Announce a launch: a teaser, launch day email, a note to your "
        "systems, a reminder text, a follow-up and a call with the interested.",
        "steps": [
            email(
                "Teaser",
                0,
                "Something new is coming",
                f"Hi {HI},\n\nNext week we're launching something we've built with teams like "
                f"{TEAM} in mind. Keep an eye on your inbox.",
            ),
            email(
                "Launch day",
                3,
                f"It's here, {HI}",
                f"Hi {HI},\n\nToday we launch! Here's what's new and how {TEAM} can try it "
                "today. Reply to get early access.",
            ),
            webhook(
                "Notify CRM: launch email sent", 0, "https://hooks.example.com/crm/launch", "launch.announced", hours=1
            ),
            sms("Launch reminder", 1, f"Hi {HI}, our launch offer ends soon. Reply YES for early access."),
            email(
                "Launch follow-up",
                3,
                "Did you get a chance to look?",
                f"Hi {HI},\n\nA few days after launch, here are the first reactions from "
                "customers, and a short video tour. Want a personal walkthrough?",
            ),
            task(
                "Call interested contacts",
                3,
                "Call {{ contact.full_name | default('the contact') }}",
                "Follow up on the launch: did they open the emails, are they interested in a demo?",
            ),
        ],
    },
]


@dataclass(frozen=True)
class SeedResult:
    created: int
    updated: int
    unchanged: int


def _spec_matches(template: AutomationTemplate, spec: TemplateInput) -> bool:
    stored = [step_as_input(step) for step in template.steps]
    wanted = [{**s.model_dump(), "message_type": s.message_type.value} for s in spec.steps]
    return template.description == spec.description and template.category == spec.category.value and stored == wanted


def seed_system_templates(session: Session) -> SeedResult:
    """Create or update the system templates; returns what changed."""
    created = updated = unchanged = 0
    for raw in SYSTEM_TEMPLATES:
        spec = parse(TemplateInput, {k: v for k, v in raw.items() if k != "key"}, allow_private=True)
        template = session.scalar(select(AutomationTemplate).where(AutomationTemplate.system_key == raw["key"]))
        if template is None:
            name = spec.name
            taken = session.scalar(select(AutomationTemplate.id).where(folded(AutomationTemplate.name) == name.lower()))
            if taken is not None:  # a custom template already has the name: leave it alone
                name = f"{name} (system)"
            template = AutomationTemplate(
                name=name,
                description=spec.description,
                category=spec.category.value,
                is_system=True,
                system_key=raw["key"],
            )
            template.steps = step_rows(spec.steps, TemplateStep)
            session.add(template)
            created += 1
        elif _spec_matches(template, spec):
            unchanged += 1
        else:
            template.description = spec.description
            template.category = spec.category.value
            template.steps.clear()
            session.flush()
            template.steps.extend(step_rows(spec.steps, TemplateStep))
            updated += 1
    session.flush()
    return SeedResult(created=created, updated=updated, unchanged=unchanged)
