"""Every bad input names its field and its problem, and nothing is half-written."""

from __future__ import annotations

from datetime import timedelta

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
from automations.services import campaigns, contacts, followups, templates
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


LOOPBACK = "Not allowed: the URL targets {host}, a loopback address; webhooks only go to public addresses."


@pytest.mark.parametrize(
    ("step", "field", "message"),
    [
        ({**GOOD_STEP, "name": "  "}, "steps.0.name", "Give the step a name."),
        ({**GOOD_STEP, "name": "n" * 230}, "steps.0.name", "Too long: 230 characters, at most 200."),
        ({**GOOD_STEP, "message_type": "fax"}, "steps.0.message_type", "Choose one of: email, sms, task or webhook."),
        ({**GOOD_STEP, "delay_days": -1}, "steps.0.delay_days", "Must be 0 or more."),
        ({**GOOD_STEP, "delay_days": 100_000}, "steps.0.delay_days", "At most 3650."),
        ({**GOOD_STEP, "delay_days": "soon"}, "steps.0.delay_days", "Must be a whole number."),
        ({**GOOD_STEP, "delay_hours": -3}, "steps.0.delay_hours", "Must be 0 or more."),
        ({**GOOD_STEP, "body": "x" * 60_000}, "steps.0.body", "Too long: 60,000 characters, at most 50,000."),
        (
            {"name": "Text", "message_type": "sms", "body": "y" * 2000},
            "steps.0.body",
            "Too long for an SMS: 2,000 characters, at most 1,600.",
        ),
        ({**GOOD_STEP, "subject": ""}, "steps.0.subject", "Give the email a subject."),
        ({**GOOD_STEP, "body": ""}, "steps.0.body", "Write the text of the email."),
        ({"name": "Text", "message_type": "sms"}, "steps.0.body", "Write the text of the SMS."),
        (
            {**GOOD_STEP, "body": "Hi {{ contact.first_name "},
            "steps.0.body",
            "The template is missing a closing `}}` after `contact.first_name`.",
        ),
        (
            {**GOOD_STEP, "body": "{{ contact.__class__.__mro__ }}"},
            "steps.0.body",
            "The template uses `__class__`, which is not allowed.",
        ),
        ({"name": "Call", "message_type": "task", "subject": ""}, "steps.0.subject", "Give the task a title."),
        (
            {"name": "Hook", "message_type": "webhook"},
            "steps.0.webhook_url",
            "Give the URL the webhook sends to, e.g. https://example.com/hook.",
        ),
        (
            {"name": "Hook", "message_type": "webhook", "webhook_url": "ftp://x.example/"},
            "steps.0.webhook_url",
            "The URL must be an http:// or https:// URL.",
        ),
        (
            {"name": "Hook", "message_type": "webhook", "webhook_url": "http://169.254.169.254/latest"},
            "steps.0.webhook_url",
            "Not allowed: the URL targets 169.254.169.254, a link-local address; webhooks only go to public addresses.",
        ),
        (
            {"name": "Hook", "message_type": "webhook", "webhook_url": "http://[::ffff:127.0.0.1]/"},
            "steps.0.webhook_url",
            LOOPBACK.format(host="::ffff:127.0.0.1"),
        ),
        (
            {"name": "Hook", "message_type": "webhook", "webhook_url": "http://2130706433/"},
            "steps.0.webhook_url",
            LOOPBACK.format(host="2130706433"),
        ),
    ],
)
def test_bad_step_is_refused_with_its_field_in_plain_words(sqlite_db, contact_id, step, field, message):
    errors = _campaign_error(sqlite_db, contact_id=contact_id, steps=[step])
    assert errors == {field: message}


def test_several_bad_steps_are_all_reported(sqlite_db, contact_id):
    errors = _campaign_error(
        sqlite_db,
        contact_id=contact_id,
        steps=[GOOD_STEP, {**GOOD_STEP, "subject": ""}, {**GOOD_STEP, "message_type": "pigeon"}],
    )
    assert set(errors) == {"steps.1.subject", "steps.2.message_type"}


def test_missing_contact_and_template_are_field_errors(sqlite_db, contact_id):
    assert _campaign_error(sqlite_db, contact_id=999) == {"contact_id": "No contact with id 999."}
    assert _campaign_error(sqlite_db, contact_id=contact_id, template_id=999, steps=None) == {
        "template_id": "No template with id 999."
    }


