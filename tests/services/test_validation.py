"""Every bad input names its field and its problem, and nothing is half-written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from automations.domain.errors import ValidationError
from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    AutomationTemplate,
    Contact,
    ContactEvent,
)
from automations.services import campaigns, contacts, templates
from automations.services.seed import seed_system_templates
from tests.conftest import NOW

GOOD_STEP = {"name": "Hello", "message_type": "email", "subject": "Hi", "body": "Hello {{ contact.first_name }}"}


def _counts(db) -> tuple[int, ...]:
    with db.read_session() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(model))
            for model in (Contact, AutomationCampaign, AutomationStep, AutomationTemplate, ContactEvent)
        )


@pytest.fixture
def contact_id(sqlite_db) -> int:
    with sqlite_db.session() as s:
        seed_system_templates(s)
        return contacts.create_contact(s, {"first_name": "Ada", "email": "ada@example.com"}, now=NOW).id


def _campaign_error(db, **changes) -> dict[str, str]:
    before = _counts(db)
    data = {"name": "Campaign", "steps": [GOOD_STEP], **changes}
    with pytest.raises(ValidationError) as caught, db.session() as s:
        campaigns.create_campaign(s, data, now=NOW)
    assert _counts(db) == before, "a refused campaign must leave the database as it was"
    return caught.value.errors


@pytest.mark.parametrize(
    ("step", "field", "words"),
    [
        ({**GOOD_STEP, "name": "  "}, "steps.0.name", "empty"),
        ({**GOOD_STEP, "message_type": "fax"}, "steps.0.message_type", "'email'"),
        ({**GOOD_STEP, "delay_days": -1}, "steps.0.delay_days", "greater than or equal to 0"),
        ({**GOOD_STEP, "delay_days": 100_000}, "steps.0.delay_days", "less than or equal"),
        ({**GOOD_STEP, "delay_hours": -3}, "steps.0.delay_hours", "greater than or equal to 0"),
        ({**GOOD_STEP, "body": "x" * 60_000}, "steps.0.body", "at most"),
        ({"name": "Text", "message_type": "sms", "body": "y" * 2000}, "steps.0.body", "1600"),
        ({**GOOD_STEP, "subject": ""}, "steps.0.subject", "subject"),
        ({**GOOD_STEP, "body": "Hi {{ contact.first_name "}, "steps.0.body", "syntax error"),
        ({**GOOD_STEP, "body": "{{ contact.__class__.__mro__ }}"}, "steps.0.body", "unsafe"),
        ({"name": "Call", "message_type": "task", "subject": ""}, "steps.0.subject", "title"),
        ({"name": "Hook", "message_type": "webhook"}, "steps.0.webhook_url", "URL"),
        ({"name": "Hook", "message_type": "webhook", "webhook_url": "ftp://x.example/"}, "steps.0.webhook_url", "http"),
        (
            {"name": "Hook", "message_type": "webhook", "webhook_url": "http://169.254.169.254/latest"},
            "steps.0.webhook_url",
            "link-local",
        ),
        (
            {"name": "Hook", "message_type": "webhook", "webhook_url": "http://[::ffff:127.0.0.1]/"},
            "steps.0.webhook_url",
            "loopback",
        ),
        (
            {"name": "Hook", "message_type": "webhook", "webhook_url": "http://2130706433/"},
            "steps.0.webhook_url",
            "loopback",
        ),
    ],
)
def test_bad_step_is_refused_with_its_field(sqlite_db, contact_id, step, field, words):
    errors = _campaign_error(sqlite_db, contact_id=contact_id, steps=[GOOD_STEP, step][1:])
    assert field in errors, errors
    assert words.lower() in errors[field].lower()


def test_several_bad_steps_are_all_reported(sqlite_db, contact_id):
    errors = _campaign_error(
        sqlite_db,
        contact_id=contact_id,
        steps=[GOOD_STEP, {**GOOD_STEP, "subject": ""}, {**GOOD_STEP, "message_type": "pigeon"}],
    )
    assert set(errors) == {"steps.1.subject", "steps.2.message_type"}


def test_missing_contact_and_template_are_field_errors(sqlite_db, contact_id):
    assert "contact_id" in _campaign_error(sqlite_db, contact_id=999)
    assert (
        "no template" in _campaign_error(sqlite_db, contact_id=contact_id, template_id=999, steps=None)["template_id"]
    )


def test_empty_campaign_name_and_no_steps(sqlite_db, contact_id):
    assert "name" in _campaign_error(sqlite_db, contact_id=contact_id, name="")
    assert "steps" in _campaign_error(sqlite_db, contact_id=contact_id, steps=[])


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"first_name": ""}, "first_name", "empty"),
        ({"email": "ada@@example"}, "email", "not a valid email"),
        ({"phone": "12345"}, "phone", "international form"),
        ({"phone": "+1 555 000 0000"}, "phone", "not a valid phone"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "unknown IANA timezone"),
        ({"tags": ["x" * 80]}, "tags", "64"),
        ({"shoe_size": 44}, "shoe_size", "unknown field"),
    ],
)
def test_bad_contact_is_refused_with_its_field(sqlite_db, changes, field, words):
    before = _counts(sqlite_db)
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        contacts.create_contact(s, {"first_name": "Ada", **changes}, now=NOW)
    assert words.lower() in caught.value.errors[field].lower()
    assert _counts(sqlite_db) == before


def test_contact_input_is_normalised(sqlite_db):
    with sqlite_db.session() as s:
        c = contacts.create_contact(
            s,
            {
                "first_name": " Ada ",
                "email": "Ada@Example.COM",
                "phone": "+44 20 7183 8750",
                "tags": "Trial, VIP, trial",
                "timezone": "Europe/London",
            },
            now=NOW,
        )
        assert (c.first_name, c.email, c.phone, c.tags) == ("Ada", "Ada@example.com", "+442071838750", ["trial", "vip"])


def test_failed_contact_update_changes_nothing(sqlite_db, contact_id):
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        contacts.update_contact(s, contact_id, {"last_name": "Lovelace", "email": "broken"}, now=NOW)
    assert "email" in caught.value.errors
    with sqlite_db.read_session() as s:
        contact = contacts.get_contact(s, contact_id)
        assert (contact.last_name, contact.email) == ("", "ada@example.com")


def test_duplicate_email_is_refused(sqlite_db, contact_id):
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        contacts.create_contact(s, {"first_name": "Other", "email": "ADA@example.com"}, now=NOW)
    assert "already has this email" in caught.value.errors["email"]


def test_failed_campaign_edit_keeps_the_old_steps(sqlite_db, contact_id):
    with sqlite_db.session() as s:
        c = campaigns.create_campaign(s, {"name": "C", "contact_id": contact_id, "steps": [GOOD_STEP]}, now=NOW)
    with pytest.raises(ValidationError), sqlite_db.session() as s:
        campaigns.update_campaign(s, c.id, {"name": "New", "steps": [{**GOOD_STEP, "body": "{% if %}"}]}, now=NOW)
    with sqlite_db.read_session() as s:
        c = campaigns.get_campaign(s, c.id)
        assert c.name == "C"
        assert [step.name for step in c.steps] == ["Hello"]


def test_templates_refuse_bad_input_and_protect_system_templates(sqlite_db, contact_id):
    from automations.domain.errors import Conflict

    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        templates.create_template(s, {"name": "", "category": "spam", "steps": []})
    assert {"name", "category", "steps"} <= set(caught.value.errors)
    with sqlite_db.session() as s:
        system = next(t for t in templates.list_templates(s) if t.is_system)
        with pytest.raises(Conflict):
            templates.update_template(s, system.id, {"name": "Mine"})
        with pytest.raises(Conflict):
            templates.delete_template(s, system.id)
        copy = templates.clone_template(s, system.id)
        assert not copy.is_system and len(copy.steps) == system.step_count
        templates.update_template(s, copy.id, {"description": "edited"})
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        templates.create_template(s, {"name": system.name, "steps": [GOOD_STEP]})
    assert "already exists" in caught.value.errors["name"]
