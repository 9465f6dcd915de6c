"""The calendar page: views switch, Previous/Next/Today move the period, filters
apply, a day lists all its steps, an event's details show, the year is twelve
small months whose days open, moving forgets what was chosen, every date is
written one way, and busy periods are aggregated."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta

from sqlalchemy import insert
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block, Button

from automations.domain.config import get_settings
from automations.domain.db import Database
from automations.domain.models import AutomationStep
from automations.reports.calendar import (
    AGGREGATE_THRESHOLD,
    DATE_INPUT_FORMAT,
    MONTH_NAMES,
    VIEWS,
    WEEKDAY_NAMES,
    calendar_day,
    calendar_period,
    day_label,
)
from tests.pages.conftest import texts
from tests.reports.calendar_data import T0, build_known

PAGE = "pages/calendar.py"
MONDAY = T0.date()  # Monday 2 March 2026


def heading(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("### "))


def counted(at: AppTest) -> str:
    return next(c.value for c in at.caption if "step(s) in this" in c.value).split(" · ")[0]


def go_to(at: AppTest, day: date) -> AppTest:
    at.date_input(key="cal_jump").set_value(day).run()
    return at


def view(at: AppTest, name: str) -> AppTest:
    at.radio(key="cal_view").set_value(name).run()
    return at


def blocks(node: Block) -> Iterator[Block]:
    for child in node.children.values():
        if isinstance(child, Block):
            yield child
            yield from blocks(child)


def month_grids(at: AppTest) -> dict[int, Block]:
    """The year view's small months, by month number."""
    found = {}
    for block in blocks(at.main):
        match = re.search(r"cal_ymonth_(\d+)$", getattr(block.proto, "id", "") or "")
        if match:
            found[int(match.group(1))] = block
    return found


def day_buttons(node: Block | AppTest) -> dict[date, Button]:
    """The year view's day buttons (their key ends with the day), by day."""
    return {date.fromisoformat(b.key[-10:]): b for b in node.button if b.key and b.key.startswith("cal_yday_")}


def day_list(at: AppTest) -> list[dict]:
    """The rows of the chosen day's list of steps."""
    return at.table[0].value.to_dict("records") if at.table else []


def shown_detail(at: AppTest) -> bool:
    return any(c.value.startswith("Planned ") for c in at.caption)


def test_views_move_and_filter(app_db: Database, open_page) -> None:
    build_known(app_db)
    at = go_to(open_page(PAGE), MONDAY)
    assert not at.exception, at.exception
    assert heading(at) == "### March 2026" and counted(at) == "9 step(s) in this month"
    # Every event of the month can be picked from the list.
    assert len(at.selectbox(key="cal_pick").options) == 9

    view(at, "week")
    assert heading(at) == "### Week 10 · Mon 2 Mar 2026 – Sun 8 Mar 2026" and counted(at) == "7 step(s) in this week"
    at.button(key="cal_next").click().run()
    assert heading(at).startswith("### Week 11") and counted(at) == "1 step(s) in this week"
    at.button(key="cal_prev").click().run()
    at.button(key="cal_prev").click().run()
    assert heading(at).startswith("### Week 9") and counted(at) == "1 step(s) in this week"
    at.button(key="cal_today").click().run()
    assert at.session_state["cal_anchor"] != date(2026, 2, 23)

    view(at, "year")
    go_to(at, MONDAY)
    assert heading(at) == "### 2026" and counted(at) == "9 step(s) in this year"
    assert "Busiest days:** Mon 2 Mar 2026 (2)" in texts(at)
    at.button(key="cal_prev").click().run()
    assert heading(at) == "### 2025" and "Nothing scheduled or executed" in texts(at)

    view(at, "month")
    go_to(at, MONDAY)
    at.multiselect(key="cal_statuses").set_value(["failed", "skipped"]).run()
    assert counted(at) == "2 step(s) in this month"
    at.multiselect(key="cal_statuses").set_value([]).run()
    at.multiselect(key="cal_types").set_value(["sms"]).run()
    assert counted(at) == "2 step(s) in this month"
    assert not at.exception, at.exception


