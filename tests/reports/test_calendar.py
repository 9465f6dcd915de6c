"""Calendar queries: range boundaries in the display timezone, periods, filters,
aggregation of busy periods, one day's events, the shapes the page draws (the
year's month grids), how days are written, and that the range queries use the
indexes."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from automations.domain.errors import NotFound, ValidationError
from automations.domain.models import AutomationStep
from automations.domain.timeutil import UTC
from automations.reports.calendar import (
    SHADES,
    CalendarFilter,
    YearDay,
    busiest_days,
    calendar_day,
    calendar_events,
    calendar_period,
    column_label,
    count_events,
    day_label,
    day_totals,
    event_counts,
    event_detail,
    hour_grid,
    in_range,
    local_day,
    moment_label,
    month_cells,
    month_grid,
    period_bounds,
    period_label,
    shade,
    shift_period,
    time_label,
    utc_offsets,
    year_months,
)
from tests.conftest import query_plan
from tests.reports.calendar_data import T0, add_campaign, add_contact, build_known

PARIS = ZoneInfo("Europe/Paris")
D = timedelta(days=1)
NEW_YORK = ZoneInfo("America/New_York")


def names(events) -> list[str]:
    return [e.title for e in events]


def test_events_in_range_sorted_with_names_and_execution_time(db):
    built = build_known(db)
    with db.read_session() as s:
        events = calendar_events(s, T0 - timedelta(days=2), T0 + timedelta(days=30))
    assert names(events) == ["C3", "B1", "A1", "B2", "A2", "A3", "C1", "C2", "A4"]
    a1 = events[2]
    assert a1.id == built.step_ids["A1"]
    assert a1.start == T0 + timedelta(seconds=60) and a1.start.tzinfo is not None
    assert (a1.campaign_name, a1.contact_name, a1.message_type, a1.status) == ("Alpha", "Ann Lee", "email", "sent")
    assert a1.as_dict()["start"] == "2026-03-02T09:01:00+00:00"


def test_pages_of_events_follow_the_same_order(db):
    """Pages (the REST API's limit/offset) are slices of the whole ordered list,
    with executed and planned steps interleaved by time."""
    build_known(db)
    start, end = T0 - timedelta(days=2), T0 + timedelta(days=30)
    with db.read_session() as s:
        everything = names(calendar_events(s, start, end))
        pages = [names(calendar_events(s, start, end, limit=2, offset=offset)) for offset in range(0, 10, 2)]
        filtered = names(calendar_events(s, start, end, CalendarFilter(message_type="email")))
        first_filtered = names(calendar_events(s, start, end, CalendarFilter(message_type="email"), limit=3))
    assert [title for page in pages for title in page] == everything
    assert len(everything) == 9
    assert first_filtered == filtered[:3]


def test_range_is_half_open_and_uses_execution_time_when_run(db):
    build_known(db)
    with db.read_session() as s:
        # A1 was planned at T0 but ran at T0+60s: it belongs where it ran.
        assert "A1" not in names(calendar_events(s, T0, T0 + timedelta(seconds=60)))
        assert names(calendar_events(s, T0, T0 + timedelta(seconds=61))) == ["B1", "A1"]
        # Pending A4 is at its planned time; the end is excluded.
        assert names(calendar_events(s, T0 + timedelta(days=9), T0 + timedelta(days=9, seconds=1))) == ["A4"]
        assert calendar_events(s, T0 + timedelta(days=8), T0 + timedelta(days=9)) == []
        with pytest.raises(ValidationError) as exc:
            calendar_events(s, T0, T0)
        assert "end" in exc.value.errors


def test_filters_campaign_template_contact_type_status(db):
    built = build_known(db)
    start, end = T0 - timedelta(days=5), T0 + timedelta(days=30)
    with db.read_session() as s:

        def run(**kw):
            f = CalendarFilter(**kw)
            events = calendar_events(s, start, end, f)
            assert count_events(s, start, end, f) == len(events)
            return sorted(names(events))

        assert run(campaign_id=built.campaign_ids[1]) == ["B1", "B2"]
        assert run(template_id=built.template_id) == ["A1", "A2", "A3", "A4", "B1", "B2"]
        assert run(contact_id=built.contact_ids[1]) == ["B1", "B2"]
        assert run(message_type="sms") == ["A2", "C2"]
        assert run(message_type=["sms", "task"]) == ["A2", "A3", "C2"]
        assert run(status="failed") == ["A2"]
        assert run(status=("sent", "skipped"), template_id=built.template_id) == ["A1", "B1", "B2"]


def test_limit_and_offset(db):
    build_known(db)
    with db.read_session() as s:
        page = calendar_events(s, T0 - timedelta(days=5), T0 + timedelta(days=30), limit=2, offset=1)
    assert names(page) == ["B1", "A1"]


def test_a_step_at_2330_local_belongs_to_that_local_day(sqlite_db, pg_db):
    # 23:30 in Paris on 1 March is 22:30 UTC; in New York on 7 March it is 04:30 UTC next day.
    for db in (sqlite_db, pg_db):
        with db.session() as s:
            who = add_contact(s, "Zoe")
            add_campaign(
                s,
                "Late",
                who,
                [
                    {"name": "paris-late", "at": datetime(2026, 3, 1, 22, 30, tzinfo=UTC)},
                    {"name": "paris-next", "at": datetime(2026, 3, 1, 23, 30, tzinfo=UTC)},
                ],
            )
        with db.read_session() as s:
            start, end = period_bounds("week", date(2026, 3, 1), PARIS)
            assert start == datetime(2026, 2, 22, 23, 0, tzinfo=UTC)  # Monday 23 Feb 00:00 Paris
            assert names(calendar_events(s, start, end)) == ["paris-late"]
            days = event_counts(s, start - timedelta(days=7), end + timedelta(days=7), PARIS)
            assert [(b.key, b.total) for b in days] == [("2026-03-01", 1), ("2026-03-02", 1)]


def test_day_buckets_follow_daylight_saving_changes(db):
    # New York moves to summer time on 8 March 2026 at 02:00 local (07:00 UTC).
    with db.session() as s:
        who = add_contact(s, "Dee")
        add_campaign(
            s,
            "DST",
            who,
            [
                {"name": "before", "at": datetime(2026, 3, 8, 4, 30, tzinfo=UTC)},  # 23:30 on 7 Mar (EST)
                {"name": "after", "at": datetime(2026, 3, 9, 3, 30, tzinfo=UTC)},  # 23:30 on 8 Mar (EDT)
                {"name": "after2", "at": datetime(2026, 3, 9, 4, 30, tzinfo=UTC)},  # 00:30 on 9 Mar (EDT)
            ],
        )
    start, end = period_bounds("month", date(2026, 3, 15), NEW_YORK)
    assert [o for _, o in utc_offsets(NEW_YORK, start, end)] == [-5 * 3600, -4 * 3600]
    with db.read_session() as s:
        days = event_counts(s, start, end, NEW_YORK)
        hours = event_counts(s, start, end, NEW_YORK, bucket="hour")
    assert [(b.key, b.total) for b in days] == [("2026-03-07", 1), ("2026-03-08", 1), ("2026-03-09", 1)]
    assert [b.key for b in hours] == ["2026-03-07 23", "2026-03-08 23", "2026-03-09 00"]
    with db.read_session() as s:  # the year view's day counts agree, across the change
        year = calendar_period(s, "year", date(2026, 3, 15), NEW_YORK)
    assert [(b.key, b.total, b.scheduled) for b in year.buckets] == [
        ("2026-03-07", 1, 1),
        ("2026-03-08", 1, 1),
        ("2026-03-09", 1, 1),
    ]


def test_day_totals_count_executed_and_scheduled_steps_with_filters(db):
    built = build_known(db)
    with db.read_session() as s:
        days = {b.key: b for b in day_totals(s, date(2026, 2, 1), date(2026, 4, 1), UTC)}
        sms = day_totals(s, date(2026, 2, 1), date(2026, 4, 1), UTC, CalendarFilter(message_type="sms"))
        welcome = day_totals(s, date(2026, 2, 1), date(2026, 4, 1), UTC, CalendarFilter(template_id=built.template_id))
        counted = event_counts(s, T0 - 30 * D, T0 + 30 * D, UTC)
    assert sorted(days) == [
        "2026-03-01",
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
        "2026-03-05",
        "2026-03-06",
        "2026-03-11",
    ]
    # 3 March: A2 failed and B2 skipped (both executed); 5 March: C1 canceled (neither).
    assert (days["2026-03-03"].total, days["2026-03-03"].executed, days["2026-03-03"].scheduled) == (2, 2, 0)
    assert (days["2026-03-05"].total, days["2026-03-05"].executed, days["2026-03-05"].scheduled) == (1, 0, 0)
    assert (days["2026-03-11"].total, days["2026-03-11"].scheduled) == (1, 1)  # A4 pending
    # The same counts as the GROUP BY of the other views.
    assert [(b.key, b.total, b.executed, b.scheduled) for b in counted] == [
        (b.key, b.total, b.executed, b.scheduled) for b in sorted(days.values(), key=lambda b: b.key)
    ]
    assert [(b.key, b.total) for b in sms] == [("2026-03-03", 1), ("2026-03-06", 1)]
    assert sum(b.total for b in welcome) == 6


def test_periods_weeks_start_on_monday_and_move():
    assert period_bounds("week", date(2026, 3, 5), UTC) == (
        datetime(2026, 3, 2, tzinfo=UTC),
        datetime(2026, 3, 9, tzinfo=UTC),
    )
    assert period_bounds("month", date(2026, 12, 31), UTC) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert period_bounds("year", date(2026, 6, 1), UTC) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert shift_period("week", date(2026, 3, 5), -1) == date(2026, 2, 26)
    assert shift_period("month", date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert shift_period("month", date(2026, 1, 15), -1) == date(2025, 12, 15)
    assert shift_period("year", date(2028, 2, 29), 1) == date(2029, 2, 28)


def test_month_grid_covers_the_month_in_monday_weeks():
    grid = month_grid(2026, 3)  # 1 March 2026 is a Sunday
    assert grid[0][0] == date(2026, 2, 23) and grid[0][6] == date(2026, 3, 1)
    assert grid[-1][0] == date(2026, 3, 30) and grid[-1][6] == date(2026, 4, 5)
    assert len(grid) == 6 and all(len(week) == 7 for week in grid)
    assert len(month_grid(2027, 2)) == 4  # February 2027 starts on a Monday


def test_small_period_lists_events_busy_period_is_aggregated(db):
    with db.session() as s:
        who = add_contact(s, "Max")
        for c in range(3):
            add_campaign(
                s,
                f"Bulk {c}",
                who,
                [
                    {
                        "name": f"s{c}-{i}",
                        "type": ("email", "sms")[(i // 4) % 2],
                        "at": T0 + timedelta(days=i % 4, minutes=i),
                    }
                    for i in range(40)
                ],
            )
    with db.read_session() as s:
        listed = calendar_period(s, "month", date(2026, 3, 1), UTC)
        assert not listed.aggregated and listed.total == 120 and len(listed.events) == 120
        busy = calendar_period(s, "month", date(2026, 3, 1), UTC, threshold=100, sample=2)
        assert busy.aggregated and busy.events == [] and busy.total == 120
        assert [b.key for b in busy.buckets] == ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]
        first = busy.buckets[0]
        assert first.total == 30 and first.by_type == {"email": 15, "sms": 15}
        assert first.scheduled == 30 and [e.title for e in first.first] == ["s0-0", "s1-0"]
        week = calendar_period(s, "week", date(2026, 3, 2), UTC, threshold=10)
        assert week.aggregated and week.buckets[0].key == "2026-03-02 09"
        year = calendar_period(s, "year", date(2026, 3, 2), UTC)
        assert year.aggregated and sum(b.total for b in year.buckets) == 120


def test_event_detail_has_campaign_contact_and_personalised_content(db):
    built = build_known(db)
    with db.read_session() as s:
        detail = event_detail(s, built.step_ids["A2"])
        assert detail.event.campaign_name == "Alpha" and detail.event.contact_name == "Ann Lee"
        assert detail.subject == "Hello Ann" and detail.last_error == "HTTP 400"
        assert detail.attempts == 5 and detail.event.status == "failed"
        with pytest.raises(NotFound):
            event_detail(s, 999_999)


def _plan(db, query) -> str:
    return query_plan(db, query)


def test_range_query_uses_the_time_indexes(sqlite_db, pg_db):
    query = select(AutomationStep.id).where(in_range(T0, T0 + timedelta(days=7)))
    sqlite_plan = _plan(sqlite_db, query)
    assert "ix_automation_steps_executed_at" in sqlite_plan
    assert "ix_automation_steps_scheduled_at" in sqlite_plan
    with pg_db.session() as s:  # an empty table is scanned whatever the indexes
        s.connection().exec_driver_sql("SET enable_seqscan = off")
        rows = (
            s.connection()
            .exec_driver_sql("EXPLAIN " + str(query.compile(s.get_bind(), compile_kwargs={"literal_binds": True})))
            .all()
        )
    pg_plan = "\n".join(str(r) for r in rows)
    assert "ix_automation_steps_executed_at" in pg_plan and "ix_automation_steps_scheduled_at" in pg_plan


def test_shapes_the_page_draws(sqlite_db):
    build_known(sqlite_db)
    with sqlite_db.read_session() as s:
        month = calendar_period(s, "month", date(2026, 3, 1), UTC)
        busy_week = calendar_period(s, "week", date(2026, 3, 2), UTC, threshold=0)
        year = calendar_period(s, "year", date(2026, 3, 1), UTC)
    cells = month_cells(month)
    first_week = cells[0]
    assert first_week[0].day == date(2026, 2, 23) and not first_week[0].in_month
    assert first_week[6].summary.total == 1  # Sunday 1 March: C3
    monday = cells[1][0]
    assert monday.day == date(2026, 3, 2) and monday.summary.total == 2
    assert [e.title for e in monday.summary.first] == ["B1", "A1"]
    # A busy week: all 24 hours, the days headed as the calendar heads them.
    grid = hour_grid(busy_week)
    assert [row["hour"] for row in grid] == [f"{h:02d}:00" for h in range(24)]
    assert list(grid[0])[1:] == ["Mon 2", "Tue 3", "Wed 4", "Thu 5", "Fri 6", "Sat 7", "Sun 8"]
    assert grid[9]["Mon 2"] == 2 and grid[9]["Tue 3"] == 2 and grid[8]["Mon 2"] == 0
    assert busiest_days(year)[0] == (date(2026, 3, 2), 2)


def test_year_is_twelve_month_grids_of_days_shaded_by_count(sqlite_db):
    build_known(sqlite_db)
    with sqlite_db.read_session() as s:
        year = calendar_period(s, "year", date(2026, 3, 1), UTC)
    months = year_months(year)
    assert [m.name for m in months][:3] == ["January", "February", "March"] and len(months) == 12
    march = months[2]
    # Monday weeks; 1 March 2026 is a Sunday, so the first week holds only it.
    assert march.weeks[0][:6] == [None] * 6 and march.weeks[0][6].day == date(2026, 3, 1)
    days = {cell.day: cell for week in march.weeks for cell in week if cell}
    assert len(days) == 31 and all(len(week) == 7 for week in march.weeks)
    assert (days[date(2026, 3, 2)].total, days[date(2026, 3, 2)].executed) == (2, 2)
    assert (days[date(2026, 3, 11)].total, days[date(2026, 3, 11)].scheduled) == (1, 1)  # A4 pending
    # Shades follow the busiest day (2 steps): 2 is the darkest, 1 half, none blank.
    assert days[date(2026, 3, 2)].shade == SHADES and days[date(2026, 3, 1)].shade == 2
    assert days[date(2026, 3, 20)] == YearDay(date(2026, 3, 20), 0, 0, 0, 0)
    assert sum(cell.total for m in months for week in m.weeks for cell in week if cell) == year.total == 9
    assert len([c for m in months for w in m.weeks for c in w if c]) == 365
    assert [shade(n, 10) for n in (0, 1, 2, 3, 5, 8, 10)] == [0, 1, 1, 2, 2, 4, 4]
    assert shade(3, 0) == 0


def test_a_day_lists_its_events_in_the_display_timezone(db):
    built = build_known(db)
    with db.read_session() as s:
        monday = calendar_day(s, date(2026, 3, 2), UTC)
        tuesday_sms = calendar_day(s, date(2026, 3, 3), UTC, CalendarFilter(message_type="sms"))
        empty = calendar_day(s, date(2026, 3, 20), UTC)
        one = calendar_day(s, date(2026, 3, 2), UTC, limit=1)
        # C3 ran at 09:00:05 UTC on 1 March: 20:00 on 1 March in Sydney (UTC+11) ...
        sydney = calendar_day(s, date(2026, 3, 1), ZoneInfo("Australia/Sydney"))
    assert [e.title for e in monday.events] == ["B1", "A1"] and monday.total == 2
    assert monday.events[1].id == built.step_ids["A1"]
    assert [e.title for e in tuesday_sms.events] == ["A2"] and tuesday_sms.total == 1
    assert (empty.total, empty.events) == (0, [])
    assert (one.total, [e.title for e in one.events]) == (2, ["B1"])
    assert "C3" in [e.title for e in sydney.events]
    assert sydney.start == datetime(2026, 2, 28, 13, 0, tzinfo=UTC)


def test_days_and_times_are_written_one_way():
    assert day_label(date(2026, 11, 30)) == "Mon 30 Nov 2026"
    assert day_label(date(2026, 3, 2)) == "Mon 2 Mar 2026"
    assert day_label(date(2026, 9, 6)) == "Sun 6 Sep 2026"
    assert column_label(date(2026, 3, 2)) == "Mon 2"
    moment = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert time_label(moment, UTC) == "23:30" and time_label(moment, PARIS) == "00:30"
    assert moment_label(moment, PARIS) == "Mon 2 Mar 2026 00:30"
    assert local_day(moment, PARIS) == date(2026, 3, 2)
    assert period_label("week", date(2026, 3, 5)) == "Week 10 · Mon 2 Mar 2026 – Sun 8 Mar 2026"
    assert period_label("week", date(2026, 12, 31)) == "Week 53 · Mon 28 Dec 2026 – Sun 3 Jan 2027"
    assert period_label("month", date(2026, 3, 5)) == "March 2026"
    assert period_label("year", date(2026, 3, 5)) == "2026"