def test_empty_campaign_name_and_no_steps(sqlite_db, contact_id):
    assert _campaign_error(sqlite_db, contact_id=contact_id, name="") == {"name": "Give the campaign a name."}
    assert _campaign_error(sqlite_db, contact_id=contact_id, steps=[]) == {
        "steps": "Add at least one step, or choose a template."
    }


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"first_name": ""}, "first_name", "Give the contact's first name."),
        (
            {"email": "ada@@example"},
            "email",
            "Not a valid email address: the part after the @-sign contains invalid characters: '@'.",
        ),
        ({"email": "ada"}, "email", "Not a valid email address: it must have an @-sign."),
        ({"phone": "12345"}, "phone", "Use the international format with the country code, e.g. +14155550123."),
        (
            {"phone": "+1 555 000 0000"},
            "phone",
            "Not a valid phone number: check the country code and the digits, e.g. +14155550123.",
        ),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "Unknown timezone: use a name like Europe/Paris."),
        ({"tags": ["x" * 80]}, "tags", "Too long: the tag 'xxxxxxxxxxxxxxxxxxxx'… has 80 characters, at most 64."),
        ({"company": "c" * 230}, "company", "Too long: 230 characters, at most 200."),
        ({"email_opt_out": "maybe"}, "email_opt_out", "Must be yes or no."),
        ({"shoe_size": 44}, "shoe_size", "Unknown field."),
    ],
)
def test_bad_contact_is_refused_with_its_field_in_plain_words(sqlite_db, changes, field, message):
    before = _counts(sqlite_db)
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        contacts.create_contact(s, {"first_name": "Ada", **changes}, now=NOW)
    assert caught.value.errors == {field: message}
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
    assert caught.value.errors == {"email": f"Another contact (#{contact_id}) already has this email."}


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
    assert caught.value.errors == {"name": f"A template named {system.name!r} already exists: choose another name."}


# --- every problem of an input at once ------------------------------------------

BROKEN_BODY = "Hi {{ contact.first_name "
MISSING_CLOSE = "The template is missing a closing `}}` after `contact.first_name`."


def test_a_template_with_four_problems_gets_four_messages_at_once(sqlite_db):
    """The broken template is named on the first save, with the name and the numbers."""
    step = {"name": "n" * 230, "message_type": "sms", "body": BROKEN_BODY, "delay_days": -1}
    before = _counts(sqlite_db)
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        templates.create_template(s, {"name": "", "steps": [step]})
    assert caught.value.errors == {
        "name": "Give the template a name.",
        "steps.0.name": "Too long: 230 characters, at most 200.",
        "steps.0.body": MISSING_CLOSE,
        "steps.0.delay_days": "Must be 0 or more.",
    }
    assert _counts(sqlite_db) == before


def test_what_a_step_type_needs_is_reported_with_the_other_problems(sqlite_db):
    """An email without a subject is named even while its name is too long."""
    step = {"name": "n" * 201, "message_type": "email", "body": "Hello"}
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        templates.create_template(s, {"name": "Welcome", "steps": [step, {**GOOD_STEP, "delay_hours": -2}]})
    assert caught.value.errors == {
        "steps.0.name": "Too long: 201 characters, at most 200.",
        "steps.0.subject": "Give the email a subject.",
        "steps.1.delay_hours": "Must be 0 or more.",
    }


def test_a_taken_template_name_comes_with_the_step_problems(sqlite_db, contact_id):
    with sqlite_db.session() as s:
        system = next(t for t in templates.list_templates(s) if t.is_system)
        mine = templates.create_template(s, {"name": "Mine", "steps": [GOOD_STEP]}).id
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        templates.create_template(
            s, {"name": f" {system.name.upper()} ", "steps": [{**GOOD_STEP, "body": BROKEN_BODY}]}
        )
    assert caught.value.errors == {
        "name": f"A template named {system.name.upper()!r} already exists: choose another name.",
        "steps.0.body": MISSING_CLOSE,
    }
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        templates.update_template(s, mine, {"name": system.name, "colour": "red", "category": "spam"})
    assert caught.value.errors == {
        "name": f"A template named {system.name!r} already exists: choose another name.",
        "category": "Choose one of: nurture, onboarding, engagement, re-engagement, launch or custom.",
        "colour": "Unknown field.",
    }
    with sqlite_db.read_session() as s:
        assert templates.get_template(s, mine).name == "Mine"


def test_a_campaign_reports_its_fields_steps_and_contact_together(sqlite_db, contact_id):
    errors = _campaign_error(
        sqlite_db,
        name="",
        contact_id=987,
        steps=[{**GOOD_STEP, "body": BROKEN_BODY, "delay_days": -1}, {"name": "Call", "message_type": "task"}],
    )
    assert errors == {
        "name": "Give the campaign a name.",
        "contact_id": "No contact with id 987.",
        "steps.0.body": MISSING_CLOSE,
        "steps.0.delay_days": "Must be 0 or more.",
        "steps.1.subject": "Give the task a title.",
    }


def test_campaigns_for_several_contacts_report_everything_at_once(sqlite_db, contact_id):
    before = _counts(sqlite_db)
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        campaigns.start_campaigns_for_contacts(
            s,
            [contact_id, 998, 999, contact_id],
            name="x" * 201,
            steps=[{**GOOD_STEP, "delay_days": -1}],
            now=NOW,
        )
    assert caught.value.errors == {
        "name": "Too long: 201 characters, at most 200.",
        "steps.0.delay_days": "Must be 0 or more.",
        "contact_id": "No contact with id 998, 999.",
    }
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        campaigns.start_campaigns_for_contacts(s, [], name="", template_id=999, now=NOW)
    assert caught.value.errors == {
        "name": "Give the campaign a name.",
        "template_id": "No template with id 999.",
        "contact_ids": "Choose at least one contact.",
    }
    assert _counts(sqlite_db) == before


