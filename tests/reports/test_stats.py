"""Statistics: every figure checked against a database with known counts."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from automations.domain.models import AutomationStep, AutomationTemplate, Contact
from automations.domain.timeutil import UTC
from automations.reports.stats import (
    StatsFilter,
    automation_stats,
    chart_series,
    statistics_page,
    stats_rows,
    template_funnel,
)
from tests.reports.calendar_data import T0, add_campaign, add_contact, build_known

D = timedelta(days=1)


def test_figures_of_the_whole_database(db):
    build_known(db)
    with db.read_session() as s:
        stats = automation_stats(s, T0)
    json.dumps(stats)  # JSON-ready
    assert stats["campaigns_by_status"] == {"active": 1, "paused": 0, "completed": 1, "canceled": 1}
    assert stats["steps_by_status"] == {
        "pending": 1,
        "running": 0,
        "sent": 3,
        "done": 1,
        "failed": 1,
        "skipped": 1,
        "canceled": 2,
    }
    assert stats["steps_by_message_type"] == {"email": 4, "sms": 2, "task": 1, "webhook": 2}
    assert stats["status_by_message_type"]["webhook"] == {"skipped": 1, "sent": 1}
    assert stats["steps_total"] == 9 and stats["campaigns_total"] == 3
    assert stats["success_rate"] == pytest.approx(4 / 5)  # sent 3 + done 1 over those + failed 1
    assert stats["completion_rate"] == pytest.approx(1 / 2)
    lag = stats["lag_seconds"]
    assert lag["executed"] == 6
    assert lag["average"] == pytest.approx((60 + 180 + 600 + 20 + 0 + 5) / 6, abs=0.01)
    assert lag["p95"] == pytest.approx(600, abs=0.01)
    # "Call Ann" is overdue at T0; "+Check in" is pending and not yet due; one is done.
    assert stats["followups"] == {"pending": 2, "overdue": 1}


def test_filters_apply_to_every_figure(db):
    built = build_known(db)
    with db.read_session() as s:
        by_template = automation_stats(s, T0, StatsFilter(template_id=built.template_id))
        sms = automation_stats(s, T0, StatsFilter(message_type="sms"))
        first_day = automation_stats(s, T0, StatsFilter(start=T0, end=T0 + D))
        empty = automation_stats(s, T0, StatsFilter(start=T0 + 100 * D, end=T0 + 101 * D))
    assert by_template["campaigns_by_status"] == {"active": 1, "paused": 0, "completed": 1, "canceled": 0}
    assert by_template["steps_total"] == 6 and by_template["success_rate"] == pytest.approx(3 / 4)
    assert by_template["followups"] == {"pending": 1, "overdue": 1}
    assert sms["steps_by_status"]["failed"] == 1 and sms["steps_total"] == 2
    assert sms["campaigns_total"] == 2 and sms["success_rate"] == 0.0
    assert first_day["steps_total"] == 2  # A1 and B1 ran on T0's day
    assert first_day["lag_seconds"]["average"] == pytest.approx(40, abs=0.01)
    assert first_day["campaigns_total"] == 2  # Alpha and Beta start at T0; Gamma the day before
    assert empty["steps_total"] == 0 and empty["success_rate"] is None
    assert empty["lag_seconds"] == {"average": None, "p95": None, "executed": 0}


def test_chart_series(db):
    built = build_known(db)
    with db.read_session() as s:
        charts = chart_series(s, StatsFilter(start=T0 - 2 * D, end=T0 + 10 * D), UTC)
        tokyo = chart_series(s, StatsFilter(start=T0 - 2 * D, end=T0 + 10 * D), ZoneInfo("Asia/Tokyo"))
        only_template = chart_series(
            s, StatsFilter(start=T0 - 2 * D, end=T0 + 10 * D, template_id=built.template_id), UTC
        )
    assert charts.executions_per_day == [
        {"day": "2026-03-01", "message_type": "webhook", "count": 1},
        {"day": "2026-03-02", "message_type": "email", "count": 2},
        {"day": "2026-03-03", "message_type": "sms", "count": 1},
        {"day": "2026-03-03", "message_type": "webhook", "count": 1},
        {"day": "2026-03-04", "message_type": "task", "count": 1},
    ]
    assert {"day": "2026-03-03", "outcome": "failure", "count": 1} in charts.outcomes_per_day
    assert {"day": "2026-03-03", "outcome": "skipped", "count": 1} in charts.outcomes_per_day
    assert {"day": "2026-03-02", "outcome": "success", "count": 2} in charts.outcomes_per_day
    assert {"day": "2026-03-02", "outcome": "failure", "count": 0} in charts.outcomes_per_day
    assert len(charts.outcomes_per_day) == 4 * 3  # four days with executions, three outcomes each
    hours = {h["hour"]: h["count"] for h in charts.busiest_hours}
    assert len(hours) == 24 and hours[9] == 6 and sum(hours.values()) == 6
    tokyo_hours = {h["hour"]: h["count"] for h in tokyo.busiest_hours}
    assert tokyo_hours[18] == 6  # 09:00 UTC is 18:00 in Tokyo
    assert {"message_type": "sms", "status": "failed", "count": 1} in charts.status_by_type
    with db.read_session() as s:  # the status chart drawn from the page's figures is the same
        window = StatsFilter(start=T0 - 2 * D, end=T0 + 10 * D)
        assert chart_series(s, window, UTC, figures=automation_stats(s, T0, window)) == charts
    funnel = [(f["position"], f["campaigns"], f["reached"]) for f in only_template.template_funnel]
    assert funnel == [(1, 2, 2), (2, 2, 2), (3, 1, 1), (4, 1, 0)]
    assert {f["template"] for f in charts.template_funnel} == {"Welcome"}


def test_stats_rows_flatten_every_figure(db):
    build_known(db)
    with db.read_session() as s:
        rows = stats_rows(automation_stats(s, T0))
    table = {(section, key): value for section, key, value in rows}
    assert table[("campaigns_by_status", "active")] == 1
    assert table[("status_by_message_type", "sms.failed")] == 1
    assert table[("rates", "success_rate")] == pytest.approx(0.8)
    assert table[("followups", "overdue")] == 1


def test_chart_series_with_a_message_type_filter(db):
    built = build_known(db)
    with db.read_session() as s:
        charts = chart_series(
            s, StatsFilter(start=T0 - 2 * D, end=T0 + 10 * D, message_type=("sms",), template_id=built.template_id), UTC
        )
    assert charts.executions_per_day == [{"day": "2026-03-03", "message_type": "sms", "count": 1}]
    # Alpha is the only template campaign with an SMS step; every one of its steps is counted.
    assert [(f["position"], f["reached"]) for f in charts.template_funnel] == [(1, 1), (2, 1), (3, 1), (4, 0)]


def test_p95_lag_is_the_nearest_rank(db):
    # 40 executed steps late by 1..40 s: the 95th percentile is the 38th smallest.
    with db.session() as s:
        who = add_contact(s, "Pat")
        add_campaign(
            s,
            "Lags",
            who,
            [
                {
                    "at": T0 + timedelta(minutes=i),
                    "status": "sent",
                    "executed_at": T0 + timedelta(minutes=i, seconds=40 - i),
                }
                for i in range(40)
            ],
        )
    with db.read_session() as s:
        lag = automation_stats(s, T0)["lag_seconds"]
        first_five = automation_stats(s, T0, StatsFilter(start=T0, end=T0 + timedelta(minutes=5)))
    assert lag["executed"] == 40 and lag["p95"] == pytest.approx(38, abs=0.01)
    assert lag["average"] == pytest.approx(20.5, abs=0.01)
    # 40, 39, 38, 37, 36 s: ceil(0.95 * 5) = 5th smallest, the largest.
    assert first_five["lag_seconds"]["p95"] == pytest.approx(40, abs=0.01)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
def test_statistics_page_is_the_figures_and_the_charts(db, zone):
    # The page's one pass (executed steps per hour, with their counts and lag) gives
    # what automation_stats and chart_series give, and every step's local day and
    # hour, also across a DST change (New York: 8 March; Lord Howe: half an hour on
    # 5 April) and with a half-hour offset (Kolkata).
    built = build_known(db)
    late = [T0 + timedelta(days=6, hours=h, minutes=20) for h in range(19, 24)] + [
        datetime(2026, 4, 4, 14, 50, tzinfo=UTC),
        datetime(2026, 4, 4, 15, 10, tzinfo=UTC),
    ]
    with db.session() as s:
        add_campaign(
            s,
            "Around DST",
            add_contact(s, "Dee"),
            [{"at": at - timedelta(seconds=30), "status": "sent", "executed_at": at, "type": "sms"} for at in late],
        )
    tz = ZoneInfo(zone)
    window = StatsFilter(start=T0 - 2 * D, end=T0 + 40 * D)
    for filters in (
        window,
        StatsFilter(window.start, window.end, template_id=built.template_id),
        StatsFilter(window.start, window.end, message_type=("sms", "webhook")),
    ):
        with db.read_session() as s:
            figures, charts = statistics_page(s, T0, filters, tz)
            assert figures == automation_stats(s, T0, filters)
            assert charts == chart_series(s, filters, tz)
    with db.read_session() as s:
        figures, charts = statistics_page(s, T0, window, tz)
        ran = [
            at.astimezone(tz)
            for (at,) in s.execute(select(AutomationStep.executed_at).where(AutomationStep.executed_at.is_not(None)))
        ]
    assert figures["lag_seconds"]["executed"] == len(ran) == 6 + len(late)
    assert {h["hour"]: h["count"] for h in charts.busiest_hours if h["count"]} == dict(Counter(at.hour for at in ran))
    per_day: Counter[str] = Counter()
    for row in charts.executions_per_day:
        per_day[row["day"]] += row["count"]
    assert per_day == Counter(f"{at:%Y-%m-%d}" for at in ran)


def test_template_funnel_of_long_and_empty_campaigns(db):
    # On SQLite the funnel sums each campaign's steps into one integer per campaign
    # (positions 0-30); a campaign with a step further on is counted step by step,
    # and a campaign without steps counts nowhere.
    with db.session() as s:
        who = add_contact(s, "Lou")
        template = AutomationTemplate(name="Long", description="", created_at=T0, updated_at=T0)
        s.add(template)
        s.flush()
        short = [{"at": T0, "status": "sent", "executed_at": T0}, {"at": T0 + D}]
        for _ in range(3):
            add_campaign(s, "Short", who, short, template_id=template.id)
        add_campaign(s, "Empty", who, [], template_id=template.id)
        template_id, who_id = template.id, who.id
    window = StatsFilter(start=T0 - D, end=T0 + D)
    with db.read_session() as r:
        funnel = [(f["position"], f["campaigns"], f["reached"]) for f in template_funnel(r, window)]
    assert funnel == [(1, 3, 3), (2, 3, 0)]
    with db.session() as s:
        add_campaign(
            s,
            "Long",
            s.get(Contact, who_id),
            [{"at": T0 + i * D, "status": "done", "executed_at": T0 + i * D} for i in range(33)],
            template_id=template_id,
        )
    with db.read_session() as r:
        funnel = [(f["position"], f["campaigns"], f["reached"]) for f in template_funnel(r, window)]
    assert funnel == [(1, 4, 4), (2, 4, 1)] + [(p, 1, 1) for p in range(3, 34)]
