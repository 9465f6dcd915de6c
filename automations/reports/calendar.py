"""The calendar: every step as an event at its execution time (or its planned time
while it has not run), queried for one visible period at a time.

A period with few events is listed event by event; a busy one (a month of a
million-step installation) is aggregated in the database into a count per local
day or hour with the first few events of each, so the page never draws tens of
thousands of boxes. Day and hour boundaries are those of the display timezone
(`AUTOMATIONS_TIMEZONE`); `local_bucket` hides how each database computes them.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    case,
    column,
    func,
    literal,
    or_,
    select,
    union_all,
    values,
)
from sqlalchemy.orm import Session

from automations.domain.errors import NotFound, ValidationError
from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    Contact,
    UTCDateTime,
)
from automations.domain.timeutil import UTC, as_utc
from automations.services.campaigns import render_step
from automations.services.planning import zone_name

View = Literal["week", "month", "year"]
VIEWS: tuple[View, ...] = ("week", "month", "year")
# Above this many events in the visible period the page shows counts, not boxes.
AGGREGATE_THRESHOLD = 400
# How many events of a day (or hour) an aggregated period still names.
SAMPLE_PER_BUCKET = 3


@dataclass(frozen=True)
class CalendarFilter:
    """What the calendar shows; every field left empty means "all".

    `message_type` and `status` take one value or several.
    """

    campaign_id: int | None = None
    template_id: int | None = None
    contact_id: int | None = None
    message_type: str | Sequence[str] | None = None
    status: str | Sequence[str] | None = None


@dataclass(frozen=True)
class CalendarEvent:
    id: int  # the step's id
    campaign_id: int
    campaign_name: str
    contact_id: int
    contact_name: str
    message_type: str
    title: str
    status: str
    start: datetime  # executed_at when the step ran, else scheduled_at (UTC, aware)
    schedule_note: str | None = None  # why the planner moved the step (send window, holiday, cap...)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (times in ISO 8601 with offset)."""
        return {
            "id": self.id,
            "campaign_id": self.campaign_id,
            "campaign_name": self.campaign_name,
            "contact_id": self.contact_id,
            "contact_name": self.contact_name,
            "message_type": self.message_type,
            "title": self.title,
            "status": self.status,
            "start": self.start.isoformat(),
            "schedule_note": self.schedule_note,
        }


