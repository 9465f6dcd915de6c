"""The template editor's engagement switches: stop on reply and tracking, saved
with the template, shown in its detail and copied to the campaigns made from it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from automations.domain.db import Database
from automations.domain.models import AutomationTemplate
from automations.services.campaigns import create_campaign
from automations.services.contacts import create_contact
from tests.pages.conftest import texts

Open = Callable[[str | None], AppTest]


def _step_key(at: AppTest, prefix: str, index: int, field: str) -> str:
    return f"{prefix}_{at.session_state[f'{prefix}_base'][index]['uid']}_{field}"


def test_a_template_that_neither_stops_on_reply_nor_tracks(app_db: Database, open_page: Open) -> None:
    at = open_page("pages/templates.py")
    assert at.checkbox(key="tpl_new_stop_on_reply").value is True  # on by default
    assert at.checkbox(key="tpl_new_tracking").value is True
    at.text_input(key="tpl_new_name").input("Receipts").run()
    at.button(key="tpl_new_add_sms").click().run()
    at.text_area(key=_step_key(at, "tpl_new", 0, "body")).input("Your order is on its way").run()
    at.checkbox(key="tpl_new_stop_on_reply").uncheck().run()
    at.checkbox(key="tpl_new_tracking").uncheck().run()
    at.button(key="tpl_new_save").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with app_db.session() as s:
        template = s.scalars(select(AutomationTemplate).where(AutomationTemplate.name == "Receipts")).one()
        assert (template.stop_on_reply, template.tracking) == (False, False)
        contact = create_contact(s, {"first_name": "Ada"})
        campaign = create_campaign(s, {"name": "R", "contact_id": contact.id, "template_id": template.id})
        assert (campaign.stop_on_reply, campaign.tracking) == (False, False)
    assert "replies do not stop the campaign · not tracked" in texts(at)
    at.button(key="tpl_edit").click().run()
    assert at.checkbox(key="tpl_edit_stop_on_reply").value is False
    assert at.checkbox(key="tpl_edit_tracking").value is False
