"""Contacts, templates, campaigns and follow-ups as a user works with them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from automations.domain.errors import Conflict, ValidationError
from automations.domain.models import (
    AutomationCampaign,
    ContactEvent,
    ScheduledFollowUp,
)
from automations.domain.timeutil import UTC
from automations.services import campaigns, contacts, followups, templates
from automations.services.seed import seed_system_templates
from tests.conftest import NOW

EMAIL = {"name": "Intro", "message_type": "email", "subject": "Hi {{ contact.first_name }}", "body": "Hello"}
CALL = {"name": "Call", "message_type": "task", "delay_days": 2, "subject": "Call", "body": "notes"}


@pytest.fixture
def people(db):
    with db.session() as s:
        seed_system_templates(s)
        ids = [
            contacts.create_contact(
                s,
                {"first_name": n, "email": f"{n.lower()}@example.com", "tags": ["trial"] if n != "Carl" else []},
                now=NOW,
            ).id
            for n in ("Ann", "Ben", "Carl")
        ]
    return ids


def test_template_edited_before_saving_then_saved_as_template(db, people):
    with db.session() as s:
        nurture = next(t for t in templates.list_templates(s) if t.name == "Lead Nurture (7-day)")
        steps = [templates.step_as_input(step) for step in templates.get_template(s, nurture.id).steps]
        steps[0]["subject"] = "Welcome from our team, {{ contact.first_name }}"
        steps.pop()  # the user drops the call
        campaign = campaigns.create_campaign(
            s, {"name": "Nurture Ann", "contact_id": people[0], "template_id": nurture.id, "steps": steps}, now=NOW
        )
        assert len(campaign.steps) == nurture.step_count - 1
        assert campaigns.render_step(campaign.steps[0], campaign.contact)[0] == "Welcome from our team, Ann"
        mine = campaigns.save_campaign_as_template(s, campaign.id, name="Short nurture")
        assert [st.name for st in mine.steps] == [st["name"] for st in steps]
        assert not mine.is_system
        summary = {t.name: t for t in templates.list_templates(s)}
        assert summary["Lead Nurture (7-day)"].campaigns == 1


def test_apply_a_template_to_every_contact_with_a_tag(db, people):
    with db.session() as s:
        onboarding = next(t for t in templates.list_templates(s) if t.name == "Customer Onboarding")
        ids = contacts.contact_ids_with_tag(s, "Trial")
        created = campaigns.start_campaigns_for_contacts(s, ids, template_id=onboarding.id, name="Onboarding", now=NOW)
    assert sorted(c.contact_id for c in created) == sorted(people[:2])
    with pytest.raises(ValidationError), db.session() as s:
        campaigns.start_campaigns_for_contacts(s, [], template_id=onboarding.id, name="x", now=NOW)


def test_duplicate_campaign_for_another_contact(db, people):
    with db.session() as s:
        original = campaigns.create_campaign(
            s, {"name": "Mine", "contact_id": people[0], "steps": [EMAIL, CALL]}, now=NOW
        )
        later = NOW + timedelta(days=1)
        copy = campaigns.duplicate_campaign(s, original.id, contact_id=people[1], now=later)
        assert (copy.contact_id, copy.name, copy.status) == (people[1], "Mine (copy)", "active")
        assert [st.scheduled_at for st in copy.steps] == [later, later + timedelta(days=2)]


def test_status_changes_through_update(db, people):
    with db.session() as s:
        c = campaigns.create_campaign(s, {"name": "C", "contact_id": people[0], "steps": [EMAIL]}, now=NOW)
        campaigns.update_campaign(s, c.id, {"status": "paused"}, now=NOW)
        assert c.status == "paused"
        campaigns.update_campaign(s, c.id, {"status": "active"}, now=NOW)
        assert c.status == "active"
        with pytest.raises(ValidationError):
            campaigns.update_campaign(s, c.id, {"status": "completed"}, now=NOW)
        campaigns.update_campaign(s, c.id, {"status": "canceled"}, now=NOW)
        with pytest.raises(Conflict):
            campaigns.update_campaign(s, c.id, {"status": "paused"}, now=NOW)
        with pytest.raises(Conflict):
            campaigns.update_campaign(s, c.id, {"steps": [EMAIL]}, now=NOW)


def test_contact_with_active_campaign_is_not_deleted_unless_canceled(db, people):
    with db.session() as s:
        c = campaigns.create_campaign(s, {"name": "C", "contact_id": people[0], "steps": [EMAIL]}, now=NOW)
    with pytest.raises(Conflict, match="active or paused campaign"), db.session() as s:
        contacts.delete_contact(s, people[0])
    with db.session() as s:
        contacts.delete_contact(s, people[0], cancel_campaigns=True, now=NOW)
    with db.read_session() as s:
        assert s.get(AutomationCampaign, c.id) is None
        assert contacts.search_contacts(s)[1] == 2


def test_contact_changes_record_events_for_the_rules(db, people):
    with db.session() as s:
        contacts.update_contact(
            s, people[2], {"tags": ["vip"], "company": "Hooli", "custom_fields": {"plan": "pro"}}, now=NOW
        )
    with db.read_session() as s:
        events = s.execute(
            select(ContactEvent.kind, ContactEvent.payload)
            .where(ContactEvent.contact_id == people[2])
            .order_by(ContactEvent.id)
        ).all()
    kinds = [k for k, _ in events]
    assert kinds[0] == "contact_created"
    assert ("tag_added", {"tag": "vip"}) in events
    assert ("field_changed", {"field": "company", "value": "Hooli"}) in events
    assert ("field_changed", {"field": "plan", "value": "pro"}) in events


def test_contact_search_is_paginated_and_filters_by_tag(db, people):
    with db.read_session() as s:
        page, total = contacts.search_contacts(s, contacts.ContactFilter(search="be"), limit=10)
        assert total == 1 and page[0].first_name == "Ben"
        page, total = contacts.search_contacts(s, contacts.ContactFilter(tag="trial"), limit=1, offset=1)
        assert total == 2 and len(page) == 1


def test_followups_done_snoozed_canceled_and_counted(db, people):
    tz = UTC
    with db.session() as s:
        overdue = followups.create_followup(
            s, {"contact_id": people[0], "title": "Call", "due_at": NOW - timedelta(hours=3)}
        )
        today = followups.create_followup(
            s, {"contact_id": people[1], "title": "Email", "due_at": NOW + timedelta(hours=2)}
        )
        later = followups.create_followup(
            s, {"contact_id": people[1], "title": "Demo", "due_at": NOW + timedelta(days=3)}
        )
        counts = followups.followup_counts(s, NOW, tz)
        assert (counts.pending, counts.overdue, counts.due_today) == (3, 1, 1)
        followups.complete_followup(s, overdue.id, now=NOW)
        followups.snooze_followup(s, today.id, NOW + timedelta(days=1))
        followups.cancel_followup(s, later.id, now=NOW)
        with pytest.raises(Conflict):
            followups.complete_followup(s, later.id, now=NOW)
        assert followups.followup_counts(s, NOW, tz).pending == 1
        assert (
            s.scalar(select(func.count()).select_from(ScheduledFollowUp).where(ScheduledFollowUp.status == "done")) == 1
        )
    with pytest.raises(ValidationError) as caught, db.session() as s:
        followups.create_followup(s, {"contact_id": 12345, "title": "", "due_at": NOW})
    assert "title" in caught.value.errors


def test_search_finds_a_contact_and_their_campaigns_by_full_name(db):
    with db.session() as s:
        ada = contacts.create_contact(
            s, {"first_name": "Ada", "last_name": "Lovelace", "email": "countess@example.com"}, now=NOW
        ).id
        contacts.create_contact(s, {"first_name": "Ada", "last_name": "Byron_"}, now=NOW)
        campaigns.create_campaign(
            s,
            {
                "name": "Engines",
                "contact_id": ada,
                "steps": [{"name": "Hello", "message_type": "task", "subject": "Call", "delay_days": 1}],
            },
            now=NOW,
        )
    with db.read_session() as s:
        found, total = contacts.search_contacts(s, contacts.ContactFilter(search="ada lovelace"))
        assert total == 1 and found[0].id == ada
        # `_` and `%` are taken literally, not as wildcards.
        assert contacts.search_contacts(s, contacts.ContactFilter(search="Byron_"))[1] == 1
        assert contacts.search_contacts(s, contacts.ContactFilter(search="Lovelac_"))[1] == 0
        assert contacts.search_contacts(s, contacts.ContactFilter(search="%"))[1] == 0
        rows, total = campaigns.list_campaigns(s, campaigns.CampaignFilter(search="Ada Lovelace"))
        assert total == 1 and [c.name for c in rows] == ["Engines"]


def test_search_ignores_case_in_every_alphabet(db):
    with db.session() as s:
        emile = contacts.create_contact(
            s, {"first_name": "Émile", "last_name": "Ørsted", "company": "Łódź Ärger GmbH"}, now=NOW
        ).id
    with db.read_session() as s:
        for text in ("émile ørsted", "ÉMILE", "Ørsted", "łódź", "ÄRGER", "rsted", "GMBH"):
            found, total = contacts.search_contacts(s, contacts.ContactFilter(search=text))
            assert total == 1 and found[0].id == emile, text
