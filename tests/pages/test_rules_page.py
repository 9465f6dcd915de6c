"""The rules page through AppTest: create, edit, disable, delete, and the history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import streamlit as st
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from automations.domain.db import Database
from automations.domain.models import (
    AutomationCampaign,
    AutomationTemplate,
    FollowUpRule,
)
from automations.domain.timeutil import utcnow
from automations.runner.rules import process_rules
from automations.services import contacts, rules
from tests.pages.conftest import click_row, texts

PAGE = "pages/rules.py"


def test_create_a_rule_that_starts_onboarding_and_see_its_history(
    app_db: Database, open_page: Callable[[str], AppTest]
) -> None:
    at = open_page(PAGE)
    assert "No rules yet" in texts(at)

    at.text_input(key="new_name").set_value("Trial onboarding")
    at.selectbox(key="new_trigger").set_value("tag_added")
    at.run()
    at.text_input(key="new_tag").set_value("trial")
    at.text_area(key="new_conditions").set_value("opted in: email\nplan = pro")
    at.radio(key="new_action").set_value("start_campaign")
    at.run()
    with app_db.read_session() as s:
        onboarding = s.scalar(select(AutomationTemplate.id).where(AutomationTemplate.name == "Customer Onboarding"))
    at.selectbox(key="new_template").set_value(onboarding)
    at.button(key="new_save").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]

    with app_db.read_session() as s:
        [rule] = s.scalars(select(FollowUpRule)).all()
        assert (rule.name, rule.trigger, rule.trigger_config, rule.action) == (
            "Trial onboarding",
            "tag_added",
            {"tag": "trial"},
            "start_campaign",
        )
        assert rule.conditions == [
            {"kind": "opted_in", "channel": "email"},
            {"kind": "field_equals", "field": "plan", "value": "pro"},
        ]
        assert rule.action_config == {"template_id": onboarding}
    table = at.dataframe[0].value
    assert list(table["rule"]) == ["Trial onboarding"]
    assert list(table["when"]) == ["When tag 'trial' is added: start the campaign 'Customer Onboarding'"]

    # A contact gets the tag; the runner applies the rule; the history shows it.
    now = utcnow() + timedelta(seconds=1)
    with app_db.session() as s:
        contacts.create_contact(
            s,
            {
                "first_name": "Ann",
                "last_name": "Lee",
                "email": "ann@example.com",
                "tags": ["trial"],
                "custom_fields": {"plan": "Pro"},
            },
            now=now,
        )
    process_rules(app_db, now=now, runner_id="page-test")
    with app_db.read_session() as s:
        assert s.scalar(select(AutomationCampaign.template_id)) == onboarding
    st.cache_data.clear()  # the page's reads are cached for 30 s; a write elsewhere does not clear them
    at.run()
    history = at.dataframe[-1].value
    assert list(history["contact"]) == ["Ann Lee"]
    assert "applied" in list(history["status"])[0]
    assert "campaign started" in list(history["detail"])[0]


def test_invalid_rule_shows_the_problem_and_saves_nothing(
    app_db: Database, open_page: Callable[[str], AppTest]
) -> None:
    at = open_page(PAGE)
    at.text_input(key="new_name").set_value("Reply")
    at.selectbox(key="new_trigger").set_value("inbound_event")
    at.run()
    at.text_area(key="new_conditions").set_value("this is not a condition")
    at.button(key="new_save").click()
    at.run()
    assert "Line 1" in texts(at)
    at.text_area(key="new_conditions").set_value("")
    at.button(key="new_save").click()
    at.run()
    assert "Give the name of the event that starts this rule" in texts(at)
    with app_db.read_session() as s:
        assert s.scalars(select(FollowUpRule)).all() == []


def test_edit_disable_and_delete_a_rule(app_db: Database, open_page: Callable[[str], AppTest]) -> None:
    with app_db.session() as s:
        rule_id = rules.create_rule(
            s,
            {
                "name": "Call after campaign",
                "trigger": "campaign_completed",
                "delay_days": 2,
                "action": "create_followup",
                "action_config": {"title": "Call {{ contact.first_name }}"},
            },
        ).id
    at = open_page(PAGE)
    summary = "When a campaign completes: create the follow-up task 'Call {{ contact.first_name }}'"
    assert summary in str(at.dataframe[0].value["when"][0])
    click_row(at, "rules_list", 0)
    assert summary in texts(at)

    key = f"rule{rule_id}"
    at.text_input(key=f"{key}_name").set_value("Call two days after")
    at.number_input(key=f"{key}_hours").set_value(3)
    at.radio(key=f"{key}_reenrol").set_value("every")
    at.run()
    at.number_input(key=f"{key}_reenrol_days").set_value(14)
    at.button(key=f"{key}_save").click()
    at.run()
    assert not at.error, [e.value for e in at.error]
    with app_db.read_session() as s:
        rule = s.get(FollowUpRule, rule_id)
        assert (rule.name, rule.delay_days, rule.delay_hours, rule.reenroll_after_days) == (
            "Call two days after",
            2,
            3,
            14,
        )

    at.button(key=f"toggle_{rule_id}").click()
    at.run()
    with app_db.read_session() as s:
        assert s.get(FollowUpRule, rule_id).is_active is False
    assert "disabled" in list(at.dataframe[0].value["active"])[0]

    at.checkbox(key=f"sure_{rule_id}").check()
    at.run()
    at.button(key=f"delete_{rule_id}").click()
    at.run()
    with app_db.read_session() as s:
        assert s.get(FollowUpRule, rule_id) is None
    assert "No rules yet" in texts(at)


def test_a_negative_delay_is_refused_visibly_not_changed(app_db: Database, open_page: Callable[[str], AppTest]) -> None:
    at = open_page(PAGE)
    at.text_input(key="new_name").set_value("Too early")
    at.text_input(key="new_tag").set_value("trial")
    at.radio(key="new_action").set_value("create_followup")
    at.run()
    at.text_input(key="new_title").set_value("Call")
    at.number_input(key="new_days").set_value(-3)
    at.run()
    assert at.number_input(key="new_days").value == -3  # kept as typed
    assert any("-3 is below 0" in e.value for e in at.error)
    at.button(key="new_save").click()
    at.run()
    with app_db.read_session() as s:
        assert s.scalars(select(FollowUpRule)).all() == []
