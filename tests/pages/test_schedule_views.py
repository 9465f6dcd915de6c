"""What the pages show of time-aware scheduling: a campaign's schedule and each
step's time in the contact's clock beside the team's, with why it moved; the
calendar in the contacts' local time; the steps moved, counted on Statistics.

The team works in Paris; the contact, Nina, in New York (see
tests/reports/schedule_data.py for the campaigns and why each step moved).
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from streamlit.testing.v1 import AppTest

from automations.domain.config import get_settings
from automations.domain.db import Database
from tests.pages.conftest import texts
from tests.reports.schedule_data import WINDOW_NOTE, Moved, build_moved, quiet_hours_on

WEEK_OF_MONDAY = date(2026, 3, 9)


@pytest.fixture
def moved(app_db: Database, monkeypatch: pytest.MonkeyPatch) -> Moved:
    monkeypatch.setenv("AUTOMATIONS_TIMEZONE", "Europe/Paris")
    quiet_hours_on(monkeypatch)
    return build_moved(app_db)


def steps_table(at: AppTest) -> list[dict]:
    return at.dataframe[-1].value.to_dict("records")


def test_campaign_shows_its_schedule_and_each_steps_two_clocks_and_why_it_moved(moved: Moved, open_page) -> None:
    at = open_page("pages/campaigns.py")
    at.session_state["camp_open"] = moved.campaign_ids["Window"]
    at.run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "**Schedule:** Contact's time zone (America/New_York) · Mon–Fri 09:00–17:00 · holidays US" in shown
    check_in, call = steps_table(at)
    # Started Friday 16:30 in New York, one hour later is after the window: Monday
    # 09:00 there (EDT since Sunday), 14:00 in Paris (still CET).
    assert (check_in["name"], check_in["Contact's time"], check_in["Team time"]) == (
        "Check-in",
        "2026-03-09 09:00 EDT",
        "2026-03-09 14:00 CET",
    )
    assert check_in["Why it moved"] == WINDOW_NOTE
    assert (call["Contact's time"], call["Team time"], call["Why it moved"]) == (
        "2026-03-10 09:00 EDT",
        "2026-03-10 14:00 CET",
        "",
    )
    # Each step's content card says the same, and why it moved.
    assert "scheduled 2026-03-09 09:00 EDT (contact's time), 2026-03-09 14:00 CET (team time)" in shown
    assert f"Why it moved: {WINDOW_NOTE}" in shown

    at.session_state["camp_open"] = moved.campaign_ids["Quiet"]
    at.run()
    assert "**Schedule:** Contact's time zone (America/New_York) · No send window" in texts(at)
    [nudge] = steps_table(at)
    assert nudge["Contact's time"] == "2026-03-11 08:00 EDT" and nudge["Why it moved"] == "SMS quiet hours 21:00–08:00"


def calendar_events(at: AppTest) -> dict[str, dict]:
    """The events handed to the calendar component, by title."""
    [component] = at.get("component_instance")
    return {e["title"]: e for e in json.loads(component.proto.json_args)["events"]}


def test_calendar_shows_the_contacts_local_time_and_why_a_step_moved(moved: Moved, open_page) -> None:
    at = open_page("pages/calendar.py")
    at.date_input(key="cal_jump").set_value(WEEK_OF_MONDAY).run()
    at.radio(key="cal_view").set_value("week").run()
    # The team's clock: Paris.
    assert "times in Europe/Paris" in texts(at)
    assert calendar_events(at)["○ Check-in · Nina Park"]["start"] == "2026-03-09T14:00:00"
    assert "Mon 9 Mar 2026 14:00 · ○ Check-in · Nina Park · Window" in at.selectbox(key="cal_pick").options

    at.toggle(key="cal_local").set_value(True).run()
    assert not at.exception, at.exception
    assert "times in each contact's zone" in texts(at)
    # The week grid places each event at its contact's time, and names the zone.
    events = calendar_events(at)
    assert events["○ Check-in · Nina Park · America/New_York"]["start"] == "2026-03-09T09:00:00"
    assert events["○ Nudge · Nina Park · America/New_York"]["start"] == "2026-03-11T08:00:00"
    options = at.selectbox(key="cal_pick").options
    assert "Mon 9 Mar 2026 09:00 America/New_York · ○ Check-in · Nina Park · Window" in options

    # The card: planned in the contact's clock, and why.
    at.selectbox(key="cal_pick").set_value(moved.step_ids["Check-in"]).run()
    shown = texts(at)
    assert "Planned Mon 9 Mar 2026 09:00 America/New_York · attempts 0" in shown
    assert f"**Why it moved:** {WINDOW_NOTE}" in shown

    # Off again: the team's clock, the note still on the card.
    at.toggle(key="cal_local").set_value(False).run()
    shown = texts(at)
    assert "Planned Mon 9 Mar 2026 14:00 · attempts 0" in shown and f"**Why it moved:** {WINDOW_NOTE}" in shown
    assert calendar_events(at)["○ Check-in · Nina Park"]["start"] == "2026-03-09T14:00:00"


def test_a_days_list_in_local_time_names_the_contacts_day_when_it_differs(
    app_db: Database, monkeypatch: pytest.MonkeyPatch, open_page
) -> None:
    # Without quiet hours, the SMS goes out Tuesday 21:30 in New York: Wednesday 02:30 in Paris.
    monkeypatch.setenv("AUTOMATIONS_TIMEZONE", "Europe/Paris")
    get_settings.cache_clear()
    build_moved(app_db)
    at = open_page("pages/calendar.py")
    at.date_input(key="cal_jump").set_value(WEEK_OF_MONDAY).run()
    at.radio(key="cal_view").set_value("week").run()
    at.selectbox(key="cal_day").set_value(date(2026, 3, 11)).run()
    assert [r["Time"] for r in at.table[0].value.to_dict("records")] == ["02:30"]
    at.toggle(key="cal_local").set_value(True).run()
    assert [r["Time"] for r in at.table[0].value.to_dict("records")] == ["Tue 10 21:30 America/New_York"]
    assert "Tue 10 21:30 America/New_York · ○ Nudge · Nina Park · Quiet" in at.selectbox(key="cal_pick").options


def test_statistics_count_the_steps_moved_by_each_reason(moved: Moved, open_page) -> None:
    at = open_page("pages/statistics.py")
    at.date_input(key="st_range").set_value((date(2026, 3, 1), date(2026, 5, 31))).run()
    assert not at.exception, at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Moved by the send window"] == "2"  # Monday's check-in, and the email after Memorial Day
    assert shown["Moved by holidays"] == "1"
    assert shown["Moved by quiet hours"] == "1"
    assert shown["Moved by frequency caps"] == "1"
    assert "Steps moved by their schedule" in texts(at)
    # The filters apply: SMS only, then March only.
    at.multiselect(key="st_types").set_value(["sms"]).run()
    shown = {m.label: m.value for m in at.metric}
    assert (shown["Moved by the send window"], shown["Moved by quiet hours"]) == ("0", "1")
    at.multiselect(key="st_types").set_value([]).run()
    at.date_input(key="st_range").set_value((date(2026, 3, 1), date(2026, 3, 31))).run()
    shown = {m.label: m.value for m in at.metric}
    assert (shown["Moved by the send window"], shown["Moved by holidays"]) == ("1", "0")