def test_picking_an_event_shows_its_details(app_db: Database, open_page) -> None:
    built = build_known(app_db)
    at = go_to(open_page(PAGE), MONDAY)
    at.selectbox(key="cal_pick").set_value(built.step_ids["A2"]).run()
    shown = texts(at)
    assert "A2" in shown and "Alpha" in shown and "Ann Lee" in shown
    assert "Hello Ann" in shown and "HTTP 400" in shown and "attempts 5" in shown


def test_every_view_and_period_renders_on_the_demo_database(demo_db: Database, open_page) -> None:
    at = open_page(PAGE)
    for name in VIEWS:
        view(at, name)
        assert not at.exception, (name, at.exception)
        for button in ("cal_prev", "cal_next", "cal_next", "cal_today"):
            at.button(key=button).click().run()
            assert not at.exception, (name, button, at.exception)
            assert heading(at) and counted(at).endswith(f"step(s) in this {name}")
    # Each day of a week or month can be chosen to list its steps.
    assert len(view(at, "week").selectbox(key="cal_day").options) == 7
    assert 28 <= len(view(at, "month").selectbox(key="cal_day").options) <= 31
    assert not counted(at).startswith("0 ")  # the demo has steps this month
    assert len(month_grids(view(at, "year"))) == 12


def test_every_view_renders_on_an_empty_database(app_db: Database, open_page) -> None:
    at = open_page(PAGE)
    for name in VIEWS:
        view(at, name)
        assert not at.exception, (name, at.exception)
        assert counted(at) == f"0 step(s) in this {name}" and "Nothing scheduled or executed" in texts(at)
    # The empty year still has its twelve months, and an empty day opens.
    assert len(month_grids(at)) == 12
    first = date(at.session_state["cal_anchor"].year, 1, 1)
    day_buttons(at)[first].click().run()
    assert not at.exception, at.exception
    assert f"Nothing scheduled or executed on {day_label(first)}." in texts(at)


def test_year_view_is_twelve_month_grids_with_weekday_headers(demo_db: Database, open_page) -> None:
    at = view(open_page(PAGE), "year")
    year = at.session_state["cal_anchor"].year
    grids = month_grids(at)
    assert sorted(grids) == list(range(1, 13))
    with demo_db.read_session() as s:
        counts = {
            date.fromisoformat(b.key): b.total
            for b in calendar_period(s, "year", date(year, 1, 1), get_settings().tz).buckets
        }
    assert counts, "the demo has steps this year"
    for month, grid in grids.items():
        assert grid.markdown[0].value == f"**{MONTH_NAMES[month - 1]}**"
        assert [c.value for c in grid.caption] == list(WEEKDAY_NAMES)
        days = day_buttons(grid)
        assert sorted(days) == [date(year, month, 1) + timedelta(days=i) for i in range(len(days))]
        assert max(days).month == month and (max(days) + timedelta(days=1)).month != month
        # Each day is labelled with its number and its count of steps ("·" for none).
        for day, button in days.items():
            number, count = button.label.split("  \n")
            assert number == f"**{day.day}**" and count == str(counts.get(day, "·"))
    # Busier days are darker: the busiest is in the darkest shade.
    busiest = max(counts, key=lambda d: (counts[d], d))
    assert str(day_buttons(at)[busiest].key).startswith("cal_yday_s4_")