def as_list(value: str | Sequence[str] | None) -> list[str]:
    """A filter value given as one string or several, as a list (empty: no filter)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    return [v for v in value if v]


def event_time() -> ColumnElement[datetime]:
    """When a step appears on the calendar: its execution, else its planned time."""
    return func.coalesce(AutomationStep.executed_at, AutomationStep.scheduled_at, type_=UTCDateTime)


def in_range(start: datetime, end: datetime) -> ColumnElement[bool]:
    """Steps whose event time is in [start, end).

    Written as two index ranges (executed_at, and scheduled_at of steps that have
    not run) rather than over `coalesce(...)`, so both databases use the indexes.
    """
    start, end = as_utc(start), as_utc(end)
    return or_(
        and_(AutomationStep.executed_at >= start, AutomationStep.executed_at < end),
        and_(
            # Not `executed_at IS NULL`: SQLite would pick that index and read every
            # pending step instead of the scheduled_at range.
            case((AutomationStep.executed_at.is_(None), 1), else_=0) == 1,
            AutomationStep.scheduled_at >= start,
            AutomationStep.scheduled_at < end,
        ),
    )


def range_branches(start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    """`in_range` as its two disjoint halves (steps that ran; steps that have not).

    Aggregations run each half as its own query (UNION ALL): each is then an
    index-only range scan of a covering index, where the OR would read the rows.
    """
    start, end = as_utc(start), as_utc(end)
    return [
        and_(AutomationStep.executed_at >= start, AutomationStep.executed_at < end),
        and_(
            case((AutomationStep.executed_at.is_(None), 1), else_=0) == 1,
            AutomationStep.scheduled_at >= start,
            AutomationStep.scheduled_at < end,
        ),
    ]


def steps_in_range(columns: Sequence[Any], start: datetime, end: datetime, filters: CalendarFilter | None) -> Any:
    """A subquery of `columns` (plus `t`, the event time) for every step in
    [start, end) that `filters` keep: the UNION ALL of the two range halves."""
    parts = [
        _joined(
            select(event_time().label("t"), *columns)
            .select_from(AutomationStep)
            .where(branch, *filter_conditions(filters)),
            filters,
        )
        for branch in range_branches(start, end)
    ]
    return union_all(*parts).subquery()


def filter_conditions(filters: CalendarFilter | None) -> list[ColumnElement[bool]]:
    """WHERE conditions for `filters` (the campaign join is the caller's)."""
    f = filters or CalendarFilter()
    conditions: list[ColumnElement[bool]] = []
    if f.campaign_id:
        conditions.append(AutomationStep.campaign_id == f.campaign_id)
    if f.template_id:
        conditions.append(AutomationCampaign.template_id == f.template_id)
    if f.contact_id:
        conditions.append(AutomationCampaign.contact_id == f.contact_id)
    if types := as_list(f.message_type):
        conditions.append(AutomationStep.message_type.in_(types))
    if statuses := as_list(f.status):
        conditions.append(AutomationStep.status.in_(statuses))
    return conditions


def _check_range(start: datetime, end: datetime) -> None:
    if as_utc(end) <= as_utc(start):
        raise ValidationError.single("end", "must be after start")


def _event_columns() -> tuple[Any, ...]:
    return (
        AutomationStep.id,
        AutomationStep.campaign_id,
        AutomationCampaign.name,
        AutomationCampaign.contact_id,
        Contact.first_name,
        Contact.last_name,
        AutomationStep.message_type,
        AutomationStep.name,
        AutomationStep.status,
        event_time().label("start"),
        AutomationStep.schedule_note,
    )


def _event(row: Any) -> CalendarEvent:
    (sid, cid, cname, contact_id, first, last, kind, title, status, start, note) = row[:11]
    return CalendarEvent(
        id=sid,
        campaign_id=cid,
        campaign_name=cname,
        contact_id=contact_id,
        contact_name=f"{first} {last}".strip(),
        message_type=kind,
        title=title,
        status=status,
        start=_aware(start),
        schedule_note=note,
    )


def _aware(value: Any) -> datetime:
    # coalesce() results come back through UTCDateTime, but be safe with raw strings.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return as_utc(value)


def calendar_events(
    session: Session,
    start: datetime,
    end: datetime,
    filters: CalendarFilter | None = None,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> list[CalendarEvent]:
    """One event per step scheduled or executed in [start, end), in time order
    (then by step id); `limit`/`offset` page through them."""
    _check_range(start, end)

    def events(condition: ColumnElement[bool], order: Any) -> Select[Any]:
        return (
            select(*_event_columns())
            .join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
            .join(Contact, Contact.id == AutomationCampaign.contact_id)
            .where(condition, *filter_conditions(filters))
            .order_by(order, AutomationStep.id)
        )

    if limit is None:
        query = events(in_range(start, end), event_time())
        if offset:
            query = query.offset(offset)
        return [_event(row) for row in session.execute(query)]
    # A page: the first `offset + limit` of each range half, read in the order of
    # its time index (steps that ran by executed_at, the others by scheduled_at)
    # and merged, instead of sorting every event of the range to keep a few.
    wanted = offset + limit
    executed, planned = range_branches(start, end)
    found = [
        _event(row)
        for condition, order in ((executed, AutomationStep.executed_at), (planned, AutomationStep.scheduled_at))
        for row in session.execute(events(condition, order).limit(wanted))
    ]
    found.sort(key=lambda event: (event.start, event.id))
    return found[offset:wanted]


def count_events(session: Session, start: datetime, end: datetime, filters: CalendarFilter | None = None) -> int:
    """How many events [start, end) holds (two index-only counts)."""
    _check_range(start, end)
    total = 0
    for branch in range_branches(start, end):
        query = _joined(
            select(func.count()).select_from(AutomationStep).where(branch, *filter_conditions(filters)),
            filters,
        )
        total += int(session.scalar(query) or 0)
    return total


# --- local days and hours in SQL --------------------------------------------------

Bucket = Literal["day", "hour", "hour_of_day"]
_PG_FORMATS = {"day": "YYYY-MM-DD", "hour": "YYYY-MM-DD HH24", "hour_of_day": "HH24"}
_SQLITE_FORMATS = {"day": "%Y-%m-%d", "hour": "%Y-%m-%d %H", "hour_of_day": "%H"}


def utc_offsets(tz: tzinfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """The UTC offsets (seconds) of `tz` in [start, end): (from when, offset) pairs,
    the first from `start`. Found hour by hour between daily probes, which catches
    every real-world transition (they happen on the hour or half hour)."""
    start, end = as_utc(start), as_utc(end)

    def offset(at: datetime) -> int:
        delta = at.astimezone(tz).utcoffset()
        return int(delta.total_seconds()) if delta else 0

    changes = [(start, offset(start))]
    probe = start
    while probe < end:
        nxt = min(probe + timedelta(days=1), end)
        if offset(nxt) != changes[-1][1]:
            moment = probe
            while moment < nxt and offset(moment) == changes[-1][1]:
                moment += timedelta(minutes=30)
            changes.append((moment, offset(moment)))
        probe = nxt
    return changes


def local_bucket(
    session: Session,
    column: ColumnElement[datetime],
    tz: tzinfo,
    start: datetime,
    end: datetime,
    bucket: Bucket = "day",
) -> ColumnElement[str]:
    """A text key of `column`'s local day ("2026-03-02"), hour ("2026-03-02 14") or
    hour of day ("14") in `tz`, computed by the database for rows in [start, end).

    PostgreSQL converts with its own timezone database. SQLite has none, so the
    offsets in force during the range are computed here and applied with CASE.
    """
    name = session.get_bind().dialect.name
    if name == "postgresql":
        key = getattr(tz, "key", None) or "UTC"
        return func.to_char(func.timezone(key, column), _PG_FORMATS[bucket])
    fmt = _SQLITE_FORMATS[bucket]
    changes = utc_offsets(tz, start, end)

    def shifted(seconds: int) -> ColumnElement[str]:
        return func.strftime(fmt, column, literal(f"{seconds:+d} seconds"))

    if len(changes) == 1:
        return shifted(changes[0][1])
    whens = [
        (column < literal(moment, UTCDateTime), shifted(prev_offset))
        for (moment, _), (_, prev_offset) in zip(changes[1:], changes[:-1], strict=False)
    ]
    return case(*whens, else_=shifted(changes[-1][1]))


# --- periods ----------------------------------------------------------------------


def week_start(day: date) -> date:
    """The Monday of `day`'s week (weeks start on Monday, ISO 8601)."""
    return day - timedelta(days=day.weekday())


def period_days(view: View, anchor: date) -> tuple[date, date]:
    """First local day of the period holding `anchor`, and the day after its last."""
    if view == "week":
        first = week_start(anchor)
        return first, first + timedelta(days=7)
    if view == "month":
        first = anchor.replace(day=1)
        nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        return first, nxt
    if view == "year":
        return date(anchor.year, 1, 1), date(anchor.year + 1, 1, 1)
    raise ValidationError.single("view", f"must be one of {', '.join(VIEWS)}")


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The UTC instant at which local `day` begins."""
    return as_utc(datetime.combine(day, time(0), tzinfo=tz))


def period_bounds(view: View, anchor: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The UTC range [start, end) of the week, month or year holding `anchor`."""
    first, after = period_days(view, anchor)
    return local_midnight(first, tz), local_midnight(after, tz)


def shift_period(view: View, anchor: date, steps: int) -> date:
    """The anchor `steps` periods later (or earlier, when negative): Previous/Next."""
    if view == "week":
        return anchor + timedelta(weeks=steps)
    if view == "month":
        index = anchor.year * 12 + anchor.month - 1 + steps
        year, month = divmod(index, 12)
        last = _calendar.monthrange(year, month + 1)[1]
        return date(year, month + 1, min(anchor.day, last))
    if view == "year":
        year = anchor.year + steps
        return anchor.replace(year=year, day=28) if (anchor.month, anchor.day) == (2, 29) else anchor.replace(year=year)
    raise ValidationError.single("view", f"must be one of {', '.join(VIEWS)}")


def month_grid(year: int, month: int) -> list[list[date]]:
    """The weeks (Monday to Sunday) a month view shows, days of the neighbouring months included."""
    first = date(year, month, 1)
    day = week_start(first)
    last = date(year, month, _calendar.monthrange(year, month)[1])
    weeks: list[list[date]] = []
    while day <= last:
        weeks.append([day + timedelta(days=i) for i in range(7)])
        day += timedelta(days=7)
    return weeks


def period_label(view: View, anchor: date) -> str:
    """The period's heading: "Week 10 · Mon 2 Mar 2026 – Sun 8 Mar 2026", "March 2026", "2026"."""
    if view == "week":
        first, after = period_days("week", anchor)
        return f"Week {first.isocalendar()[1]} · {day_label(first)} – {day_label(after - timedelta(days=1))}"
    if view == "month":
        return f"{MONTH_NAMES[anchor.month - 1]} {anchor.year}"
    return str(anchor.year)


# --- how the calendar writes days and times ---------------------------------------
#
# The dashboard has no per-user locale, so the calendar writes every day one way,
# day before month with the month spelled out ("Mon 2 Mar 2026", never 03/02), and
# times on the 24-hour clock ("14:05"). The names are spelled here rather than with
# strftime's %a/%b, which follow the server process's locale. The calendar component is
# given the "en-GB" locale, whose day headers ("Mon 2") and times ("09:00") match.

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# The jump-to-date input only takes numeric formats: the same day-month-year order.
DATE_INPUT_FORMAT = "DD/MM/YYYY"


def day_label(day: date) -> str:
    """A day as the calendar writes it: "Mon 2 Mar 2026"."""
    return f"{column_label(day)} {MONTH_NAMES[day.month - 1][:3]} {day.year}"


def column_label(day: date) -> str:
    """A day as a column header under a heading that names the month: "Mon 2"."""
    return f"{WEEKDAY_NAMES[day.weekday()]} {day.day}"


def time_label(moment: datetime, tz: tzinfo) -> str:
    """The local time of a UTC instant: "14:05"."""
    return f"{as_utc(moment).astimezone(tz):%H:%M}"


def moment_label(moment: datetime, tz: tzinfo) -> str:
    """A UTC instant as a local day and time: "Mon 2 Mar 2026 14:05"."""
    local = as_utc(moment).astimezone(tz)
    return f"{day_label(local.date())} {local:%H:%M}"


def local_day(moment: datetime, tz: tzinfo) -> date:
    """The local day of a UTC instant."""
    return as_utc(moment).astimezone(tz).date()


# --- aggregated periods -----------------------------------------------------------


RAN = ("sent", "done", "failed", "skipped")  # a step with one of these was executed
OPEN = ("pending", "running")  # ... with one of these is still scheduled


@dataclass
class BucketSummary:
    """The events of one local day or hour, counted, with the first few named.

    A year's days (`day_totals`) carry the three counts only: `by_type` and
    `by_status` stay empty there."""

    key: str  # "2026-03-02" or "2026-03-02 14"
    total: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    first: list[CalendarEvent] = field(default_factory=list)
    executed: int = 0  # sent, done, failed or skipped
    scheduled: int = 0  # pending or running

    def add(self, kind: str, status: str, count: int) -> None:
        """Count `count` events of this type and status."""
        self.total += count
        self.by_type[kind] = self.by_type.get(kind, 0) + count
        self.by_status[status] = self.by_status.get(status, 0) + count
        self.executed += count if status in RAN else 0
        self.scheduled += count if status in OPEN else 0


def _joined(query: Any, filters: CalendarFilter | None) -> Any:
    if filters is not None and (filters.template_id or filters.contact_id):
        return query.join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
    return query


def event_counts(
    session: Session,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    filters: CalendarFilter | None = None,
    *,
    bucket: Bucket = "day",
    sample: int = 0,
) -> list[BucketSummary]:
    """Events in [start, end) counted per local day or hour (by type and status), in
    one GROUP BY; with `sample`, the first `sample` events of each bucket too."""
    _check_range(start, end)
    steps = steps_in_range([AutomationStep.message_type, AutomationStep.status], start, end, filters)
    key = local_bucket(session, steps.c.t, tz, start, end, bucket).label("bucket")
    counted = session.execute(
        select(key, steps.c.message_type, steps.c.status, func.count()).group_by(
            key, steps.c.message_type, steps.c.status
        )
    ).all()
    buckets: dict[str, BucketSummary] = {}
    for name, kind, status, count in counted:
        buckets.setdefault(name, BucketSummary(key=name)).add(kind, status, int(count))
    if sample > 0 and buckets:
        for summary in buckets.values():
            summary.first = _first_events(session, summary.key, tz, filters, sample)
    return [buckets[k] for k in sorted(buckets)]


def day_totals(
    session: Session,
    first: date,
    after: date,
    tz: tzinfo,
    filters: CalendarFilter | None = None,
) -> list[BucketSummary]:
    """Events per local day from `first` to the day before `after`: how many, how many
    executed and how many still scheduled (the year view), days without any left out.

    A GROUP BY on the local day would sort every event of the year (1.3 s for a
    million on SQLite). Here the days' UTC bounds are computed in Python (so DST is
    right on both databases) and each day is counted by index range seeks from a
    VALUES list: a few tenths of a second.
    """
    days: list[tuple[str, datetime, datetime]] = []
    day = first
    while day < after:
        nxt = day + timedelta(days=1)
        days.append((day.isoformat(), local_midnight(day, tz), local_midnight(nxt, tz)))
        day = nxt
    if not days:
        return []
    bounds = (
        values(column("k", String), column("s", UTCDateTime), column("e", UTCDateTime), name="days")
        .data(days)
        .cte("days")
    )
    ran_that_day, planned_that_day = (
        and_(AutomationStep.executed_at >= bounds.c.s, AutomationStep.executed_at < bounds.c.e),
        and_(
            case((AutomationStep.executed_at.is_(None), 1), else_=0) == 1,
            AutomationStep.scheduled_at >= bounds.c.s,
            AutomationStep.scheduled_at < bounds.c.e,
        ),
    )

    def count(*conditions: ColumnElement[bool]) -> Any:
        query = select(func.count()).select_from(AutomationStep).where(*conditions, *filter_conditions(filters))
        return _joined(query, filters).scalar_subquery()

    # The status tests are CASEs so that the time ranges stay the index seeks.
    ran = case((AutomationStep.status.in_(RAN), 1), else_=0) == 1
    still_open = case((AutomationStep.status.in_(OPEN), 1), else_=0) == 1
    rows = session.execute(
        select(
            bounds.c.k,
            count(ran_that_day),
            count(ran_that_day, ran),
            count(planned_that_day),
            count(planned_that_day, still_open),
        )
    ).all()
    return [
        BucketSummary(key=key, total=int(a + b), executed=int(executed), scheduled=int(scheduled))
        for key, a, executed, b, scheduled in rows
        if a or b
    ]


def _bucket_bounds(key: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """The UTC range of a bucket key: a local day "2026-03-02" or hour "2026-03-02 14"."""
    if len(key) == 10:
        day = date.fromisoformat(key)
        return local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)
    start = datetime.strptime(key, "%Y-%m-%d %H").replace(tzinfo=tz)
    return as_utc(start), as_utc(start) + timedelta(hours=1)


def _first_events(
    session: Session, key: str, tz: tzinfo, filters: CalendarFilter | None, sample: int
) -> list[CalendarEvent]:
    """The first `sample` events of one bucket: each range half read in index order
    with a LIMIT, so a day of thousands of events costs two tiny queries."""
    start, end = _bucket_bounds(key, tz)
    found: list[CalendarEvent] = []
    for branch, order in zip(
        range_branches(start, end), (AutomationStep.executed_at, AutomationStep.scheduled_at), strict=False
    ):
        rows = session.execute(
            select(*_event_columns())
            .join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
            .join(Contact, Contact.id == AutomationCampaign.contact_id)
            .where(branch, *filter_conditions(filters))
            .order_by(order, AutomationStep.id)
            .limit(sample)
        ).all()
        found += [_event(row) for row in rows]
    return sorted(found, key=lambda e: (e.start, e.id))[:sample]


@dataclass(frozen=True)
class CalendarPeriod:
    """What the calendar page draws for one period."""

    view: View
    anchor: date
    start: datetime  # UTC
    end: datetime
    total: int
    aggregated: bool  # True: `events` is empty, read `buckets`
    events: list[CalendarEvent]
    buckets: list[BucketSummary]
    tz: tzinfo | None = None  # the display timezone the days are counted in
    # An aggregated week (counted per hour): the first events of each local day
    # ("2026-03-02"), so the page can still name some under its heatmap.
    day_samples: dict[str, list[CalendarEvent]] = field(default_factory=dict)


def calendar_period(
    session: Session,
    view: View,
    anchor: date,
    tz: tzinfo,
    filters: CalendarFilter | None = None,
    *,
    threshold: int = AGGREGATE_THRESHOLD,
    sample: int = SAMPLE_PER_BUCKET,
) -> CalendarPeriod:
    """The week, month or year holding `anchor`: every event when there are at most
    `threshold`, otherwise counts per day (per hour for a week) with the first
    `sample` events of each day.

    A year view is always counted per day, counts only (it is drawn as twelve small month grids)."""
    start, end = period_bounds(view, anchor, tz)
    if view == "year":
        totals = day_totals(session, *period_days(view, anchor), tz, filters)
        return CalendarPeriod(view, anchor, start, end, sum(d.total for d in totals), True, [], totals, tz)
    total = count_events(session, start, end, filters)
    if total <= threshold:
        return CalendarPeriod(
            view, anchor, start, end, total, False, calendar_events(session, start, end, filters), [], tz
        )
    if view == "month":
        summaries = event_counts(session, start, end, tz, filters, bucket="day", sample=sample)
        return CalendarPeriod(view, anchor, start, end, total, True, [], summaries, tz)
    # A busy week is counted per hour (a heatmap); naming the first events of 168
    # hours would cost 336 queries, so they are named per day (14 small queries).
    summaries = event_counts(session, start, end, tz, filters, bucket="hour")
    days = sorted({b.key[:10] for b in summaries})
    samples = {day: _first_events(session, day, tz, filters, sample) for day in days} if sample > 0 else {}
    return CalendarPeriod(view, anchor, start, end, total, True, [], summaries, tz, samples)


# --- shapes the page draws ----------------------------------------------------------


@dataclass(frozen=True)
class DayCell:
    """One day of a month grid."""

    day: date
    in_month: bool
    summary: BucketSummary | None


def month_cells(period: CalendarPeriod) -> list[list[DayCell]]:
    """The month grid (Monday weeks) with each day's counts; events listed one by one
    are counted per day here too, so both shapes draw the same grid."""
    by_day = {b.key: b for b in period.buckets}
    if not period.aggregated:
        by_day = {}
        for event in period.events:
            key = f"{_local(event.start, period):%Y-%m-%d}"
            summary = by_day.setdefault(key, BucketSummary(key=key))
            summary.add(event.message_type, event.status, 1)
            if len(summary.first) < SAMPLE_PER_BUCKET:
                summary.first.append(event)
    anchor = period.anchor
    return [
        [DayCell(day, day.month == anchor.month, by_day.get(f"{day:%Y-%m-%d}")) for day in week]
        for week in month_grid(anchor.year, anchor.month)
    ]


def _local(moment: datetime, period: CalendarPeriod) -> datetime:
    return moment.astimezone(period.tz) if period.tz else moment


def hour_grid(period: CalendarPeriod) -> list[dict[str, Any]]:
    """An aggregated week as rows of all 24 hours ("00:00".."23:00") with a count per
    day column ("Mon 2"...), for a heatmap or a table."""
    first, _ = period_days("week", period.anchor)
    days = [first + timedelta(days=i) for i in range(7)]
    counts = {b.key: b.total for b in period.buckets}
    return [
        {"hour": f"{hour:02d}:00", **{column_label(d): counts.get(f"{d:%Y-%m-%d} {hour:02d}", 0) for d in days}}
        for hour in range(24)
    ]


SHADES = 4  # how many shades of busyness the year view draws, beyond "nothing"


@dataclass(frozen=True)
class YearDay:
    """One day of the year view: its steps counted, and how busy it is."""

    day: date
    total: int
    executed: int  # sent, done, failed or skipped
    scheduled: int  # pending or running
    shade: int  # 0 (no steps) to SHADES (as busy as the busiest day of the year)


@dataclass(frozen=True)
class YearMonth:
    """One small month grid of the year view."""

    month: int
    name: str  # "March"
    weeks: list[list[YearDay | None]]  # Monday to Sunday; None outside the month


def shade(total: int, busiest: int) -> int:
    """How dark a day with `total` steps is drawn when the busiest day has `busiest`:
    0 for none, else 1 to SHADES in proportion (rounded up, so one step shows)."""
    if total <= 0 or busiest <= 0:
        return 0
    return min(SHADES, -(-SHADES * total // busiest))


def year_months(period: CalendarPeriod) -> list[YearMonth]:
    """The year view: twelve month grids (Monday weeks) with each day's counts,
    from the per-day counts the database made (`calendar_period` for a year)."""
    year = period.anchor.year
    by_day = {b.key: b for b in period.buckets}
    busiest = max((b.total for b in period.buckets), default=0)

    def cell(day: date, month: int) -> YearDay | None:
        if day.month != month:
            return None
        b = by_day.get(day.isoformat())
        total = b.total if b else 0
        return YearDay(day, total, b.executed if b else 0, b.scheduled if b else 0, shade(total, busiest))

    return [
        YearMonth(month, MONTH_NAMES[month - 1], [[cell(d, month) for d in week] for week in month_grid(year, month)])
        for month in range(1, 13)
    ]


def busiest_days(period: CalendarPeriod, top: int = 10) -> list[tuple[date, int]]:
    """The busiest days of an aggregated period, most steps first (then by day)."""
    ranked = sorted(period.buckets, key=lambda b: (-b.total, b.key))[:top]
    return [(date.fromisoformat(b.key[:10]), b.total) for b in ranked]


# --- one day in full ------------------------------------------------------------------

# The most events a day lists; a busier day names these and counts the rest.
DAY_LIST_LIMIT = 500


@dataclass(frozen=True)
class CalendarDay:
    """Every event of one local day (the first `DAY_LIST_LIMIT`), and how many there are."""

    day: date
    start: datetime  # UTC
    end: datetime
    total: int
    events: list[CalendarEvent]


def calendar_day(
    session: Session,
    day: date,
    tz: tzinfo,
    filters: CalendarFilter | None = None,
    *,
    limit: int = DAY_LIST_LIMIT,
) -> CalendarDay:
    """The events of local `day` in time order: a count and one page of index reads,
    so a day of a busy installation costs what a small one does."""
    start, end = local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)
    total = count_events(session, start, end, filters)
    events = calendar_events(session, start, end, filters, limit=limit) if total else []
    return CalendarDay(day, start, end, total, events)


# --- one event in full --------------------------------------------------------------


@dataclass(frozen=True)
class EventDetail:
    event: CalendarEvent
    template_id: int | None
    campaign_status: str
    position: int
    scheduled_at: datetime
    executed_at: datetime | None
    attempts: int
    last_error: str | None
    subject: str  # personalised for the contact
    body: str
    webhook_url: str | None
    # Why the planned time is not the plain delay (None: it is), and the IANA zone
    # the campaign plans its steps in (the contact's own by default).
    schedule_note: str | None
    zone: str


def event_detail(session: Session, step_id: int) -> EventDetail:
    """A calendar event with its campaign, contact, personalised content and status."""
    step = session.get(AutomationStep, step_id)
    if step is None:
        raise NotFound("step", step_id)
    campaign = step.campaign
    contact = campaign.contact
    try:
        subject, body = render_step(step, contact, campaign.name)
    except Exception as exc:  # a broken template is shown as such, never raised to the page
        subject, body = "", f"(cannot render: {exc})"
    event = CalendarEvent(
        id=step.id,
        campaign_id=campaign.id,
        campaign_name=campaign.name,
        contact_id=contact.id,
        contact_name=contact.full_name,
        message_type=step.message_type,
        title=step.name,
        status=step.status,
        start=as_utc(step.executed_at or step.scheduled_at),
        schedule_note=step.schedule_note,
    )
    return EventDetail(
        event=event,
        template_id=campaign.template_id,
        campaign_status=campaign.status,
        position=step.position,
        scheduled_at=step.scheduled_at,
        executed_at=step.executed_at,
        attempts=step.attempts,
        last_error=step.last_error,
        subject=subject,
        body=body,
        webhook_url=step.webhook_url,
        schedule_note=step.schedule_note,
        zone=zone_name(campaign.schedule, contact.timezone),
    )


# How many campaigns one look-up names; far below every database's limit of bound parameters.
_ZONE_BATCH = 500


def planning_zones(session: Session, campaign_ids: Sequence[int]) -> dict[int, str]:
    """The zone each campaign plans its steps in (the contact's own by default), by
    campaign id: for the events a page shows, read by primary key, never per period."""
    ids = sorted(set(campaign_ids))
    zones: dict[int, str] = {}
    for first in range(0, len(ids), _ZONE_BATCH):
        rows = session.execute(
            select(AutomationCampaign.id, AutomationCampaign.schedule, Contact.timezone)
            .join(Contact, Contact.id == AutomationCampaign.contact_id)
            .where(AutomationCampaign.id.in_(ids[first : first + _ZONE_BATCH]))
        )
        zones.update({campaign_id: zone_name(schedule, timezone) for campaign_id, schedule, timezone in rows})
    return zones


__all__ = [
    "AGGREGATE_THRESHOLD",
    "BucketSummary",
    "CalendarEvent",
    "CalendarFilter",
    "CalendarPeriod",
    "EventDetail",
    "UTC",
    "calendar_events",
    "calendar_period",
    "count_events",
    "event_counts",
    "event_detail",
    "event_time",
    "filter_conditions",
    "in_range",
    "local_bucket",
    "month_grid",
    "period_bounds",
    "period_days",
    "period_label",
    "shift_period",
    "week_start",
    "DATE_INPUT_FORMAT",
    "DAY_LIST_LIMIT",
    "CalendarDay",
    "DayCell",
    "YearDay",
    "YearMonth",
    "busiest_days",
    "calendar_day",
    "column_label",
    "day_label",
    "day_totals",
    "hour_grid",
    "local_day",
    "moment_label",
    "month_cells",
    "planning_zones",
    "shade",
    "time_label",
    "year_months",
]
