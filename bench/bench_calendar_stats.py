"""How long the calendar's and the statistics page's queries take on a big database.

    python -m automations demo --contacts 100000     # about 1,000,000 steps
    python bench/bench_calendar_stats.py [--database-url URL] [--repeat 3]

Prints the best of `--repeat` runs of each query (the first run warms the cache).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select  # noqa: E402

from automations.domain.config import get_settings  # noqa: E402
from automations.domain.db import Database  # noqa: E402
from automations.domain.models import AutomationStep  # noqa: E402
from automations.domain.timeutil import utcnow  # noqa: E402
from automations.reports.calendar import (  # noqa: E402
    CalendarFilter,
    calendar_events,
    calendar_period,
    event_counts,
    period_bounds,
)
from automations.reports.stats import (  # noqa: E402
    StatsFilter,
    automation_stats,
    chart_series,
    statistics_page,
)


def best(repeat: int, work: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("AUTOMATIONS_DATABASE_URL"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    db = Database(args.database_url)
    tz = get_settings().tz
    now = utcnow()
    today = now.astimezone(tz).date()
    with db.read_session() as s:
        steps = s.scalar(select(func.count()).select_from(AutomationStep))
        # The busiest month of the data set, to time the worst case.
        first = s.scalar(select(func.min(AutomationStep.scheduled_at)))
    print(f"database: {db.engine.dialect.name}, {steps:,} steps, timezone {tz}")
    rows: list[tuple[str, float, str]] = []

    def run(label: str, work: Callable[[Any], Any], describe: Callable[[Any], str]) -> None:
        def once() -> Any:
            with db.read_session() as s:
                return work(s)

        seconds, result = best(args.repeat, once)
        rows.append((label, seconds, describe(result)))
        print(f"{label:<52} {seconds * 1000:8.1f} ms  {describe(result)}")

    week_start, week_end = period_bounds("week", today, tz)
    run(
        "calendar_events: this week", lambda s: calendar_events(s, week_start, week_end), lambda r: f"{len(r):,} events"
    )
    month_start, month_end = period_bounds("month", today, tz)
    run(
        "calendar_events: this month, limit 500",
        lambda s: calendar_events(s, month_start, month_end, limit=500),
        lambda r: f"{len(r):,} events",
    )
    for view in ("week", "month", "year"):
        run(
            f"calendar_period: {view} view (what the page draws)",
            lambda s, v=view: calendar_period(s, v, today, tz),
            lambda p: (
                f"{p.total:,} events, "
                f"{'aggregated into ' + str(len(p.buckets)) + ' buckets' if p.aggregated else 'listed'}"
            ),
        )
    run(
        "calendar_period: month view, email only",
        lambda s: calendar_period(s, "month", today, tz, CalendarFilter(message_type="email")),
        lambda p: f"{p.total:,} events",
    )
    run(
        "event_counts: per hour, this week",
        lambda s: event_counts(s, week_start, week_end, tz, bucket="hour"),
        lambda r: f"{len(r)} hours",
    )
    run(
        "automation_stats: everything",
        lambda s: automation_stats(s, now),
        lambda r: f"{r['steps_total']:,} steps, success {r['success_rate']:.3f}",
    )
    last30 = StatsFilter(start=now - timedelta(days=30), end=now)
    run(
        "automation_stats: last 30 days",
        lambda s: automation_stats(s, now, last30),
        lambda r: f"{r['steps_total']:,} steps",
    )
    run(
        "chart_series: last 30 days",
        lambda s: chart_series(s, last30, tz),
        lambda r: f"{sum(x['count'] for x in r.executions_per_day):,} executions",
    )
    # What the page runs: statistics_page, the figures and the charts in one read.
    run("statistics page: stats + charts, last 30 days", lambda s: statistics_page(s, now, last30, tz), lambda r: "")
    run(
        "statistics page: stats + charts, whole history",
        lambda s: statistics_page(s, now, StatsFilter(start=first, end=now + timedelta(days=400)), tz),
        lambda r: "",
    )
    db.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