def test_clicking_a_day_in_the_year_view_opens_it(demo_db: Database, open_page) -> None:
    at = view(open_page(PAGE), "year")
    buttons = day_buttons(at)
    busiest = max(buttons, key=lambda d: int(buttons[d].label.split("  \n")[1].replace("·", "0")))
    buttons[busiest].click().run()
    assert not at.exception, at.exception
    # That day's week, with the day chosen and every step of that day listed.
    assert at.session_state["cal_view"] == "week" and at.session_state["cal_anchor"] == busiest
    assert at.selectbox(key="cal_day").value == busiest
    assert f"#### {day_label(busiest)}" in [m.value for m in at.markdown]
    with demo_db.read_session() as s:
        expected = calendar_day(s, busiest, get_settings().tz)
    rows = day_list(at)
    assert len(rows) == expected.total > 0
    assert [r["Step"] for r in rows] == [e.title for e in expected.events]
    assert [r["Contact"] for r in rows] == [e.contact_name for e in expected.events]
    assert {"Time", "Step", "Type", "Status", "Campaign", "Contact"} <= set(rows[0])
    # Its events are the ones to pick from.
    assert len(at.selectbox(key="cal_pick").options) == expected.total


def test_choosing_a_day_lists_its_steps_and_moving_forgets_the_choice(app_db: Database, open_page) -> None:
    built = build_known(app_db)
    at = go_to(open_page(PAGE), MONDAY)
    at.selectbox(key="cal_day").set_value(MONDAY).run()
    rows = day_list(at)
    assert [(r["Time"], r["Step"], r["Type"], r["Status"], r["Campaign"], r["Contact"]) for r in rows] == [
        ("09:00", "B1", "Email", "✓ sent", "Beta", "=Bob Stone"),
        ("09:01", "A1", "Email", "✓ sent", "Alpha", "Ann Lee"),
    ]
    at.selectbox(key="cal_pick").set_value(built.step_ids["A1"]).run()
    assert shown_detail(at)

    def chosen_again() -> None:
        at.selectbox(key="cal_day").set_value(MONDAY).run()
        at.selectbox(key="cal_pick").set_value(built.step_ids["A1"]).run()
        assert day_list(at) and shown_detail(at)

    # Every control that moves to another period or view forgets the day and the event.
    moves = [
        lambda: at.button(key="cal_next").click().run(),
        lambda: at.button(key="cal_prev").click().run(),
        lambda: at.button(key="cal_today").click().run(),
        lambda: go_to(at, MONDAY + timedelta(days=1)),
        lambda: view(at, "week"),
    ]
    for move in moves:
        go_to(at, MONDAY)
        if at.session_state["cal_view"] != "month":
            view(at, "month")
        chosen_again()
        move()
        assert not at.exception, at.exception
        assert not day_list(at) and not shown_detail(at)
        assert at.session_state["cal_day"] is None and "cal_selected" not in at.session_state
    # Nor does the card follow into an empty year.
    view(at, "month")
    go_to(at, MONDAY)
    chosen_again()
    view(at, "year")
    at.button(key="cal_prev").click().run()
    assert "Nothing scheduled or executed" in texts(at) and not shown_detail(at)


def test_every_date_is_written_one_way(app_db: Database, open_page) -> None:
    built = build_known(app_db)
    at = go_to(open_page(PAGE), MONDAY)
    assert at.date_input(key="cal_jump").proto.format == DATE_INPUT_FORMAT == "DD/MM/YYYY"
    # Month: the event list, then a day's list and an event's card.
    assert "Mon 2 Mar 2026 09:01 · ✓ A1 · Ann Lee · Alpha" in at.selectbox(key="cal_pick").options
    at.selectbox(key="cal_day").set_value(MONDAY).run()
    assert "Mon 2 Mar 2026" in at.selectbox(key="cal_day").options
    assert "#### Mon 2 Mar 2026" in [m.value for m in at.markdown]
    assert "2 step(s) on Mon 2 Mar 2026" in texts(at)
    assert "09:01 · ✓ A1 · Ann Lee · Alpha" in at.selectbox(key="cal_pick").options
    at.selectbox(key="cal_pick").set_value(built.step_ids["A1"]).run()
    assert "Planned Mon 2 Mar 2026 09:00 · executed Mon 2 Mar 2026 09:01 · attempts 1" in texts(at)
    shown = [texts(at), *at.selectbox(key="cal_pick").options, *at.selectbox(key="cal_day").options]
    # Week and year headings, and the busiest days.
    view(at, "week")
    assert heading(at) == "### Week 10 · Mon 2 Mar 2026 – Sun 8 Mar 2026"
    shown.append(texts(at))
    view(at, "year")
    assert "**Busiest days:** Mon 2 Mar 2026 (2), Tue 3 Mar 2026 (2)" in texts(at)
    shown.append(texts(at))
    # No other way of writing a day anywhere: no ISO or numeric dates, no zero-padded days.
    for text in shown:
        assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}|\b0\d (Jan|Feb|Mar|Apr)", text), text


