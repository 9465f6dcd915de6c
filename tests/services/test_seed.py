"""The six system templates: present, idempotent, delays as named, usable as is."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from automations.domain.models import AutomationTemplate
from automations.services import campaigns, contacts, templates
from automations.services.seed import seed_system_templates
from tests.conftest import NOW

NAMES = {
    "Lead Nurture (7-day)",
    "Lead Nurture (30-day)",
    "Customer Onboarding",
    "Weekly Check-in",
    "Re-engagement Campaign",
    "Product Launch Sequence",
}


def test_six_system_templates_idempotent_and_custom_untouched(db):
    with db.session() as s:
        custom = templates.create_template(
            s, {"name": "Mine", "steps": [{"name": "Ping", "message_type": "sms", "body": "Hi"}]}
        )
        first = seed_system_templates(s)
    with db.session() as s:
        second = seed_system_templates(s)
    assert (first.created, second.created, second.updated, second.unchanged) == (6, 0, 0, 6)
    with db.read_session() as s:
        summaries = {t.name: t for t in templates.list_templates(s)}
        assert set(summaries) >= NAMES
        assert all(summaries[name].is_system for name in NAMES)
        assert summaries["Mine"].step_count == 1 and not summaries["Mine"].is_system
        assert s.get(AutomationTemplate, custom.id).name == "Mine"


def test_durations_match_the_names_and_channels_suit_them(sqlite_db):
    with sqlite_db.session() as s:
        seed_system_templates(s)
        summaries = {t.name: t for t in templates.list_templates(s)}
    assert summaries["Lead Nurture (7-day)"].duration == timedelta(days=7)
    assert summaries["Lead Nurture (30-day)"].duration == timedelta(days=30)
    for name in NAMES:
        assert summaries[name].step_count >= 4
        assert "email" in summaries[name].message_types
    assert "webhook" in summaries["Customer Onboarding"].message_types
    assert "task" in summaries["Lead Nurture (7-day)"].message_types


@pytest.mark.parametrize("name", sorted(NAMES))
def test_each_template_personalises_for_a_contact(sqlite_db, name):
    with sqlite_db.session() as s:
        seed_system_templates(s)
        template = s.scalar(select(AutomationTemplate).where(AutomationTemplate.name == name))
        known = contacts.create_contact(s, {"first_name": "Maya", "company": "Hooli"}, now=NOW)
        unnamed = contacts.create_contact(s, {"first_name": "X", "email": "x@example.com"}, now=NOW)
        unnamed.first_name = ""  # a contact whose first name is missing in the CRM
        campaign = campaigns.create_campaign(
            s, {"name": name, "contact_id": known.id, "template_id": template.id}, now=NOW
        )
        texts = [" ".join(campaigns.render_step(step, known, name)) for step in campaign.steps]
        anonymous = [" ".join(campaigns.render_step(step, unnamed, name)) for step in campaign.steps]
    assert any("Maya" in text for text in texts)
    assert not any("{{" in text or "{%" in text for text in texts)
    assert any("there" in text for text in anonymous)
