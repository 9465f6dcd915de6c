"""Forms that say what is wrong as it is typed, and empty themselves after a save."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from automations.domain.db import Database
from automations.domain.models import AutomationCampaign, Contact
from tests.pages.conftest import texts

Open = Callable[[str | None], AppTest]


def _grid_key(at: AppTest, prefix: str) -> str:
    version = at.session_state[f"{prefix}_version"]
    return f"{prefix}_grid_{version}"


def _edit_cell(at: AppTest, prefix: str, row: int, column: str, value: object) -> AppTest:
    """Type `value` into a cell of the steps grid, as the grid reports an edit."""
    at.session_state[_grid_key(at, prefix)] = {
        "edited_rows": {row: {column: value}},
        "added_rows": [],
        "deleted_rows": [],
    }
    return at.run()


def test_a_negative_delay_is_kept_and_said_to_be_wrong(app_db: Database, open_page: Open) -> None:
    at = open_page("pages/new_campaign.py")
    at.button(key="new_add_email").click().run()
    _edit_cell(at, "new", 0, "delay_days", -1)
    assert not at.exception
    assert "Step 1, delay in days: -1 is negative: a delay is 0 or more." in [e.value for e in at.error]
    _edit_cell(at, "new", 0, "delay_days", 2)
    assert not at.error  # corrected: the problem goes as soon as the value is right


def test_a_step_panel_stays_open_after_its_first_field_is_typed(app_db: Database, open_page: Open) -> None:
    at = open_page("pages/new_campaign.py")
    at.button(key="new_add_email").click().run()
    panel = f"new_s{at.session_state['new_version']}_0_panel"
    assert at.session_state[panel] is True
    subject = next(t.key for t in at.text_input if t.key.endswith("_subject"))
    at.text_input(key=subject).input("Hello").run()
    assert at.session_state[panel] is True
    assert any(t.key == subject.replace("_subject", "_body") for t in at.text_area)


def test_after_save_and_activate_the_form_is_empty_again(app_db: Database, open_page: Open) -> None:
    with app_db.session() as s:
        ada = Contact(first_name="Ada", last_name="Lovelace", email="ada@example.com")
        s.add(ada)
        s.flush()
        contact_id = ada.id
    at = open_page("pages/new_campaign.py")
    at.text_input(key="new_name").input("Welcome Ada").run()
    at.text_input(key="new_contact_search").input("ada").run()
    at.selectbox(key="new_contact").set_value(contact_id).run()
    template_id = at.selectbox(key="new_template").options[0]
    at.selectbox(key="new_template").select_index(0).run()
    assert at.session_state["new_base"], template_id
    at.button(key="new_save").click().run()
    assert "1 campaign(s) created" in texts(at)
    # Everything the form showed is gone: name, contact, template and its steps.
    assert at.text_input(key="new_name").value == ""
    assert at.selectbox(key="new_contact").value is None
    assert at.selectbox(key="new_template").value is None
    assert at.session_state["new_base"] == []
    assert not [e for e in at.expander if e.label.startswith("Step ")]
    with app_db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(AutomationCampaign)) == 1


def test_new_filters_start_the_list_again_at_its_first_page(demo_db: Database, open_page: Open) -> None:
    at = open_page("pages/contacts.py")
    at.selectbox(key="ct_list_size").set_value(25).run()
    at.button(key="ct_list_next").click().run()
    assert at.session_state["ct_list_page"] == 2
    at.text_input(key="ct_search").input("a").run()
    assert at.session_state["ct_list_page"] == 1
    assert "· page 1 of" in texts(at)