def _add_pending_emails(db: Database, count: int, *, spread_days: int) -> None:
    """`count` pending email steps of campaign 1 from T0 on, a minute apart, spread over days."""
    with db.session() as s:
        s.execute(
            insert(AutomationStep),
            [
                {
                    "campaign_id": 1,
                    "position": 100 + i,
                    "name": f"Bulk {i}",
                    "message_type": "email",
                    "scheduled_at": T0 + timedelta(days=i % spread_days, minutes=i),
                    "due_at": T0,
                    "status": "pending",
                    "idempotency_key": f"bulk{i}",
                    "subject": "",
                    "body": "",
                    "delay_days": 0,
                    "delay_hours": 0,
                    "attempts": 0,
                }
                for i in range(count)
            ],
        )


def _column_of(at: AppTest, button_key: str) -> Block:
    return next(c for c in at.columns if any(b.key == button_key for b in c.button))


def test_a_busy_month_is_aggregated_per_day_and_its_days_open(app_db: Database, open_page) -> None:
    build_known(app_db)
    extra = AGGREGATE_THRESHOLD + 50
    _add_pending_emails(app_db, extra, spread_days=20)
    at = go_to(open_page(PAGE), MONDAY)
    assert counted(at) == f"{extra + 9} step(s) in this month"
    assert "Busy month" in texts(at)
    # 2 March: B1 and A1 plus the bulk steps of that day, counted, and the first ones named.
    on_monday = 2 + len(range(0, extra, 20))
    cell = " ".join(m.value for m in _column_of(at, "cal_mday_2026-03-02").markdown)
    assert f"{on_monday} steps" in cell and "09:00 ○ Bulk 0" in cell and "B1" in cell
    # A click on the day lists every one of its steps.
    at.button(key="cal_mday_2026-03-02").click().run()
    assert not at.exception, at.exception
    rows = day_list(at)
    assert len(rows) == on_monday and rows[-1]["Step"] == f"Bulk {max(range(0, extra, 20))}"
    assert f"{on_monday} step(s) on Mon 2 Mar 2026" in texts(at)


def test_a_busy_week_names_the_first_steps_of_each_day(app_db: Database, open_page) -> None:
    build_known(app_db)
    extra = AGGREGATE_THRESHOLD + 50
    _add_pending_emails(app_db, extra, spread_days=7)
    at = view(go_to(open_page(PAGE), MONDAY), "week")
    assert counted(at) == f"{extra + 7} step(s) in this week"
    assert "Busy week" in texts(at) and at.get("plotly_chart")
    # All 24 hours of each day, in columns headed like the calendar's ("Mon 2").
    chart = at.get("plotly_chart")[0].proto.spec
    assert all(f'"{hour:02d}:00"' in chart for hour in range(24)) and '"Mon 2"' in chart
    # Monday 2 March: the first bulk step (09:00:00), B1 (ran 09:00:20) and A1 (ran 09:01).
    assert at.button(key="cal_wday_2026-03-02").label == "**Mon 2**"
    monday = " ".join(m.value for m in _column_of(at, "cal_wday_2026-03-02").markdown)
    assert "B1" in monday and "A1" in monday
    tuesday = " ".join(m.value for m in _column_of(at, "cal_wday_2026-03-03").markdown)
    assert "Bulk 1" in tuesday
    at.button(key="cal_wday_2026-03-03").click().run()
    assert len(day_list(at)) == len(range(1, extra, 7)) + 2  # the bulk steps of Tuesday, A2 and B2
    assert not at.exception, at.exception
