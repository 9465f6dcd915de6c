"""How campaigns perform: key figures and chart series, every one aggregated in SQL.

`automation_stats` is the figures (the REST API's `/stats/` and the statistics
page's KPIs); `chart_series` the data of the page's charts; `statistics_page` both
at once, reading each executed step of the range once; `lag_spread` the median and
the largest lag, which the page shows beside the average and the p95. All take the
same filters (a date range over step times, a template, a message type).

Definitions:
- a step's time is its execution, or its planned time while it has not run (as
  on the calendar); a campaign is in the range when it starts in it;
- success rate = (sent + done) / (sent + done + failed); skipped steps (opt-outs)
  are neither;
- scheduling lag = executed_at - scheduled_at of executed steps (p50 and p95 are
  nearest-rank percentiles);
- completion rate = completed / (completed + canceled) campaigns;
- a follow-up is overdue when it is pending and due before now;
- a step was moved by the send window, a holiday, SMS quiet hours or a frequency
  cap when its `schedule_note` gives that reason; these counts take the steps
  *planned* in the range (by `scheduled_at`), and a step moved for two reasons
  counts under both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    AutomationTemplate,
    CampaignStatus,
    FollowUpStatus,
    MessageType,
    ScheduledFollowUp,
    StepStatus,
)
from automations.domain.timeutil import UTC, as_utc
from automations.reports.calendar import (
    CalendarFilter,
    as_list,
    filter_conditions,
    in_range,
    local_bucket,
    range_branches,
    steps_in_range,
    utc_offsets,
)

SUCCESS = (StepStatus.SENT.value, StepStatus.DONE.value)
EXECUTED = (*SUCCESS, StepStatus.FAILED.value, StepStatus.SKIPPED.value)
# Far enough to hold any step, yet representable on both databases.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class StatsFilter:
    """Everything on the statistics page is filtered by these (None: no filter)."""

    start: datetime | None = None
    end: datetime | None = None
    template_id: int | None = None
    message_type: str | Sequence[str] | None = None  # one type or several

    @property
    def bounded(self) -> bool:
        return self.start is not None or self.end is not None

    def range(self) -> tuple[datetime, datetime]:
        return as_utc(self.start or _EARLIEST), as_utc(self.end or _LATEST)

    def calendar_filter(self) -> CalendarFilter:
        return CalendarFilter(template_id=self.template_id, message_type=self.message_type)


def _step_query(columns: list[Any], filters: StatsFilter) -> Any:
    """SELECT columns FROM steps [JOIN campaigns] WHERE the page's filters hold."""
    query = select(*columns).select_from(AutomationStep)
    if filters.template_id:
        query = query.join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
    conditions = filter_conditions(filters.calendar_filter())
    if filters.bounded:
        conditions.append(in_range(*filters.range()))
    return query.where(*conditions)


