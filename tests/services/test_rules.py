"""Follow-up rules: each trigger fires its rule once, after its delay, with its
conditions honoured; disabled rules and re-enrolment limits; stopping campaigns."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from automations.domain.db import Database
from automations.domain.errors import ValidationError
from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    AutomationTemplate,
    CampaignStatus,
    ContactEvent,
    RuleExecution,
    ScheduledFollowUp,
    StepStatus,
)
from automations.runner.rules import process_rules
from automations.services import campaigns, contacts, followups, rules
from automations.services.scheduling import finish_step
from automations.services.seed import seed_system_templates
from tests.conftest import NOW

DAY = timedelta(days=1)
CALL = {"title": "Call {{ contact.first_name }}", "notes": "About {{ contact.company | default('their plan') }}"}


def run(db: Database, at: datetime) -> int:
    return process_rules(db, now=at, runner_id="test-runner")


def template_id(db: Database, name: str) -> int:
    with db.session() as s:
        seed_system_templates(s)
        return int(s.scalar(select(AutomationTemplate.id).where(AutomationTemplate.name == name)))


def make_rule(db: Database, **fields: Any) -> int:
    data: dict[str, Any] = {"name": "Rule", "action": "create_followup", "action_config": CALL}
    data.update(fields)
    with db.session() as s:
        return rules.create_rule(s, data, now=NOW - DAY).id


def make_contact(db: Database, at: datetime = NOW, **fields: Any) -> int:
    data = {"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com"}
    data.update(fields)
    with db.session() as s:
        return contacts.create_contact(s, data, now=at).id


def fetch(db: Database, query: Any) -> list[Any]:
    """Rows that stay readable after the session ends."""
    with db.read_session() as s:
        rows = list(s.scalars(query))
        s.expunge_all()
        return rows


def followups_of(db: Database, contact_id: int) -> list[ScheduledFollowUp]:
    return fetch(
        db, select(ScheduledFollowUp).where(ScheduledFollowUp.contact_id == contact_id).order_by(ScheduledFollowUp.id)
    )


def campaigns_of(db: Database, contact_id: int) -> list[AutomationCampaign]:
    return fetch(
        db,
        select(AutomationCampaign).where(AutomationCampaign.contact_id == contact_id).order_by(AutomationCampaign.id),
    )


def executions(db: Database, rule_id: int) -> list[RuleExecution]:
    return fetch(db, select(RuleExecution).where(RuleExecution.rule_id == rule_id).order_by(RuleExecution.id))


def test_tag_trial_starts_customer_onboarding_exactly_once(db: Database) -> None:
    onboarding = template_id(db, "Customer Onboarding")
    rule_id = make_rule(
        db,
        name="Trial onboarding",
        trigger="tag_added",
        trigger_config={"tag": "Trial"},
        action="start_campaign",
        action_config={"template_id": onboarding},
    )
    ann = make_contact(db, tags=["trial"])
    bob = make_contact(db, first_name="Bob", email="bob@example.com", tags=["lead"])

    run(db, NOW)
    run(db, NOW + timedelta(minutes=1))
    started = campaigns_of(db, ann)
    assert [(c.name, c.template_id, c.status) for c in started] == [("Customer Onboarding", onboarding, "active")]
    assert campaigns_of(db, bob) == []

    # The tag removed and added again: the rule applies once per contact ever.
    with db.session() as s:
        contacts.update_contact(s, ann, {"tags": []}, now=NOW + DAY)
        contacts.add_tags(s, ann, ["trial"], now=NOW + 2 * DAY)
    run(db, NOW + 2 * DAY)
    assert len(campaigns_of(db, ann)) == 1
    history = executions(db, rule_id)
    assert [e.status for e in history] == ["applied", "skipped"]
    assert "once per contact" in (history[1].detail or "")


def test_two_days_after_a_campaign_completes_remind_me_to_call(db: Database) -> None:
    rule_id = make_rule(db, name="Call after campaign", trigger="campaign_completed", delay_days=2, action_config=CALL)
    ann = make_contact(db, company="Acme")
    with db.session() as s:
        campaign = campaigns.create_campaign(
            s,
            {
                "name": "Hello",
                "contact_id": ann,
                "steps": [{"name": "Task", "message_type": "task", "subject": "Say hi"}],
            },
            now=NOW,
        )
        for step in campaign.steps:
            finish_step(s, step, StepStatus.DONE, NOW)
        campaign_id = campaign.id
    assert campaigns_of(db, ann)[0].status == CampaignStatus.COMPLETED.value

    run(db, NOW)
    run(db, NOW + 2 * DAY - timedelta(minutes=1))
    assert followups_of(db, ann) == []
    assert [e.status for e in executions(db, rule_id)] == ["pending"]

    run(db, NOW + 2 * DAY)
    run(db, NOW + 3 * DAY)
    [task] = followups_of(db, ann)
    assert (task.title, task.notes, task.due_at, task.rule_id, task.campaign_id) == (
        "Call Ann",
        "About Acme",
        NOW + 2 * DAY,
        rule_id,
        campaign_id,
    )
    [execution] = executions(db, rule_id)
    assert (execution.status, execution.followup_id) == ("applied", task.id)


def test_contact_created_with_conditions(db: Database) -> None:
    rule_id = make_rule(
        db,
        trigger="contact_created",
        delay_hours=3,
        conditions=[
            {"kind": "tag", "tag": "VIP"},
            {"kind": "opted_in", "channel": "email"},
            {"kind": "field_contains", "field": "company", "value": "acme"},
        ],
    )
    fits = make_contact(db, tags=["vip"], company="ACME Corp")
    opted_out = make_contact(db, tags=["vip"], company="Acme", email="o@example.com", email_opt_out=True)
    no_tag = make_contact(db, company="Acme", email="n@example.com")

    run(db, NOW + 2 * DAY)
    assert [f.due_at for f in followups_of(db, fits)] == [NOW + timedelta(hours=3)]
    assert followups_of(db, opted_out) == [] and followups_of(db, no_tag) == []
    assert len(executions(db, rule_id)) == 1


def test_field_changed_to_a_value(db: Database) -> None:
    make_rule(db, trigger="field_changed", trigger_config={"field": "plan", "value": "Pro"})
    ann = make_contact(db, custom_fields={"plan": "basic"})
    bob = make_contact(db, first_name="Bob", email="bob@example.com")
    with db.session() as s:
        contacts.update_contact(s, ann, {"custom_fields": {"plan": "pro"}}, now=NOW)
        contacts.update_contact(s, bob, {"custom_fields": {"plan": "team"}}, now=NOW)
    run(db, NOW)
    assert [f.title for f in followups_of(db, ann)] == ["Call Ann"]
    assert followups_of(db, bob) == []


def test_step_failed_creates_a_follow_up(db: Database) -> None:
    make_rule(db, trigger="step_failed", action_config={"title": "Fix {{ contact.email }}"})
    ann = make_contact(db)
    with db.session() as s:
        campaign = campaigns.create_campaign(
            s,
            {
                "name": "Hello",
                "contact_id": ann,
                "steps": [{"name": "Mail", "message_type": "email", "subject": "Hi", "body": "Hi"}],
            },
            now=NOW,
        )
        finish_step(s, campaign.steps[0], StepStatus.FAILED, NOW, error="mailbox full")
    run(db, NOW)
    assert [f.title for f in followups_of(db, ann)] == ["Fix ann@example.com"]


def test_followup_overdue_by_three_days_fires_once_per_follow_up(db: Database) -> None:
    rule_id = make_rule(
        db,
        trigger="followup_overdue",
        trigger_config={"days_overdue": 3},
        reenroll_after_days=1,
        action_config={"title": "Overdue: {{ contact.first_name }}"},
    )
    ann = make_contact(db)
    with db.session() as s:
        followups.create_followup(s, {"contact_id": ann, "title": "Send quote", "due_at": NOW}, now=NOW)
        followups.create_followup(s, {"contact_id": ann, "title": "Done in time", "due_at": NOW}, now=NOW)
        # Already three days overdue when the rule was made: the rule does not reach back.
        followups.create_followup(s, {"contact_id": ann, "title": "Old", "due_at": NOW - 5 * DAY}, now=NOW)
        done = s.scalar(select(ScheduledFollowUp.id).where(ScheduledFollowUp.title == "Done in time"))
        followups.complete_followup(s, done, now=NOW + DAY)

    run(db, NOW + 3 * DAY - timedelta(minutes=1))
    assert executions(db, rule_id) == []
    run(db, NOW + 3 * DAY)
    run(db, NOW + 4 * DAY)
    run(db, NOW + 10 * DAY)
    titles = sorted(f.title for f in followups_of(db, ann))
    assert titles == ["Done in time", "Old", "Overdue: Ann", "Send quote"]
    assert [e.status for e in executions(db, rule_id)] == ["applied"]


def test_inbound_replied_stops_other_campaigns(db: Database) -> None:
    nurture = template_id(db, "Lead Nurture (7-day)")
    make_rule(
        db,
        name="Stop on reply",
        trigger="inbound_event",
        trigger_config={"event": "replied"},
        stop_other_campaigns=True,
        delay_hours=1,
        action_config={"title": "Answer {{ contact.first_name }}"},
    )
    ann = make_contact(db)
    bob = make_contact(db, first_name="Bob", email="bob@example.com")
    with db.session() as s:
        for cid in (ann, ann, bob):
            campaigns.create_campaign(s, {"name": "Nurture", "contact_id": cid, "template_id": nurture}, now=NOW)
        rules.post_inbound_event(s, ann, "replied", {"message": "Sounds good"}, now=NOW + DAY)
        rules.post_inbound_event(s, bob, "form_submitted", {"form": "demo"}, now=NOW + DAY)

    run(db, NOW + DAY)
    assert [c.status for c in campaigns_of(db, ann)] == ["canceled", "canceled"]
    assert [c.status for c in campaigns_of(db, bob)] == ["active"]
    with db.read_session() as s:
        pending = s.scalar(
            select(func.count())
            .select_from(AutomationStep)
            .where(
                AutomationStep.campaign_id.in_([c.id for c in campaigns_of(db, ann)]),
                AutomationStep.status == StepStatus.PENDING.value,
            )
        )
    assert pending == 0
    assert followups_of(db, ann) == []  # the task comes after the rule's delay
    run(db, NOW + DAY + timedelta(hours=1))
    assert [f.title for f in followups_of(db, ann)] == ["Answer Ann"]


def test_disabled_rules_do_nothing(db: Database) -> None:
    rule_id = make_rule(db, trigger="contact_created", delay_days=1, is_active=False)
    make_contact(db)
    run(db, NOW + 2 * DAY)
    assert executions(db, rule_id) == []

    with db.session() as s:
        rules.set_rule_active(s, rule_id, True)
    ann = make_contact(db, at=NOW + 2 * DAY, email="a2@example.com")
    run(db, NOW + 2 * DAY)
    with db.session() as s:
        rules.set_rule_active(s, rule_id, False)
    run(db, NOW + 4 * DAY)
    assert followups_of(db, ann) == []
    [execution] = executions(db, rule_id)
    assert (execution.status, execution.detail) == ("skipped", "rule is disabled")


def test_at_most_once_per_n_days(db: Database) -> None:
    rule_id = make_rule(db, trigger="inbound_event", trigger_config={"event": "form_submitted"}, reenroll_after_days=7)
    ann = make_contact(db)
    for day in (0, 3, 8):
        with db.session() as s:
            rules.post_inbound_event(s, ann, "form_submitted", {}, now=NOW + day * DAY)
        run(db, NOW + day * DAY)
    assert [e.status for e in executions(db, rule_id)] == ["applied", "skipped", "applied"]
    assert len(followups_of(db, ann)) == 2


def test_an_active_campaign_from_the_template_is_not_started_twice(db: Database) -> None:
    onboarding = template_id(db, "Customer Onboarding")
    rule_id = make_rule(
        db,
        trigger="inbound_event",
        trigger_config={"event": "signed_up"},
        reenroll_after_days=1,
        action="start_campaign",
        action_config={"template_id": onboarding},
    )
    ann = make_contact(db)
    with db.session() as s:
        campaigns.create_campaign(s, {"name": "Mine", "contact_id": ann, "template_id": onboarding}, now=NOW)
        rules.post_inbound_event(s, ann, "signed_up", now=NOW)
    run(db, NOW)
    assert len(campaigns_of(db, ann)) == 1
    [execution] = executions(db, rule_id)
    assert execution.status == "skipped" and "already in an active campaign" in (execution.detail or "")


def test_events_are_marked_processed_and_rules_do_not_reach_back(db: Database) -> None:
    make_contact(db, at=NOW - 2 * DAY)  # before the rule existed
    rule_id = make_rule(db, trigger="contact_created")
    run(db, NOW)
    assert executions(db, rule_id) == []
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(ContactEvent).where(ContactEvent.processed_at.is_(None))) == 0


def test_a_deleted_template_is_recorded_as_skipped(db: Database) -> None:
    with db.session() as s:
        seed_system_templates(s)
        clone = s.scalar(select(AutomationTemplate).where(AutomationTemplate.name == "Weekly Check-in"))
        from automations.services.templates import clone_template, delete_template

        copy_id = clone_template(s, clone.id, "Mine").id
    rule_id = make_rule(
        db, trigger="contact_created", delay_days=1, action="start_campaign", action_config={"template_id": copy_id}
    )
    ann = make_contact(db)
    run(db, NOW)
    with db.session() as s:
        delete_template(s, copy_id)
    run(db, NOW + DAY)
    assert campaigns_of(db, ann) == []
    [execution] = executions(db, rule_id)
    assert execution.status == "skipped" and "no longer exists" in (execution.detail or "")


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"trigger": "tag_added"}, "trigger_config.tag", "Give the tag that starts this rule."),
        (
            {"trigger": "tag_added", "trigger_config": {"tag": "  "}},
            "trigger_config.tag",
            "Give the tag that starts this rule.",
        ),
        (
            {"trigger": "tag_added", "trigger_config": {"tag": "t" * 65}},
            "trigger_config.tag",
            "Too long: 65 characters, at most 64.",
        ),
        (
            {"trigger": "field_changed", "trigger_config": {"field": ""}},
            "trigger_config.field",
            "Give the field whose change starts this rule.",
        ),
        (
            {"trigger": "inbound_event", "trigger_config": {"event": ""}},
            "trigger_config.event",
            "Give the name of the event that starts this rule, e.g. replied.",
        ),
        (
            {"trigger": "followup_overdue", "trigger_config": {"days_overdue": -1}},
            "trigger_config.days_overdue",
            "Must be 0 or more.",
        ),
        (
            {"trigger": "followup_overdue", "trigger_config": {"days_overdue": 5000}},
            "trigger_config.days_overdue",
            "At most 3650.",
        ),
        (
            {"trigger": "followup_overdue"},
            "trigger_config.days_overdue",
            "Give how many days overdue a follow-up must be to start this rule.",
        ),
        (
            {"trigger": "contact_created", "stop_other_campaigns": True},
            "stop_other_campaigns",
            "Only a rule started by an inbound event can stop the contact's other campaigns.",
        ),
        (
            {"trigger": "contact_created", "action_config": {"title": ""}},
            "action_config.title",
            "Give the task a title.",
        ),
        (
            {"trigger": "contact_created", "action_config": {"title": "{{ contact.nope( }}"}},
            "action_config.title",
            "Missing `)` after `contact.nope(`.",
        ),
        (
            {"trigger": "contact_created", "action": "start_campaign", "action_config": {}},
            "action_config.template_id",
            "Choose the template to start.",
        ),
        (
            {"trigger": "contact_created", "action": "start_campaign", "action_config": {"template_id": 999}},
            "action_config.template_id",
            "No template with id 999.",
        ),
        (
            {"trigger": "contact_created", "conditions": [{"kind": "tag"}]},
            "conditions.0",
            "Give the tag the contact must have.",
        ),
        ({"trigger": "contact_created", "delay_days": -1}, "delay_days", "Must be 0 or more."),
        ({"trigger": "contact_created", "delay_hours": -1}, "delay_hours", "Must be 0 or more."),
        ({"trigger": "contact_created", "reenroll_after_days": 0}, "reenroll_after_days", "Must be 1 or more."),
        (
            {"trigger": "sometime"},
            "trigger",
            "Choose one of: contact_created, tag_added, field_changed, campaign_completed, step_failed, "
            "followup_overdue, inbound_event, email_opened, link_clicked, replied, auto_replied, bounced "
            "or unsubscribed.",
        ),
    ],
)
def test_invalid_rules_name_the_field_in_plain_words(
    sqlite_db: Database, fields: dict[str, Any], field: str, message: str
) -> None:
    data = {"name": "R", "action": "create_followup", "action_config": CALL, **fields}
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        rules.create_rule(s, data, now=NOW)
    assert caught.value.errors == {field: message}
    with sqlite_db.read_session() as s:
        assert rules.list_rules(s)[1] == 0


@pytest.mark.parametrize(
    ("trigger", "config_field", "message"),
    [
        ("tag_added", "trigger_config.tag", "Give the tag that starts this rule."),
        ("inbound_event", "trigger_config.event", "Give the name of the event that starts this rule, e.g. replied."),
        ("field_changed", "trigger_config.field", "Give the field whose change starts this rule."),
    ],
)
def test_a_rule_reports_its_name_trigger_and_action_problems_together(
    sqlite_db: Database, trigger: str, config_field: str, message: str
) -> None:
    """An empty name no longer hides the empty settings of the trigger and the action."""
    data = {
        "name": "",
        "trigger": trigger,
        "trigger_config": {"tag": "", "event": "", "field": ""},
        "action": "create_followup",
        "action_config": {"title": ""},
    }
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        rules.create_rule(s, data, now=NOW)
    assert caught.value.errors == {
        "name": "Give the rule a name.",
        config_field: message,
        "action_config.title": "Give the task a title.",
    }


def test_a_rule_with_bad_numbers_and_no_template_reports_everything(sqlite_db: Database) -> None:
    data = {
        "name": "R" * 201,
        "trigger": "followup_overdue",
        "trigger_config": {"days_overdue": -3},
        "delay_days": -1,
        "action": "start_campaign",
        "action_config": {},
        "stop_other_campaigns": True,
    }
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        rules.create_rule(s, data, now=NOW)
    assert caught.value.errors == {
        "name": "Too long: 201 characters, at most 200.",
        "delay_days": "Must be 0 or more.",
        "trigger_config.days_overdue": "Must be 0 or more.",
        "action_config.template_id": "Choose the template to start.",
        "stop_other_campaigns": "Only a rule started by an inbound event can stop the contact's other campaigns.",
    }


def test_a_rule_update_reports_every_problem_and_keeps_the_rule(sqlite_db: Database) -> None:
    rule_id = make_rule(sqlite_db, name="Welcome", trigger="tag_added", trigger_config={"tag": "trial"})
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        rules.update_rule(
            s, rule_id, {"name": "", "trigger_config": {"tag": ""}, "action_config": {"title": "Call {{ x"}}, now=NOW
        )
    assert caught.value.errors == {
        "name": "Give the rule a name.",
        "trigger_config.tag": "Give the tag that starts this rule.",
        "action_config.title": "The template is missing a closing `}}` after `x`.",
    }
    with sqlite_db.read_session() as s:
        rule = rules.get_rule(s, rule_id)
        assert (rule.name, rule.trigger_config) == ("Welcome", {"tag": "trial"})


def test_crud_list_and_history(sqlite_db: Database) -> None:
    db = sqlite_db
    rule_id = make_rule(db, name="Welcome", trigger="contact_created")
    with db.session() as s:
        rule = rules.update_rule(s, rule_id, {"name": "Welcome call", "delay_hours": 2}, now=NOW)
        assert (rule.name, rule.delay_hours, rule.trigger) == ("Welcome call", 2, "contact_created")
        assert rules.describe_rule(rule) == (
            "When a contact is created: create the follow-up task 'Call {{ contact.first_name }}'"
        )
    make_contact(db)
    run(db, NOW + DAY)
    with db.read_session() as s:
        [summary], total = rules.list_rules(s)
        assert (total, summary.rule.name, summary.applied, summary.pending) == (1, "Welcome call", 1, 0)
        [row], count = rules.rule_history(s, rule_id=rule_id)
        assert (count, row.contact_name, row.status, row.event_kind) == (1, "Ann Lee", "applied", "contact_created")
        assert row.detail == "follow-up created: Call Ann"
    with db.session() as s:
        rules.delete_rule(s, rule_id)
    with db.read_session() as s:
        assert rules.list_rules(s)[1] == 0 and rules.rule_history(s)[1] == 0
        assert s.scalar(select(func.count()).select_from(ScheduledFollowUp)) == 1  # what it did stays


def test_inbound_event_validation(sqlite_db: Database) -> None:
    ann = make_contact(sqlite_db)
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        rules.post_inbound_event(s, 999, "replied", {}, now=NOW)
    assert caught.value.errors == {"contact_id": "No contact with id 999."}
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        rules.post_inbound_event(s, ann, "has spaces", {}, now=NOW)
    assert caught.value.errors == {"name": "Use only letters, digits and _ . : - in an event name (no spaces)."}
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        rules.post_inbound_event(s, 999, "", {}, now=NOW)
    assert caught.value.errors == {
        "name": "Give the event a name, e.g. replied.",
        "contact_id": "No contact with id 999.",
    }
    with pytest.raises(ValidationError) as caught, sqlite_db.session() as s:
        rules.post_inbound_event(s, ann, "big", {"x": "y" * 30_000}, now=NOW)
    assert "payload" in caught.value.errors


def test_a_title_that_cannot_render_for_a_contact_is_skipped_and_others_go_on(db: Database) -> None:
    rule_id = make_rule(db, trigger="contact_created", action_config={"title": "Call {{ contact.company.upper() }}"})
    without = make_contact(db)
    with_company = make_contact(db, first_name="Bob", email="bob@example.com", company="Acme")
    run(db, NOW)
    assert followups_of(db, without) == []
    assert [f.title for f in followups_of(db, with_company)] == ["Call ACME"]
    statuses = {e.contact_id: (e.status, e.detail or "") for e in executions(db, rule_id)}
    assert statuses[without][0] == "skipped" and "could not apply: UndefinedError" in statuses[without][1]
    assert statuses[with_company][0] == "applied"
