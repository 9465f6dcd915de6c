"""Every page renders on an empty and on a demo database, and its main flows work."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from automations.domain.db import Database
from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    AutomationTemplate,
    Contact,
    ScheduledFollowUp,
)
from automations.domain.timeutil import utcnow
from tests.pages.conftest import click_row, row_of, texts

PAGES = {
    "pages/overview.py": "Overview",
    "pages/campaigns.py": "Campaigns",
    "pages/new_campaign.py": "New Campaign",
    "pages/templates.py": "Templates",
    "pages/followups.py": "Follow-ups",
    "pages/contacts.py": "Contacts",
    "pages/settings.py": "Settings",
}
Open = Callable[[str | None], AppTest]


def _count(db: Database, model: type, *where: object) -> int:
    with db.read_session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_on_an_empty_database(app_db: Database, open_page: Open, page: str) -> None:
    at = open_page(page)
    assert PAGES[page] in at.title[0].value


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_on_demo_data(demo_db: Database, open_page: Open, page: str) -> None:
    at = open_page(page)
    assert PAGES[page] in at.title[0].value
    assert not at.error, [e.value for e in at.error]


def test_empty_states_tell_the_user_what_to_do(app_db: Database, open_page: Open) -> None:
    assert "No runner has ever ticked" in texts(open_page(None))
    assert "Create one on **New Campaign**" in texts(open_page("pages/campaigns.py"))
    assert "No contacts yet" in texts(open_page("pages/contacts.py"))
    assert "Nothing to follow up" in texts(open_page("pages/followups.py"))


def test_overview_shows_the_figures_of_the_demo_data(demo_db: Database, open_page: Open) -> None:
    at = open_page(None)
    metrics = {m.label: m.value for m in at.metric}
    active = _count(demo_db, AutomationCampaign, AutomationCampaign.status == "active")
    assert metrics["Active campaigns"] == f"{active:,}"
    assert metrics["Success rate, 7 days"].endswith("%")
    assert len(at.dataframe) >= 2  # next steps and latest executions


def _contact(db: Database) -> tuple[int, str]:
    with db.session() as s:
        contact = Contact(first_name="Ada", last_name="Lovelace", email="ada@example.com", company="Engines")
        s.add(contact)
        s.flush()
        return contact.id, contact.full_name


def _pick_contact(at: AppTest, text: str, contact_id: int) -> None:
    at.text_input(key="new_contact_search").input(text).run()
    at.selectbox(key="new_contact").set_value(contact_id).run()


def _first_template_id(db: Database, offset: int = 0) -> int:
    with db.read_session() as s:
        return s.scalars(
            select(AutomationTemplate.id)
            .order_by(AutomationTemplate.is_system.desc(), AutomationTemplate.name)
            .offset(offset)
        ).first()


def test_new_campaign_from_a_template(app_db: Database, open_page: Open) -> None:
    contact_id, _ = _contact(app_db)
    at = open_page("pages/new_campaign.py")
    at.text_input(key="new_name").input("Welcome Ada").run()
    _pick_contact(at, "ada", contact_id)
    template_id = _first_template_id(app_db)
    at.selectbox(key="new_template").set_value(template_id).run()
    with app_db.read_session() as s:
        template = s.get(AutomationTemplate, template_id)
        step_count = len(template.steps)
    # The preview lists every step with its time and the content for Ada.
    preview = at.dataframe[-1].value
    assert len(preview) == step_count
    at.button(key="new_save").click().run()
    assert not at.exception
    assert "campaign(s) created" in texts(at)
    with app_db.read_session() as s:
        campaign = s.scalars(select(AutomationCampaign)).one()
        assert (campaign.name, campaign.contact_id, campaign.template_id) == ("Welcome Ada", contact_id, template_id)
        assert len(campaign.steps) == step_count


def test_new_campaign_from_scratch_with_a_validation_error_first(app_db: Database, open_page: Open) -> None:
    contact_id, _ = _contact(app_db)
    at = open_page("pages/new_campaign.py")
    at.text_input(key="new_name").input("Hand made").run()
    _pick_contact(at, "lovelace", contact_id)
    at.button(key="new_add_email").click().run()
    at.button(key="new_add_task").click().run()
    subject_keys = sorted(t.key for t in at.text_input if t.key.startswith("new_s") and t.key.endswith("_subject"))
    assert len(subject_keys) == 2
    email_subject, task_title = subject_keys
    at.text_input(key=email_subject).input("Hello {{ contact.first_name }}").run()
    at.text_input(key=task_title).input("Call Ada").run()
    # The email has no body yet: saving shows the problem next to that field.
    at.button(key="new_save").click().run()
    assert "Write the text of the email." in [e.value for e in at.error]
    assert _count(app_db, AutomationCampaign) == 0
    at.text_area(key=email_subject.replace("_subject", "_body")).input("Hi {{ contact.first_name }}!").run()
    assert "Hello Ada" in str(at.dataframe[-1].value)  # personalised preview
    at.button(key="new_save").click().run()
    assert not at.error, [e.value for e in at.error]
    with app_db.read_session() as s:
        steps = s.scalars(select(AutomationStep).order_by(AutomationStep.position)).all()
        assert [(st.message_type, st.subject) for st in steps] == [
            ("email", "Hello {{ contact.first_name }}"),
            ("task", "Call Ada"),
        ]
        assert steps[1].delay_days == 1


def test_template_applied_to_everyone_with_a_tag(app_db: Database, open_page: Open) -> None:
    from automations.services.contacts import create_contact

    with app_db.session() as s:
        for name in ("Ann", "Bob", "Cy"):
            create_contact(s, {"first_name": name, "tags": ["vip"] if name != "Cy" else []})
    at = open_page("pages/new_campaign.py")
    at.text_input(key="new_name").input("VIP care").run()
    at.radio(key="new_mode").set_value("Everyone with a tag").run()
    at.selectbox(key="new_tag").select("vip").run()
    at.selectbox(key="new_template").set_value(_first_template_id(app_db, 1)).run()
    at.button(key="new_save").click().run()
    assert "2 campaign(s) created" in texts(at)
    assert _count(app_db, AutomationCampaign) == 2


def _open_campaign(at: AppTest, campaign_id: int) -> None:
    click_row(at, "camp_list", row_of(at, campaign_id))
    assert at.session_state["camp_open"] == campaign_id


def test_campaign_pause_resume_cancel_delete(demo_db: Database, open_page: Open) -> None:
    with demo_db.read_session() as s:
        campaign_id, contact_id = s.execute(
            select(AutomationCampaign.id, AutomationCampaign.contact_id)
            .where(AutomationCampaign.status == "active")
            .limit(1)
        ).one()
    at = open_page("pages/campaigns.py")
    at.session_state["camp_contact"] = contact_id  # as "See this contact's campaigns" does
    at.run()
    assert campaign_id in set(at.dataframe[0].value["id"])
    _open_campaign(at, campaign_id)
    assert at.dataframe[-1].value.shape[0] >= 1  # the steps of the campaign

    def status() -> str | None:
        with demo_db.read_session() as s:
            c = s.get(AutomationCampaign, campaign_id)
            return c.status if c else None

    at.button(key="camp_pause").click().run()
    assert status() == "paused"
    assert "Campaign paused" in texts(at)
    at.button(key="camp_resume").click().run()
    assert status() == "active"
    at.button(key="camp_cancel").click().run()
    assert status() == "active"  # nothing happens before the confirmation
    at.button(key="camp_confirm_yes").click().run()
    assert status() == "canceled"
    at.button(key="camp_delete").click().run()
    assert "deleted (the contact stays)" in texts(at)
    at.button(key="camp_confirm_yes").click().run()
    assert status() is None


def test_campaign_filters_and_duplicate(demo_db: Database, open_page: Open) -> None:
    at = open_page("pages/campaigns.py")
    at.selectbox(key="camp_status").select("completed").run()
    shown = at.dataframe[0].value
    assert set(shown["status"]) == {"completed"}
    first = int(shown["id"].iloc[0])
    before = _count(demo_db, AutomationCampaign)
    _open_campaign(at, first)
    at.button(key="camp_duplicate").click().run()
    assert _count(demo_db, AutomationCampaign) == before + 1


def test_followup_marked_done_and_snoozed_from_the_list(demo_db: Database, open_page: Open) -> None:
    at = open_page("pages/followups.py")
    click_row(at, "fu_list", 0)
    done_button = next(b for b in at.button if b.key and b.key.startswith("fu_done_"))
    followup_id = int(done_button.key.rsplit("_", 1)[1])
    done_button.click().run()
    with demo_db.read_session() as s:
        assert s.get(ScheduledFollowUp, followup_id).status == "done"
    assert "Follow-up done" in texts(at)
    click_row(at, "fu_list", 1)
    snooze = next(b for b in at.button if b.key and b.key.startswith("fu_snooze_"))
    snoozed_id = int(snooze.key.rsplit("_", 1)[1])
    with demo_db.read_session() as s:
        before = s.get(ScheduledFollowUp, snoozed_id).due_at
    snooze.click().run()
    with demo_db.read_session() as s:
        after = s.get(ScheduledFollowUp, snoozed_id).due_at
    assert after > before and "Snoozed for 1 day(s)" in texts(at)


def test_every_overdue_followup_is_reachable_page_by_page(demo_db: Database, open_page: Open) -> None:
    from automations.services.followups import create_followup

    with demo_db.session() as s:
        contact_id = s.scalar(select(Contact.id).limit(1))
        for n in range(60):
            create_followup(
                s, {"contact_id": contact_id, "title": f"Call back {n}", "due_at": utcnow() - timedelta(hours=n + 1)}
            )
    overdue = _count(
        demo_db, ScheduledFollowUp, ScheduledFollowUp.status == "pending", ScheduledFollowUp.due_at < utcnow()
    )
    at = open_page("pages/followups.py")
    at.selectbox(key="fu_list_size").set_value(25).run()
    seen = len(at.dataframe[0].value)
    while not at.button(key="fu_list_next").disabled:
        at.button(key="fu_list_next").click().run()
        seen += len(at.dataframe[0].value)
    assert seen == overdue
    assert f"of {overdue:,}" in texts(at)
    download = at.get("download_button")
    assert download, "each table page has its CSV download"


def test_contact_added_and_refused_deletion_with_active_campaigns(demo_db: Database, open_page: Open) -> None:
    at = open_page("pages/contacts.py")
    form_inputs = [t for t in at.text_input if t.label == "First name"]
    add_first = form_inputs[-1]
    add_first.input("Zed")
    [t for t in at.text_input if t.label == "Email"][-1].input("not-an-email")
    submit = [b for b in at.button if b.label == "Save contact"][-1]
    submit.click().run()
    assert any("Not a valid email address" in e.value for e in at.error)
    [t for t in at.text_input if t.label == "Email"][-1].input("zed@example.com")
    [b for b in at.button if b.label == "Save contact"][-1].click().run()
    assert _count(demo_db, Contact, Contact.email == "zed@example.com") == 1

    with demo_db.read_session() as s:
        busy = s.scalar(select(AutomationCampaign.contact_id).where(AutomationCampaign.status == "active").limit(1))
        email = s.get(Contact, busy).email
    at.text_input(key="ct_search").input(email).run()
    click_row(at, "ct_list", row_of(at, busy, "#"))
    at.button(key="ct_delete").click().run()
    at.button(key="ct_delete_yes").click().run()
    assert any("active or paused campaign" in e.value for e in at.error)
    assert _count(demo_db, Contact, Contact.id == busy) == 1
    at.checkbox(key="ct_cancel_campaigns").check().run()
    at.button(key="ct_delete").click().run()
    at.button(key="ct_delete_yes").click().run()
    assert _count(demo_db, Contact, Contact.id == busy) == 0


def test_custom_template_created_cloned_and_system_template_read_only(app_db: Database, open_page: Open) -> None:
    at = open_page("pages/templates.py")
    at.text_input(key="tpl_new_name").input("My sequence").run()
    at.button(key="tpl_new_add_sms").click().run()
    body_key = next(t.key for t in at.text_area if t.key.startswith("tpl_new_s") and t.key.endswith("_body"))
    at.text_area(key=body_key).input("Hi {{ contact.first_name }}").run()
    at.button(key="tpl_new_save").click().run()
    assert not at.error, [e.value for e in at.error]
    assert _count(app_db, AutomationTemplate, AutomationTemplate.name == "My sequence") == 1
    system = _first_template_id(app_db)
    with app_db.read_session() as s:
        system_name = s.get(AutomationTemplate, system).name
    click_row(at, "tpl_list", row_of(at, system_name, "name"))
    assert "read-only" in texts(at)
    assert "tpl_edit" not in [b.key for b in at.button]
    at.button(key="tpl_clone").click().run()
    assert not at.exception, at.exception
    assert _count(app_db, AutomationTemplate, AutomationTemplate.name.like("%(copy)")) == 1
    # The copy is in the list and open at once, editable.
    assert f"{system_name} (copy)" in set(at.dataframe[0].value["name"])
    assert f"{system_name} (copy)" in [h.value for h in at.subheader]
    assert "tpl_edit" in [b.key for b in at.button]


def test_login_gate_asks_for_the_password(app_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from automations.domain.config import get_settings
    from tests.pages.conftest import ROOT

    monkeypatch.setenv("AUTOMATIONS_UI_PASSWORD", "s3cret")
    get_settings.cache_clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    assert not at.metric and "Overview" not in texts(at)
    at.text_input[0].input("wrong")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Wrong password. Wait 1 s before the next try."]
    at.text_input[0].input("wrong again")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Too many wrong passwords: wait 1 s before the next try."]
    time.sleep(1.1)
    at.text_input[0].input("still wrong")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Wrong password. Wait 2 s before the next try."]  # doubled
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    assert "wait" in at.error[0].value  # even the right password waits its turn
    time.sleep(2.1)
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    assert any("Overview" in t.value for t in at.title)


def test_a_sign_in_expires_after_the_session_hours(app_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from automations.domain.config import get_settings
    from tests.pages.conftest import ROOT

    monkeypatch.setenv("AUTOMATIONS_UI_PASSWORD", "s3cret")
    monkeypatch.setenv("AUTOMATIONS_UI_SESSION_HOURS", "0.0001")  # a third of a second
    get_settings.cache_clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    assert any("Overview" in t.value for t in at.title)
    time.sleep(0.5)
    at.run()
    assert [t.label for t in at.text_input] == ["Password"]
    assert "Your session expired: sign in again." in [i.value for i in at.info]


@pytest.mark.parametrize("page", ["contacts", "campaigns", "calendar", "statistics", "rules", "settings"])
def test_a_page_opened_directly_still_asks_for_the_password(
    app_db: Database, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    from automations.domain.config import get_settings
    from tests.pages.conftest import ROOT

    _contact(app_db)
    monkeypatch.setenv("AUTOMATIONS_UI_PASSWORD", "s3cret")
    get_settings.cache_clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.switch_page(f"pages/{page}.py").run()
    assert not at.dataframe and "Lovelace" not in texts(at)
    assert [t.label for t in at.text_input] == ["Password"]


def test_campaign_pending_steps_edited_and_saved_as_template(demo_db: Database, open_page: Open) -> None:
    with demo_db.read_session() as s:
        campaign_id, contact_id = s.execute(
            select(AutomationCampaign.id, AutomationCampaign.contact_id)
            .where(AutomationCampaign.status == "active")
            .limit(1)
        ).one()
        pending = _count(
            demo_db, AutomationStep, AutomationStep.campaign_id == campaign_id, AutomationStep.status == "pending"
        )
    at = open_page("pages/campaigns.py")
    at.session_state["camp_contact"] = contact_id
    at.run()
    _open_campaign(at, campaign_id)
    at.button(key="camp_edit").click().run()
    assert "Edit pending steps" in texts(at)
    at.button(key="edit_add_task").click().run()
    title_key = sorted(t.key for t in at.text_input if t.key.startswith("edit_s") and t.key.endswith("_subject"))[-1]
    at.text_input(key=title_key).input("Extra call").run()
    at.button(key="camp_edit_save").click().run()
    assert not at.error, [e.value for e in at.error]
    assert (
        _count(demo_db, AutomationStep, AutomationStep.campaign_id == campaign_id, AutomationStep.status == "pending")
        == pending + 1
    )
    at.button(key="camp_as_template").click().run()
    at.button[[b.label for b in at.button].index("Save template")].click().run()
    assert _count(demo_db, AutomationTemplate, AutomationTemplate.is_system.is_(False)) == 1
