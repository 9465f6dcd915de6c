"""The calendar page: views switch, Previous/Next/Today move the period, filters
apply, an event's details show, and a busy month is aggregated."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import insert
from streamlit.testing.v1 import AppTest

from automations.domain.db import Database
from automations.domain.models import AutomationStep
from automations.reports.calendar import AGGREGATE_THRESHOLD
from tests.pages.conftest import texts
from tests.reports.calendar_data import T0, build_known

PAGE = "pages/calendar.py"


def heading(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("### "))


def counted(at: AppTest) -> str:
    return next(c.value for c in at.caption if "step(s) in this" in c.value).split(" · ")[0]


def go_to(at: AppTest, day: date) -> AppTest:
    at.date_input(key="cal_jump").set_value(day).run()
    return at


def test_views_move_and_filter(app_db: Database, open_page) -> None:
    build_known(app_db)
    at = go_to(open_page(PAGE), T0.date())
    assert not at.exception, at.exception
    assert heading(at) == "### March 2026" and counted(at) == "9 step(s) in this month"
    # Every event of the month can be picked from the list.
    assert len(at.selectbox(key="cal_pick").options) == 9

    at.radio(key="cal_view").set_value("week").run()
    assert heading(at) == "### Week 10: 02 Mar – 08 Mar 2026" and counted(at) == "7 step(s) in this week"
    at.button(key="cal_next").click().run()
    assert heading(at).startswith("### Week 11") and counted(at) == "1 step(s) in this week"
    at.button(key="cal_prev").click().run()
    at.button(key="cal_prev").click().run()
    assert heading(at).startswith("### Week 9") and counted(at) == "1 step(s) in this week"
    at.button(key="cal_today").click().run()
    assert at.session_state["cal_anchor"] != date(2026, 2, 23)

    at.radio(key="cal_view").set_value("year").run()
    go_to(at, T0.date())
    assert heading(at) == "### 2026" and counted(at) == "9 step(s) in this year"
    assert "Busiest days:** 02 Mar (2)" in texts(at)
    at.button(key="cal_prev").click().run()
    assert heading(at) == "### 2025" and "Nothing scheduled or executed" in texts(at)

    at.radio(key="cal_view").set_value("month").run()
    go_to(at, T0.date())
    at.multiselect(key="cal_statuses").set_value(["failed", "skipped"]).run()
    assert counted(at) == "2 step(s) in this month"
    at.multiselect(key="cal_statuses").set_value([]).run()
    at.multiselect(key="cal_types").set_value(["sms"]).run()
    assert counted(at) == "2 step(s) in this month"
    assert not at.exception, at.exception


def test_picking_an_event_shows_its_details(app_db: Database, open_page) -> None:
    built = build_known(app_db)
    at = go_to(open_page(PAGE), T0.date())
    at.selectbox(key="cal_pick").set_value(built.step_ids["A2"]).run()
    shown = texts(at)
    assert "A2" in shown and "Alpha" in shown and "Ann Lee" in shown
    assert "Hello Ann" in shown and "HTTP 400" in shown and "attempts 5" in shown


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


def test_a_busy_month_is_aggregated_per_day(app_db: Database, open_page) -> None:
    build_known(app_db)
    extra = AGGREGATE_THRESHOLD + 50
    _add_pending_emails(app_db, extra, spread_days=20)
    at = go_to(open_page(PAGE), T0.date())
    assert counted(at) == f"{extra + 9} step(s) in this month"
    shown = texts(at)
    assert "Busy month" in shown
    # 2 March: B1 and A1 plus the bulk steps of that day, counted, and the first ones named.
    day_cells = [m.value for m in at.markdown if m.value.startswith("**2**")]
    assert day_cells and f"{2 + len(range(0, extra, 20))} steps" in day_cells[0]
    assert "B1" in day_cells[0]


def test_a_busy_week_names_the_first_steps_of_each_day(app_db: Database, open_page) -> None:
    build_known(app_db)
    extra = AGGREGATE_THRESHOLD + 50
    _add_pending_emails(app_db, extra, spread_days=7)
    at = go_to(open_page(PAGE), T0.date())
    at.radio(key="cal_view").set_value("week").run()
    assert counted(at) == f"{extra + 7} step(s) in this week"
    assert "Busy week" in texts(at) and at.get("plotly_chart")
    # Monday 2 March: the first bulk step (09:00:00), B1 (ran 09:00:20) and A1 (ran 09:01).
    monday = next(m.value for m in at.markdown if m.value.startswith("**Mon 02**"))
    assert "B1" in monday and "A1" in monday
    tuesday = next(m.value for m in at.markdown if m.value.startswith("**Tue 03**"))
    assert "Bulk 1" in tuesday
    assert not at.exception, at.exception