def _campaign_conditions(filters: StatsFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.template_id:
        conditions.append(AutomationCampaign.template_id == filters.template_id)
    if types := as_list(filters.message_type):
        # An alias, so the subquery also works inside queries that read the steps.
        other = aliased(AutomationStep)
        conditions.append(
            exists().where(and_(other.campaign_id == AutomationCampaign.id, other.message_type.in_(types)))
        )
    if filters.bounded:
        start, end = filters.range()
        conditions.append(and_(AutomationCampaign.start_at >= start, AutomationCampaign.start_at < end))
    return conditions


def _type_status_counts(session: Session, filters: StatsFilter) -> list[tuple[str, str, int]]:
    """Steps counted by message type and status (index-only when the range is set)."""
    if filters.bounded:
        steps = steps_in_range(
            [AutomationStep.message_type, AutomationStep.status], *filters.range(), filters.calendar_filter()
        )
        query = select(steps.c.message_type, steps.c.status, func.count()).group_by(
            steps.c.message_type, steps.c.status
        )
    else:
        query = _step_query([AutomationStep.message_type, AutomationStep.status, func.count()], filters).group_by(
            AutomationStep.message_type, AutomationStep.status
        )
    return [(k, st, int(n)) for k, st, n in session.execute(query.order_by(None))]


def has_run() -> ColumnElement[bool]:
    """The step's status is one of a step that ran (EXECUTED).

    Wrapped in a CASE so that SQLite cannot use the (status, due_at) index for it:
    with that index it would read every executed step's row, where the executed_at
    range over the covering index reads no row at all (12x faster on 1M steps).
    """
    return case((AutomationStep.status.in_(EXECUTED), 1), else_=0) == 1


def _executed_query(columns: list[Any], filters: StatsFilter) -> Any:
    """SELECT columns over the executed steps whose execution is in the range."""
    unbounded = StatsFilter(None, None, filters.template_id, filters.message_type)
    query = _step_query(columns, unbounded).where(AutomationStep.executed_at.is_not(None), has_run())
    if filters.bounded:
        start, end = filters.range()
        query = query.where(AutomationStep.executed_at >= start, AutomationStep.executed_at < end)
    return query


def _lag_seconds(session: Session) -> ColumnElement[float]:
    if session.get_bind().dialect.name == "postgresql":
        return cast(
            ColumnElement[float], func.extract("epoch", AutomationStep.executed_at - AutomationStep.scheduled_at)
        )
    return (func.julianday(AutomationStep.executed_at) - func.julianday(AutomationStep.scheduled_at)) * 86400.0


@dataclass
class _StepCounts:
    """The steps behind the figures (and, per local hour, the charts)."""

    matrix: dict[tuple[str, str], int]  # (message type, status): steps in the range
    executed: int  # executed steps (sent, done, failed, skipped) that ran in the range
    lag_total: float  # their summed scheduling lag, in seconds
    # (local hour "2026-03-02 14", message type, status, steps) of the executed steps.
    per_hour: list[tuple[str, str, str, int]] | None = None


def _count_steps(session: Session, filters: StatsFilter) -> _StepCounts:
    """Steps by type and status, and the executed steps' count and summed lag."""
    matrix = {(kind, status): n for kind, status, n in _type_status_counts(session, filters)}
    count, total = session.execute(_executed_query([func.count(), func.sum(_lag_seconds(session))], filters)).one()
    return _StepCounts(matrix, int(count or 0), float(total or 0))


def _count_steps_per_hour(session: Session, filters: StatsFilter, tz: tzinfo, *, not_run: bool = True) -> _StepCounts:
    """`_count_steps`, with the executed steps per local hour, for a bounded range.

    The steps that ran in the range are read once, for every figure and chart: one
    GROUP BY (hour, type, status) over the executed_at covering index gives their
    counts, their lag and the charts. The steps that have not run (planned in the
    range) are counted by type and status apart (`not_run`; False leaves them out).
    """
    start, end = filters.range()
    unbounded = StatsFilter(None, None, filters.template_id, filters.message_type)

    def per_hour_rows(key: ColumnElement[str]) -> list[Any]:
        key = key.label("hour")
        return list(
            session.execute(
                _step_query(
                    [
                        key,
                        AutomationStep.message_type,
                        AutomationStep.status,
                        func.count(),
                        func.sum(_lag_seconds(session)),
                    ],
                    unbounded,
                )
                .where(AutomationStep.executed_at >= start, AutomationStep.executed_at < end)
                .group_by(key, AutomationStep.message_type, AutomationStep.status)
            ).all()
        )

    # On SQLite a stored time is text beginning with its UTC hour ("2026-03-02 14"):
    # grouping on that prefix, and naming each UTC hour's local hour here, is much
    # cheaper than strftime on every step. It holds while every UTC hour is one
    # local hour: offsets of whole hours, changing on the hour (checked per hour).
    local = None
    if session.get_bind().dialect.name == "sqlite" and all(
        offset % 3600 == 0 for _, offset in utc_offsets(tz, start, end)
    ):
        rows = per_hour_rows(func.substr(AutomationStep.executed_at, 1, 13))
        local = _local_hours({row[0] for row in rows}, tz)
    if local is not None:
        rows = [(local[key], *rest) for key, *rest in rows]
    else:
        rows = per_hour_rows(
            local_bucket(session, cast(ColumnElement[datetime], AutomationStep.executed_at), tz, start, end, "hour")
        )
    matrix: dict[tuple[str, str], int] = {}
    per_hour: dict[tuple[str, str, str], int] = {}
    executed, lag_total = 0, 0.0
    for hour, kind, status, count, lag in rows:
        matrix[(kind, status)] = matrix.get((kind, status), 0) + int(count)
        if status in EXECUTED:
            executed += int(count)
            lag_total += float(lag or 0)
            per_hour[(hour, kind, status)] = per_hour.get((hour, kind, status), 0) + int(count)
    if not_run:
        query = _step_query([AutomationStep.message_type, AutomationStep.status, func.count()], unbounded)
        for kind, status, count in session.execute(
            query.where(range_branches(start, end)[1]).group_by(AutomationStep.message_type, AutomationStep.status)
        ):
            matrix[(kind, status)] = matrix.get((kind, status), 0) + int(count)
    return _StepCounts(
        matrix, executed, lag_total, [(hour, kind, status, n) for (hour, kind, status), n in per_hour.items()]
    )


def _local_hours(utc_keys: set[str], tz: tzinfo) -> dict[str, str] | None:
    """Each UTC hour ("2026-03-02 14") as the local hour it is in `tz`; None when the
    offset changes within one of them (or is not of whole hours)."""
    local: dict[str, str] = {}
    for key in utc_keys:
        begins = datetime.strptime(key, "%Y-%m-%d %H").replace(tzinfo=UTC)
        offset = begins.astimezone(tz).utcoffset()
        last = (begins + timedelta(hours=1, microseconds=-1)).astimezone(tz).utcoffset()
        if offset != last or (offset and offset.total_seconds() % 3600):
            return None
        local[key] = begins.astimezone(tz).strftime("%Y-%m-%d %H")
    return local


def _percentile(session: Session, filters: StatsFilter, count: int, fraction: float) -> float | None:
    """The nearest-rank percentile `fraction` (0.95: p95) of the lag, in seconds, of the
    `count` executed steps."""
    if not count:
        return None
    lag = _lag_seconds(session)
    if session.get_bind().dialect.name == "postgresql":
        value = session.scalar(_executed_query([func.percentile_disc(fraction).within_group(lag)], filters))
    else:
        # Nearest rank: the ceil(fraction * n)-th smallest lag. Read from whichever end
        # is nearer, so that the sort keeps the fewest rows (for the p95, the top 5 %).
        rank = max(math.ceil(fraction * count), 1)
        if rank > count - rank + 1:
            query = _executed_query([lag], filters).order_by(lag.desc()).offset(count - rank)
        else:
            query = _executed_query([lag], filters).order_by(lag).offset(rank - 1)
        value = session.scalar(query.limit(1))
    return None if value is None else float(value)


def _p95(session: Session, filters: StatsFilter, count: int) -> float | None:
    """The nearest-rank 95th percentile of the lag (seconds) of the `count` executed steps."""
    return _percentile(session, filters, count, 0.95)


def lag_spread(session: Session, filters: StatsFilter, executed: int) -> dict[str, float | None]:
    """How the scheduling lag of the executed steps is spread, beyond the figures'
    average and p95: `p50` (the median, nearest rank) and `max`, in seconds (None
    when no step ran).

    `executed` is the figures' `lag_seconds["executed"]` for the same filters (so the
    steps are not counted again). A few very late steps (the runner was stopped, a
    campaign paused) pull the average above the median, and even above the p95.
    """
    if not executed:
        return {"p50": None, "max": None}
    largest = session.scalar(_executed_query([func.max(_lag_seconds(session))], filters))
    return {
        "p50": _percentile(session, filters, executed, 0.5),
        "max": None if largest is None else float(largest),
    }


def automation_stats(
    session: Session,
    now: datetime,
    filters: StatsFilter | None = None,
) -> dict[str, Any]:
    """The key figures, JSON-ready.

    Keys: `campaigns_by_status`, `steps_by_status`, `steps_by_message_type`,
    `status_by_message_type`, `steps_total`, `success_rate` (None when nothing
    was judged), `completion_rate`, `lag_seconds` {average, p95, executed},
    `followups` {pending, overdue}, `moved` {window, holidays, quiet_hours,
    frequency_cap} (steps planned in the range that each moved), `generated_at`.
    """
    filters = filters or StatsFilter()
    return _figures(session, as_utc(now), filters, _count_steps(session, filters))


def statistics_page(
    session: Session, now: datetime, filters: StatsFilter, tz: tzinfo
) -> tuple[dict[str, Any], ChartSeries]:
    """`automation_stats` and `chart_series` for `filters` (which needs a start and an
    end), the same as those two give, reading each executed step of the range once."""
    counts = _count_steps_per_hour(session, filters, tz)
    return _figures(session, as_utc(now), filters, counts), _charts(session, filters, counts)


# The reasons a step moved, as `schedule_note` words them (reasons are joined by
# "; "): each kind of move by the beginnings of its reasons. "The send window lies
# inside SMS quiet hours" is a quiet-hours move: the window did not stop the step.
MOVE_REASONS: dict[str, tuple[str, ...]] = {
    "window": ("outside the send window",),
    "holidays": ("holiday (",),
    "quiet_hours": ("SMS quiet hours", "the send window lies inside SMS quiet hours"),
    "frequency_cap": ("frequency cap",),
}


def _gives_reason(prefixes: Sequence[str]) -> ColumnElement[bool]:
    """The step's note has a reason beginning with one of `prefixes` (first, or after "; ")."""
    note = AutomationStep.schedule_note
    return or_(*(condition for p in prefixes for condition in (note.like(f"{p}%"), note.like(f"%; {p}%"))))


def moved_counts_query(filters: StatsFilter) -> Any:
    """SELECT, in one row, how many of the steps planned in the range each kind of
    move held back (`MOVE_REASONS`, in order).

    The range is on `scheduled_at` (its index); only the rows of steps that carry a
    note are summed, each kind by a SUM(CASE ...), so the database does the counting.
    """
    sums = [
        func.coalesce(func.sum(case((_gives_reason(prefixes), 1), else_=0)), 0).label(kind)
        for kind, prefixes in MOVE_REASONS.items()
    ]
    query = select(*sums).select_from(AutomationStep)
    if filters.template_id:
        query = query.join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
    conditions = [*filter_conditions(filters.calendar_filter()), AutomationStep.schedule_note.is_not(None)]
    if filters.bounded:
        start, end = filters.range()
        conditions += [AutomationStep.scheduled_at >= start, AutomationStep.scheduled_at < end]
    return query.where(*conditions)


def moved_counts(session: Session, filters: StatsFilter | None = None) -> dict[str, int]:
    """How many steps planned in the range were moved by the send window, by
    holidays, by SMS quiet hours and by frequency caps (keys of `MOVE_REASONS`)."""
    row = session.execute(moved_counts_query(filters or StatsFilter())).one()
    return {kind: int(value or 0) for kind, value in zip(MOVE_REASONS, row, strict=True)}


def _figures(session: Session, now: datetime, filters: StatsFilter, counts: _StepCounts) -> dict[str, Any]:
    campaigns = {s.value: 0 for s in CampaignStatus}
    for status, count in session.execute(
        select(AutomationCampaign.status, func.count())
        .where(*_campaign_conditions(filters))
        .group_by(AutomationCampaign.status)
    ):
        campaigns[status] = int(count)

    by_status = {s.value: 0 for s in StepStatus}
    by_type = {t.value: 0 for t in MessageType}
    matrix: dict[str, dict[str, int]] = {t.value: {} for t in MessageType}
    for (kind, status), count in counts.matrix.items():
        by_status[status] = by_status.get(status, 0) + int(count)
        by_type[kind] = by_type.get(kind, 0) + int(count)
        matrix.setdefault(kind, {})[status] = int(count)

    succeeded = by_status[StepStatus.SENT.value] + by_status[StepStatus.DONE.value]
    judged = succeeded + by_status[StepStatus.FAILED.value]
    finished = campaigns[CampaignStatus.COMPLETED.value] + campaigns[CampaignStatus.CANCELED.value]
    executed = counts.executed
    average = counts.lag_total / executed if executed else None
    p95 = _p95(session, filters, executed)

    pending = ScheduledFollowUp.status == FollowUpStatus.PENDING.value
    followup_conditions: list[ColumnElement[bool]] = [pending]
    if filters.bounded:
        start, end = filters.range()
        followup_conditions += [ScheduledFollowUp.due_at >= start, ScheduledFollowUp.due_at < end]
    if filters.template_id:
        followup_conditions.append(
            ScheduledFollowUp.campaign_id.in_(
                select(AutomationCampaign.id).where(AutomationCampaign.template_id == filters.template_id)
            )
        )
    overdue_case = func.sum(case((ScheduledFollowUp.due_at < now, 1), else_=0))
    pending_count, overdue_count = session.execute(
        select(func.count(), overdue_case).select_from(ScheduledFollowUp).where(*followup_conditions)
    ).one()

    return {
        "generated_at": now.isoformat(),
        "campaigns_by_status": campaigns,
        "campaigns_total": sum(campaigns.values()),
        "steps_by_status": by_status,
        "steps_by_message_type": by_type,
        "status_by_message_type": matrix,
        "steps_total": sum(by_status.values()),
        "success_rate": succeeded / judged if judged else None,
        "completion_rate": campaigns[CampaignStatus.COMPLETED.value] / finished if finished else None,
        "lag_seconds": {"average": average, "p95": p95, "executed": executed},
        "followups": {"pending": int(pending_count or 0), "overdue": int(overdue_count or 0)},
        "moved": moved_counts(session, filters),
    }


# --- chart series ---------------------------------------------------------------


@dataclass(frozen=True)
class ChartSeries:
    """Rows ready for plotly (lists of flat dicts)."""

    executions_per_day: list[dict[str, Any]]  # day, message_type, count
    outcomes_per_day: list[dict[str, Any]]  # day, outcome (success|failure|skipped), count
    status_by_type: list[dict[str, Any]]  # message_type, status, count
    template_funnel: list[dict[str, Any]]  # template, position, number, step, campaigns, reached
    busiest_hours: list[dict[str, Any]]  # hour (0-23, local), count


_OUTCOME = {
    StepStatus.SENT.value: "success",
    StepStatus.DONE.value: "success",
    StepStatus.FAILED.value: "failure",
    StepStatus.SKIPPED.value: "skipped",
}


def chart_series(
    session: Session, filters: StatsFilter, tz: tzinfo, *, figures: dict[str, Any] | None = None
) -> ChartSeries:
    """The statistics page's charts for `filters` (which needs a start and an end).

    `figures`, when given, are `automation_stats` for the same filters: the status
    chart is then drawn from their counts instead of counting the steps again.
    (`statistics_page` gives both for the cost of the charts alone.)
    """
    counts = _count_steps_per_hour(session, filters, tz, not_run=figures is None)
    if figures is not None:
        counts.matrix = {
            (kind, status): n
            for kind, statuses in figures["status_by_message_type"].items()
            for status, n in statuses.items()
        }
    return _charts(session, filters, counts)


def _charts(session: Session, filters: StatsFilter, counts: _StepCounts) -> ChartSeries:
    # Days and hours of the day are both summed from the executed steps per local hour.
    executions: dict[tuple[str, str], int] = {}
    outcomes: dict[tuple[str, str], int] = {}
    hours: dict[str, int] = {}
    for key, kind, status, count in counts.per_hour or []:
        name, hour = key[:10], key[11:13]
        executions[(name, kind)] = executions.get((name, kind), 0) + count
        outcome = (name, _OUTCOME[status])
        outcomes[outcome] = outcomes.get(outcome, 0) + count
        hours[hour] = hours.get(hour, 0) + count
    matrix = sorted((kind, status, n) for (kind, status), n in counts.matrix.items())

    return ChartSeries(
        executions_per_day=[{"day": d, "message_type": k, "count": n} for (d, k), n in sorted(executions.items())],
        # Every outcome on every day that had executions, zeros included, so lines
        # do not join distant days.
        outcomes_per_day=[
            {"day": d, "outcome": o, "count": outcomes.get((d, o), 0)}
            for d in sorted({d for d, _ in outcomes})
            for o in ("success", "failure", "skipped")
        ],
        status_by_type=[{"message_type": k, "status": s, "count": int(n)} for k, s, n in matrix],
        template_funnel=template_funnel(session, filters),
        busiest_hours=[{"hour": h, "count": int(hours.get(f"{h:02d}", 0))} for h in range(24)],
    )


def template_funnel(session: Session, filters: StatsFilter) -> list[dict[str, Any]]:
    """Per template and step position: how many campaigns reached the step (it ran:
    sent, done, failed or skipped), counted over campaigns started in the range.
    `number` is the step's number as the UI shows it (from 1; positions count from 0).

    The counts read only indexes (campaigns by start, steps by campaign, position
    and status); a step is named as in the first campaign of its group.
    """
    conditions = [AutomationCampaign.template_id.is_not(None), *_campaign_conditions(filters)]
    groups: Sequence[tuple[Any, ...]] | None = None
    if session.get_bind().dialect.name == "sqlite":
        groups = _funnel_by_step_masks(session, conditions)
    if groups is None:
        reached = func.sum(case((AutomationStep.status.in_(EXECUTED), 1), else_=0))
        groups = session.execute(
            select(
                AutomationCampaign.template_id,
                AutomationStep.position,
                func.count(),
                reached,
                func.min(AutomationCampaign.id),
            )
            .select_from(AutomationCampaign)
            .join(AutomationStep, AutomationStep.campaign_id == AutomationCampaign.id)
            .where(*conditions)
            .group_by(AutomationCampaign.template_id, AutomationStep.position)
        ).all()
    if not groups:
        return []
    templates = dict(
        session.execute(
            select(AutomationTemplate.id, AutomationTemplate.name).where(
                AutomationTemplate.id.in_({template_id for template_id, *_ in groups})
            )
        ).all()
    )
    # The steps of a few campaigns (usually one per template), by the campaign index.
    names = {
        (campaign_id, position): name
        for campaign_id, position, name in session.execute(
            select(AutomationStep.campaign_id, AutomationStep.position, AutomationStep.name).where(
                AutomationStep.campaign_id.in_({first for *_, first in groups})
            )
        )
    }
    return sorted(
        (
            {
                "template": templates[template_id],
                "position": position,
                "number": position + 1,
                "step": names.get((first, position), ""),
                "campaigns": int(total),
                "reached": int(done or 0),
            }
            for template_id, position, total, done, first in groups
        ),
        key=lambda row: (row["template"], row["position"]),
    )


_MASK_POSITIONS = 31  # positions 0-30: a step's bit, and its "ran" bit 31 places higher


def _funnel_by_step_masks(session: Session, conditions: list[ColumnElement[bool]]) -> list[tuple[int, ...]] | None:
    """The funnel's groups (template, position, campaigns, reached, first campaign),
    counted per campaign rather than per step (SQLite).

    Grouping the steps by (template, position) sorts every step of the range's
    campaigns. Here each campaign's steps are summed, in the campaign index, into
    one integer (bit p: it has a step at position p; bit p + 31: that step ran),
    and only the campaigns are grouped, by template and mask: a few dozen groups,
    split into positions here. None when a position is outside 0-30.
    """
    step = AutomationStep
    bit = literal(1).op("<<")
    ran = case((step.status.in_(EXECUTED), bit((step.position + _MASK_POSITIONS).self_group())), else_=0)
    mask = (
        select(
            case(
                (or_(func.max(step.position) >= _MASK_POSITIONS, func.min(step.position) < 0), -1),
                else_=func.sum(bit(step.position) + ran),
            )
        )
        .where(step.campaign_id == AutomationCampaign.id)
        .scalar_subquery()
        .label("mask")
    )
    rows = session.execute(
        select(AutomationCampaign.template_id, mask, func.count(), func.min(AutomationCampaign.id))
        .where(*conditions)
        .group_by(AutomationCampaign.template_id, literal_column("mask"))
    ).all()
    groups: dict[tuple[int, int], list[int]] = {}
    for template_id, steps, campaigns, first in rows:
        if steps is None:  # a campaign without steps
            continue
        if steps < 0:
            return None
        for position in range(_MASK_POSITIONS):
            if steps >> position & 1:
                group = groups.setdefault((template_id, position), [0, 0, first])
                group[0] += campaigns
                group[1] += campaigns if steps >> (position + _MASK_POSITIONS) & 1 else 0
                group[2] = min(group[2], first)
    return [(template_id, position, *counts) for (template_id, position), counts in groups.items()]


def stats_rows(stats: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The figures flattened to (section, key, value) rows (the `stats` CSV)."""
    rows: list[tuple[str, str, Any]] = []
    for section in ("campaigns_by_status", "steps_by_status", "steps_by_message_type"):
        rows += [(section, k, v) for k, v in stats[section].items()]
    for kind, statuses in stats["status_by_message_type"].items():
        rows += [("status_by_message_type", f"{kind}.{s}", n) for s, n in sorted(statuses.items())]
    rows += [
        ("totals", "campaigns", stats["campaigns_total"]),
        ("totals", "steps", stats["steps_total"]),
        ("rates", "success_rate", stats["success_rate"]),
        ("rates", "completion_rate", stats["completion_rate"]),
        ("lag_seconds", "average", stats["lag_seconds"]["average"]),
        ("lag_seconds", "p95", stats["lag_seconds"]["p95"]),
        ("lag_seconds", "executed", stats["lag_seconds"]["executed"]),
        ("followups", "pending", stats["followups"]["pending"]),
        ("followups", "overdue", stats["followups"]["overdue"]),
    ]
    rows += [("moved", kind, n) for kind, n in stats.get("moved", {}).items()]
    return rows
