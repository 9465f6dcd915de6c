"""The schedule settings of New Campaign and the template editor: a send window in
the contact's clock, holidays, business days and set send times, as a user sets
them, sees them planned and finds them saved."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Column

from automations.domain.config import get_settings
from automations.domain.db import Database
from automations.domain.models import AutomationCampaign, AutomationStep, AutomationTemplate, Contact
from automations.services.templates import create_template
from tests.pages.conftest import texts

Open = Callable[[str | None], AppTest]

NEW_YORK = ZoneInfo("America/New_York")
WINDOW_NOTE = "outside the send window (Mon, Tue, Wed, Thu, Fri 09:00–17:00)"
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


@pytest.fixture
def team_in_paris(monkeypatch: pytest.MonkeyPatch) -> None:
    """The team's clock is not the contact's: the preview shows both."""
    monkeypatch.setenv("AUTOMATIONS_TIMEZONE", "Europe/Paris")
    get_settings.cache_clear()


def _contact_in_new_york(db: Database, first_name: str = "Ada") -> int:
    with db.session() as s:
        contact = Contact(
            first_name=first_name,
            last_name="Lovelace",
            email=f"{first_name.lower()}@example.com",
            timezone="America/New_York",
        )
        s.add(contact)
        s.flush()
        return contact.id


def _sequence(db: Database, schedule: dict[str, object] | None = None) -> int:
    """A custom template: an email at once, another 8 hours later, a third a day after."""
    steps = [
        {"name": "Hello", "message_type": "email", "subject": "Hi", "body": "Hello {{ contact.first_name }}"},
        {"name": "Later", "message_type": "email", "delay_hours": 8, "subject": "Again", "body": "Still there?"},
        {"name": "Next day", "message_type": "email", "delay_days": 1, "subject": "Last", "body": "Bye"},
    ]
    with db.session() as s:
        template = create_template(s, {"name": "Three emails", "steps": steps, "schedule": schedule})
        return template.id


def _count(db: Database, model: type) -> int:
    with db.read_session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def _builder(at: AppTest, contact_id: int, template_id: int, name: str = "Window test") -> None:
    at.text_input(key="new_name").input(name).run()
    at.text_input(key="new_contact_search").input("lovelace").run()
    at.selectbox(key="new_contact").set_value(contact_id).run()
    at.selectbox(key="new_template").set_value(template_id).run()


def _start_on_saturday(at: AppTest) -> None:
    """Saturday 2030-01-05 12:00 in Paris: 06:00 in New York, before any window opens."""
    at.toggle(key="new_later").set_value(True).run()
    at.date_input(key="new_start_date").set_value(date(2030, 1, 5)).run()
    at.time_input(key="new_start_time").set_value(time(12, 0)).run()


def _preview(at: AppTest) -> dict[str, list[str]]:
    frame = at.dataframe[-1].value
    return {str(column): [str(v) for v in frame[column]] for column in frame.columns}


def _step_key(at: AppTest, prefix: str, index: int, field: str) -> str:
    return f"{prefix}_{at.session_state[f'{prefix}_base'][index]['uid']}_{field}"


def _column_with(at: AppTest, key: str) -> Column:
    """The column of the page that holds the widget `key` (what is shown next to it)."""
    for column in at.columns:
        if any(widget.key == key for kind in ("time_input", "multiselect") for widget in getattr(column, kind)):
            return column
    raise AssertionError(f"no column holds {key}")


def test_a_weekday_window_moves_the_steps_and_the_preview_says_why_in_both_clocks(
    app_db: Database, open_page: Open, team_in_paris: None
) -> None:
    contact_id = _contact_in_new_york(app_db)
    template_id = _sequence(app_db)
    at = open_page("pages/new_campaign.py")
    _builder(at, contact_id, template_id)
    _start_on_saturday(at)
    at.toggle(key="new_sched_window").set_value(True).run()
    assert at.multiselect(key="new_sched_days").value == WEEKDAYS
    assert (at.time_input(key="new_sched_start").value, at.time_input(key="new_sched_end").value) == (
        time(9, 0),
        time(17, 0),
    )
    assert not at.exception

    preview = _preview(at)
    assert preview["contact's time (America/New_York)"] == [
        "Mon 2030-01-07 09:00",  # Saturday morning: the window's next opening
        "Tue 2030-01-08 09:00",  # 8 hours later is 17:00, when it closes
        "Wed 2030-01-09 09:00",  # a day later: inside, where it was due
    ]
    assert preview["team time (Europe/Paris)"] == [
        "Mon 2030-01-07 15:00",
        "Tue 2030-01-08 15:00",
        "Wed 2030-01-09 15:00",
    ]
    assert preview["why it moved"] == [WINDOW_NOTE, WINDOW_NOTE, ""]
    assert "Times for Ada Lovelace: in their time zone (America/New_York) and in the team's (Europe/Paris)" in texts(at)

    at.button(key="new_save").click().run()
    assert "1 campaign(s) created" in texts(at)
    with app_db.read_session() as s:
        campaign = s.scalars(select(AutomationCampaign)).one()
        assert (campaign.schedule or {})["send_window"] == {"days": WEEKDAYS, "start": "09:00", "end": "17:00"}
        local = [step.scheduled_at.replace(tzinfo=ZoneInfo("UTC")).astimezone(NEW_YORK) for step in campaign.steps]
        notes = [step.schedule_note for step in campaign.steps]
    assert all(moment.weekday() < 5 and time(9, 0) <= moment.time() < time(17, 0) for moment in local), local
    assert notes == [WINDOW_NOTE, WINDOW_NOTE, None]


def test_with_several_contacts_the_preview_is_the_first_ones_and_says_so(
    app_db: Database, open_page: Open, team_in_paris: None
) -> None:
    first, second = _contact_in_new_york(app_db, "Ada"), _contact_in_new_york(app_db, "Ben")
    template_id = _sequence(app_db)
    at = open_page("pages/new_campaign.py")
    at.radio(key="new_mode").set_value("Several contacts").run()
    at.text_input(key="new_contact_search").input("lovelace").run()
    at.multiselect(key="new_contacts").set_value([first, second]).run()
    at.selectbox(key="new_template").set_value(template_id).run()
    shown = texts(at)
    assert "Times for Ada Lovelace, the first of the 2 contacts chosen" in shown
    assert "each other contact's steps are planned in their own time zone" in shown


def test_a_template_keeps_its_schedule_and_a_campaign_made_from_it_copies_it(app_db: Database, open_page: Open) -> None:
    at = open_page("pages/templates.py")
    at.text_input(key="tpl_new_name").input("Office hours").run()
    at.button(key="tpl_new_add_sms").click().run()
    at.text_area(key=_step_key(at, "tpl_new", 0, "body")).input("We are open, {{ contact.first_name }}").run()
    at.selectbox(key="tpl_new_sched_tz").set_value("America/Chicago").run()
    at.toggle(key="tpl_new_sched_window").set_value(True).run()
    at.multiselect(key="tpl_new_sched_days").set_value(["mon", "tue", "wed", "thu", "fri", "sat"]).run()
    at.time_input(key="tpl_new_sched_start").set_value(time(10, 0)).run()
    at.time_input(key="tpl_new_sched_end").set_value(time(16, 30)).run()
    at.selectbox(key="tpl_new_sched_holidays").set_value("US").run()
    at.selectbox(key="tpl_new_sched_subdiv").set_value("NY").run()
    at.checkbox(key="tpl_new_sched_exempt").check().run()
    at.button(key="tpl_new_save").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    expected = {
        "timezone": "America/Chicago",
        "send_window": {"days": ["mon", "tue", "wed", "thu", "fri", "sat"], "start": "10:00", "end": "16:30"},
        "holidays": "US-NY",
        "frequency_cap_exempt": True,
    }
    with app_db.read_session() as s:
        template = s.scalars(select(AutomationTemplate).where(AutomationTemplate.name == "Office hours")).one()
        assert template.schedule == expected
        template_id = template.id
    # The template opens under the list with its schedule in one line.
    assert "America/Chicago · Mon–Sat 10:00–16:30 · holidays US-NY · exempt from frequency caps" in texts(at)
    # Editing it starts from what it holds.
    at.button(key="tpl_edit").click().run()
    assert at.selectbox(key="tpl_edit_sched_tz").value == "America/Chicago"
    assert at.time_input(key="tpl_edit_sched_end").value == time(16, 30)
    assert at.selectbox(key="tpl_edit_sched_subdiv").value == "NY"

    contact_id = _contact_in_new_york(app_db)
    at.switch_page("pages/new_campaign.py").run()
    _builder(at, contact_id, template_id, name="From office hours")
    # The builder starts from the template's schedule...
    assert at.selectbox(key="new_sched_tz").value == "America/Chicago"
    assert at.toggle(key="new_sched_window").value is True
    assert at.multiselect(key="new_sched_days").value == ["mon", "tue", "wed", "thu", "fri", "sat"]
    assert at.checkbox(key="new_sched_exempt").value is True
    assert "the send window and send times are read in America/Chicago" in texts(at)
    at.button(key="new_save").click().run()
    assert "1 campaign(s) created" in texts(at)
    with app_db.read_session() as s:
        assert s.scalars(select(AutomationCampaign)).one().schedule == expected
    # ... and the form forgets it after the save.
    assert at.toggle(key="new_sched_window").value is False
    assert at.selectbox(key="new_sched_tz").value == "contact"


def test_a_window_that_closes_before_it_opens_is_refused_next_to_its_end(app_db: Database, open_page: Open) -> None:
    contact_id, template_id = _contact_in_new_york(app_db), _sequence(app_db)
    at = open_page("pages/new_campaign.py")
    _builder(at, contact_id, template_id)
    at.toggle(key="new_sched_window").set_value(True).run()
    at.time_input(key="new_sched_start").set_value(time(17, 0)).run()
    at.time_input(key="new_sched_end").set_value(time(9, 0)).run()
    problem = "Must be after the start (17:00): a send window opens and closes the same day."
    # Said as soon as it is set, under the end time, and the preview waits for it.
    assert [e.value for e in _column_with(at, "new_sched_end").error] == [problem]
    assert "The preview appears once the send window is right." in texts(at)
    at.button(key="new_save").click().run()
    assert [e.value for e in at.error] == [problem]  # once, where it belongs
    assert _count(app_db, AutomationCampaign) == 0

    at.time_input(key="new_sched_end").set_value(time(18, 0)).run()
    assert not at.error
    at.button(key="new_save").click().run()
    assert _count(app_db, AutomationCampaign) == 1


def test_a_template_with_a_window_that_closes_before_it_opens_is_not_saved(app_db: Database, open_page: Open) -> None:
    at = open_page("pages/templates.py")
    at.text_input(key="tpl_new_name").input("Backwards").run()
    at.button(key="tpl_new_add_task").click().run()
    at.text_input(key=_step_key(at, "tpl_new", 0, "subject")).input("Call").run()
    at.toggle(key="tpl_new_sched_window").set_value(True).run()
    at.multiselect(key="tpl_new_sched_days").set_value([]).run()
    at.time_input(key="tpl_new_sched_end").set_value(time(8, 0)).run()
    at.button(key="tpl_new_save").click().run()
    assert [e.value for e in _column_with(at, "tpl_new_sched_days").error] == ["Choose at least one day of the week."]
    assert [e.value for e in _column_with(at, "tpl_new_sched_end").error] == [
        "Must be after the start (09:00): a send window opens and closes the same day."
    ]
    assert len(at.error) == 2
    with app_db.read_session() as s:
        assert s.scalar(select(func.count()).where(AutomationTemplate.is_system.is_(False))) == 0


def test_business_days_and_a_send_time_go_round_from_the_template_to_the_campaign(
    app_db: Database, open_page: Open
) -> None:
    at = open_page("pages/templates.py")
    at.text_input(key="tpl_new_name").input("Business days").run()
    at.button(key="tpl_new_add_task").click().run()
    at.text_input(key=_step_key(at, "tpl_new", 0, "subject")).input("Call").run()
    at.checkbox(key=_step_key(at, "tpl_new", 0, "business_days")).check().run()
    at.toggle(key=_step_key(at, "tpl_new", 0, "timed")).set_value(True).run()
    at.time_input(key=_step_key(at, "tpl_new", 0, "send_at")).set_value(time(10, 30)).run()
    # Adding a step keeps what the first one says.
    at.button(key="tpl_new_add_task").click().run()
    assert at.checkbox(key=_step_key(at, "tpl_new", 0, "business_days")).value is True
    assert at.time_input(key=_step_key(at, "tpl_new", 0, "send_at")).value == time(10, 30)
    at.text_input(key=_step_key(at, "tpl_new", 1, "subject")).input("Call again").run()
    assert at.checkbox(key=_step_key(at, "tpl_new", 1, "business_days")).value is False
    assert at.toggle(key=_step_key(at, "tpl_new", 1, "timed")).value is False
    at.button(key="tpl_new_save").click().run()
    assert not at.error, [e.value for e in at.error]
    with app_db.read_session() as s:
        template = s.scalars(select(AutomationTemplate).where(AutomationTemplate.name == "Business days")).one()
        assert [(step.business_days, step.send_at) for step in template.steps] == [(True, "10:30"), (False, None)]
        template_id = template.id

    at.button(key="tpl_edit").click().run()
    assert at.checkbox(key=_step_key(at, "tpl_edit", 0, "business_days")).value is True
    assert at.toggle(key=_step_key(at, "tpl_edit", 0, "timed")).value is True
    assert at.time_input(key=_step_key(at, "tpl_edit", 0, "send_at")).value == time(10, 30)
    # Turned off and saved, the set time is gone.
    at.toggle(key=_step_key(at, "tpl_edit", 0, "timed")).set_value(False).run()
    at.button(key="tpl_edit_save").click().run()
    with app_db.read_session() as s:
        edited = s.get(AutomationTemplate, template_id)
        assert edited is not None
        assert [(step.business_days, step.send_at) for step in edited.steps] == [(True, None), (False, None)]
    at.button(key="tpl_edit").click().run()
    at.toggle(key=_step_key(at, "tpl_edit", 0, "timed")).set_value(True).run()
    at.time_input(key=_step_key(at, "tpl_edit", 0, "send_at")).set_value(time(10, 30)).run()
    at.button(key="tpl_edit_save").click().run()

    contact_id = _contact_in_new_york(app_db)
    at.switch_page("pages/new_campaign.py").run()
    _builder(at, contact_id, template_id, name="Calls")
    assert at.checkbox(key=_step_key(at, "new", 0, "business_days")).value is True
    assert at.time_input(key=_step_key(at, "new", 0, "send_at")).value == time(10, 30)
    _start_on_saturday(at)
    # Saturday 06:00 in New York: 10:30 the same day (no delay to count).
    assert _preview(at)["contact's time (America/New_York)"][0] == "Sat 2030-01-05 10:30"
    at.button(key="new_save").click().run()
    assert "1 campaign(s) created" in texts(at)
    with app_db.read_session() as s:
        steps = s.scalars(select(AutomationStep).order_by(AutomationStep.position)).all()
        assert [(step.business_days, step.send_at) for step in steps] == [(True, "10:30"), (False, None)]
        first = steps[0].scheduled_at.replace(tzinfo=ZoneInfo("UTC")).astimezone(NEW_YORK)
    assert (first.date(), first.time()) == (date(2030, 1, 5), time(10, 30))


def test_a_step_added_with_business_days_counts_only_open_days(app_db: Database, open_page: Open) -> None:
    contact_id, template_id = _contact_in_new_york(app_db), _sequence(app_db)
    at = open_page("pages/new_campaign.py")
    _builder(at, contact_id, template_id)
    _start_on_saturday(at)
    third = _step_key(at, "new", 2, "business_days")
    # The team's clock is UTC here: the start is Saturday 07:00 in New York, the
    # second step Saturday 15:00; a day later is Sunday, a business day later Monday.
    before = _preview(at)["contact's time (America/New_York)"][2]
    at.checkbox(key=third).check().run()
    after = _preview(at)["contact's time (America/New_York)"][2]
    assert (before, after) == ("Sun 2030-01-06 15:00", "Mon 2030-01-07 15:00")
