"""The rules page's engagement triggers through AppTest: each is offered with a label a
person reads, and "Link clicked" takes the text the link must contain."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from automations.domain.db import Database
from automations.domain.models import FollowUpRule
from tests.pages.conftest import click_row, texts

PAGE = "pages/rules.py"
ENGAGEMENT_LABELS = {
    "email_opened": "Email opened",
    "link_clicked": "Link clicked",
    "replied": "Replied",
    "auto_replied": "Auto-replied (out of office)",
    "bounced": "Email bounced",
    "unsubscribed": "Unsubscribed",
}


def test_every_engagement_trigger_is_offered_with_its_label(
    app_db: Database, open_page: Callable[[str], AppTest]
) -> None:
    at = open_page(PAGE)
    options = at.selectbox(key="new_trigger").options
    assert set(ENGAGEMENT_LABELS.values()) <= set(options)
    for trigger, label in ENGAGEMENT_LABELS.items():
        at.selectbox(key="new_trigger").set_value(trigger)
        at.run()
        assert not at.exception, at.exception
        assert at.selectbox(key="new_trigger").value == trigger
        assert at.selectbox(key="new_trigger").format_func(trigger) == label
        # Only "Link clicked" has a setting.
        assert bool([w for w in at.text_input if w.key == "new_url_contains"]) == (trigger == "link_clicked")


def test_a_link_clicked_rule_keeps_the_text_the_link_must_contain(
    app_db: Database, open_page: Callable[[str], AppTest]
) -> None:
    at = open_page(PAGE)
    at.text_input(key="new_name").set_value("Pricing interest")
    at.selectbox(key="new_trigger").set_value("link_clicked")
    at.radio(key="new_action").set_value("create_followup")
    at.run()
    assert at.text_input(key="new_url_contains").label == "Link contains"
    at.text_input(key="new_url_contains").set_value("  pricing ")
    at.text_input(key="new_title").set_value("Call {{ contact.first_name }} about pricing")
    at.button(key="new_save").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    with app_db.read_session() as s:
        [rule] = s.scalars(select(FollowUpRule)).all()
        assert (rule.trigger, rule.trigger_config) == ("link_clicked", {"url_contains": "pricing"})
        rule_id = rule.id
    table = at.dataframe[0].value
    assert "When a link containing 'pricing' is clicked" in str(table["when"][0])

    # Opened for editing, the form shows the stored text; emptied, the rule is for any link.
    click_row(at, "rules_list", 0)
    key = f"rule{rule_id}"
    assert at.text_input(key=f"{key}_url_contains").value == "pricing"
    at.text_input(key=f"{key}_url_contains").set_value("")
    at.button(key=f"{key}_save").click()
    at.run()
    assert not at.error, [e.value for e in at.error]
    with app_db.read_session() as s:
        assert s.get(FollowUpRule, rule_id).trigger_config == {"url_contains": None}  # type: ignore[union-attr]
    assert "When a link is clicked" in texts(at)