def test_campaigns_for_several_contacts_are_created_when_all_is_well(sqlite_db, contact_id):
    with sqlite_db.session() as s:
        other = contacts.create_contact(s, {"first_name": "Bob"}, now=NOW).id
        created = campaigns.start_campaigns_for_contacts(
            s, [contact_id, other, contact_id], name="Hello", steps=[GOOD_STEP], now=NOW
        )
        assert sorted(c.contact_id for c in created) == sorted([contact_id, other])
        assert [len(c.steps) for c in created] == [1, 1]


def test_editing_a_campaign_reports_every_problem_and_changes_nothing(sqlite_db, contact_id):
    with sqlite_db.session() as s:
        c = campaigns.create_campaign(s, {"name": "C", "contact_id": contact_id, "steps": [GOOD_STEP]}, now=NOW)
    bad_steps = [{**GOOD_STEP, "delay_days": -1}, {**GOOD_STEP, "subject": "", "body": "{% if contact.company %}"}]
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        campaigns.update_campaign(s, c.id, {"name": " ", "status": "sleeping", "steps": bad_steps}, now=NOW)
    assert caught.value.errors == {
        "status": "Choose one of: paused, active, canceled.",
        "name": "Give the campaign a name.",
        "steps.0.delay_days": "Must be 0 or more.",
        "steps.1.subject": "Give the email a subject.",
        "steps.1.body": "The `{% if contact.company %}` block is never closed: add `{% endif %}`.",
    }
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        campaigns.replace_pending_steps(s, c.id, bad_steps, now=NOW)
    assert set(caught.value.errors) == {"steps.0.delay_days", "steps.1.subject", "steps.1.body"}
    with sqlite_db.read_session() as s:
        c = campaigns.get_campaign(s, c.id)
        assert (c.name, c.status, [(st.name, st.delay_days) for st in c.steps]) == ("C", "active", [("Hello", 0)])


def test_the_preview_reports_every_step_problem():
    with pytest.raises(ValidationError) as caught:
        campaigns.preview_schedule(
            [{**GOOD_STEP, "delay_days": -1}, {"name": "", "message_type": "sms"}], now=NOW, allow_private=False
        )
    assert caught.value.errors == {
        "steps.0.delay_days": "Must be 0 or more.",
        "steps.1.name": "Give the step a name.",
        "steps.1.body": "Write the text of the SMS.",
    }


def test_negative_delays_are_refused_never_changed(sqlite_db, contact_id):
    for field in ("delay_days", "delay_hours"):
        errors = _campaign_error(sqlite_db, contact_id=contact_id, steps=[{**GOOD_STEP, field: -1}])
        assert errors == {f"steps.0.{field}": "Must be 0 or more."}
    with sqlite_db.session() as s:
        c = campaigns.create_campaign(
            s, {"name": "C", "contact_id": contact_id, "steps": [{**GOOD_STEP, "delay_days": 2}]}, now=NOW
        )
        assert c.steps[0].delay_days == 2 and c.steps[0].scheduled_at == NOW + timedelta(days=2)


def test_a_contact_reports_its_fields_and_a_taken_email_together(sqlite_db, contact_id):
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        contacts.create_contact(s, {"first_name": " ", "email": "ADA@example.com", "phone": "12345"}, now=NOW)
    assert caught.value.errors == {
        "first_name": "Give the contact's first name.",
        "phone": "Use the international format with the country code, e.g. +14155550123.",
        "email": f"Another contact (#{contact_id}) already has this email.",
    }
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        contacts.update_contact(s, contact_id, {"timezone": "Paris", "nickname": "A", "tags": ["t" * 70]}, now=NOW)
    assert caught.value.errors == {
        "timezone": "Unknown timezone: use a name like Europe/Paris.",
        "tags": f"Too long: the tag {'t' * 20!r}… has 70 characters, at most 64.",
        "nickname": "Unknown field.",
    }


def test_a_followup_reports_every_problem_at_once(sqlite_db):
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        followups.create_followup(s, {"contact_id": 12345, "title": "", "campaign_id": 777, "due_at": NOW})
    assert caught.value.errors == {
        "title": "Give the task a title.",
        "contact_id": "No contact with id 12345.",
        "campaign_id": "No campaign with id 777.",
    }
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        followups.create_followup(s, {"contact_id": 0, "title": "t" * 301})
    assert caught.value.errors == {
        "contact_id": "Must be more than 0.",
        "title": "Too long: 301 characters, at most 300.",
        "due_at": "Give the date and time it is due.",
    }
