"""How campaigns perform: key figures and chart series, every one aggregated in SQL.

`automation_stats` is the figures (the REST API's `/stats/` and the statistics
page's KPIs); `chart_series` the data of the page's charts. Both take the same
filters (a date range over step times, a template, a message type).

Definitions:
- a step's time is its execution, or its planned time while it has not run (as
  on the calendar); a campaign is in the range when it starts in it;
- success rate = (sent + done) / (sent + done + failed); skipped steps (opt-outs)
  are neither;
- scheduling lag = executed_at - scheduled_at of executed steps (p95 is the
  nearest-rank 95th percentile);
- completion rate = completed / (completed + canceled) campaigns;
- a follow-up is overdue when it is pending and due before now.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, select
from sqlalchemy.orm import Session, aliased

from automations.calendar_events import (
    CalendarFilter,
    as_list,
    filter_conditions,
    in_range,
    local_bucket,
    steps_in_range,
)
from automations.models import (
    AutomationCampaign,
    AutomationStep,
    AutomationTemplate,
    CampaignStatus,
    FollowUpStatus,
    MessageType,
    ScheduledFollowUp,
    StepStatus,
)
from automations.timeutil import UTC, as_utc

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
        steps = steps_in_range([AutomationStep.message_type, AutomationStep.status],
                               *filters.range(), filters.calendar_filter())
        query = select(steps.c.message_type, steps.c.status, func.count()).group_by(
            steps.c.message_type, steps.c.status)
    else:
        query = _step_query(
            [AutomationStep.message_type, AutomationStep.status, func.count()], filters
        ).group_by(AutomationStep.message_type, AutomationStep.status)
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
        return func.extract("epoch", AutomationStep.executed_at - AutomationStep.scheduled_at)
    return (func.julianday(AutomationStep.executed_at) - func.julianday(AutomationStep.scheduled_at)) * 86400.0


def _lag(session: Session, filters: StatsFilter) -> tuple[float | None, float | None, int]:
    """Average and p95 scheduling lag (seconds) of executed steps, and how many."""
    lag = _lag_seconds(session)
    count, average = session.execute(_executed_query([func.count(), func.avg(lag)], filters)).one()
    if not count:
        return None, None, 0
    if session.get_bind().dialect.name == "postgresql":
        p95 = session.scalar(_executed_query([func.percentile_disc(0.95).within_group(lag)], filters))
    else:
        # Nearest rank: the ceil(0.95 n)-th smallest lag, read as the
        # (n - ceil(0.95 n) + 1)-th largest so that the sort keeps only the top 5 %.
        p95 = session.scalar(
            _executed_query([lag], filters).order_by(lag.desc())
            .limit(1).offset(max(count - math.ceil(0.95 * count), 0))
        )
    return float(average), float(p95), int(count)


def automation_stats(
    session: Session,
    now: datetime,
    filters: StatsFilter | None = None,
) -> dict[str, Any]:
    """The key figures, JSON-ready.

    Keys: `campaigns_by_status`, `steps_by_status`, `steps_by_message_type`,
    `status_by_message_type`, `steps_total`, `success_rate` (None when nothing
    was judged), `completion_rate`, `lag_seconds` {average, p95, executed},
    `followups` {pending, overdue}, `generated_at`.
    """
    filters = filters or StatsFilter()
    now = as_utc(now)
    campaigns = {s.value: 0 for s in CampaignStatus}
    for status, count in session.execute(
        select(AutomationCampaign.status, func.count())
        .where(*_campaign_conditions(filters)).group_by(AutomationCampaign.status)
    ):
        campaigns[status] = int(count)

    by_status = {s.value: 0 for s in StepStatus}
    by_type = {t.value: 0 for t in MessageType}
    matrix: dict[str, dict[str, int]] = {t.value: {} for t in MessageType}
    for kind, status, count in _type_status_counts(session, filters):
        by_status[status] = by_status.get(status, 0) + int(count)
        by_type[kind] = by_type.get(kind, 0) + int(count)
        matrix.setdefault(kind, {})[status] = int(count)

    succeeded = by_status[StepStatus.SENT.value] + by_status[StepStatus.DONE.value]
    judged = succeeded + by_status[StepStatus.FAILED.value]
    finished = campaigns[CampaignStatus.COMPLETED.value] + campaigns[CampaignStatus.CANCELED.value]
    average, p95, executed = _lag(session, filters)

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
    }


# --- chart series ---------------------------------------------------------------


@dataclass(frozen=True)
class ChartSeries:
    """Rows ready for plotly (lists of flat dicts)."""

    executions_per_day: list[dict[str, Any]]  # day, message_type, count
    outcomes_per_day: list[dict[str, Any]]  # day, outcome (success|failure|skipped), count
    status_by_type: list[dict[str, Any]]  # message_type, status, count
    template_funnel: list[dict[str, Any]]  # template, position, step, campaigns
    busiest_hours: list[dict[str, Any]]  # hour (0-23, local), count


_OUTCOME = {StepStatus.SENT.value: "success", StepStatus.DONE.value: "success",
            StepStatus.FAILED.value: "failure", StepStatus.SKIPPED.value: "skipped"}


def chart_series(
    session: Session, filters: StatsFilter, tz: tzinfo, *, figures: dict[str, Any] | None = None
) -> ChartSeries:
    """The statistics page's charts for `filters` (which needs a start and an end).

    `figures`, when given, are `automation_stats` for the same filters: the status
    chart is then drawn from their counts instead of counting the steps again.
    """
    start, end = filters.range()
    executed_filter = StatsFilter(None, None, filters.template_id, filters.message_type)
    executed_in_range = [AutomationStep.executed_at >= start, AutomationStep.executed_at < end, has_run()]
    # One pass, per local hour: days and hours of the day are both summed from it.
    hour_key = local_bucket(session, AutomationStep.executed_at, tz, start, end, "hour").label("hour")
    per_hour = session.execute(
        _step_query([hour_key, AutomationStep.message_type, AutomationStep.status, func.count()],
                    executed_filter)
        .where(*executed_in_range)
        .group_by(hour_key, AutomationStep.message_type, AutomationStep.status)
    ).all()
    executions: dict[tuple[str, str], int] = {}
    outcomes: dict[tuple[str, str], int] = {}
    hours: dict[str, int] = {}
    for key, kind, status, count in per_hour:
        name, hour = key[:10], key[11:13]
        executions[(name, kind)] = executions.get((name, kind), 0) + int(count)
        outcome = (name, _OUTCOME[status])
        outcomes[outcome] = outcomes.get(outcome, 0) + int(count)
        hours[hour] = hours.get(hour, 0) + int(count)

    if figures is not None:
        matrix = sorted((kind, status, n) for kind, statuses in figures["status_by_message_type"].items()
                        for status, n in statuses.items())
    else:
        matrix = sorted(_type_status_counts(session, filters))

    return ChartSeries(
        executions_per_day=[{"day": d, "message_type": k, "count": n}
                            for (d, k), n in sorted(executions.items())],
        # Every outcome on every day that had executions, zeros included, so lines
        # do not join distant days.
        outcomes_per_day=[
            {"day": d, "outcome": o, "count": outcomes.get((d, o), 0)}
            for d in sorted({d for d, _ in outcomes}) for o in ("success", "failure", "skipped")
        ],
        status_by_type=[{"message_type": k, "status": s, "count": int(n)} for k, s, n in matrix],
        template_funnel=template_funnel(session, filters),
        busiest_hours=[{"hour": h, "count": int(hours.get(f"{h:02d}", 0))} for h in range(24)],
    )


def template_funnel(session: Session, filters: StatsFilter) -> list[dict[str, Any]]:
    """Per template and step position: how many campaigns reached the step (it ran:
    sent, done, failed or skipped), counted over campaigns started in the range.

    The counts read only indexes (campaigns by start, steps by campaign, position
    and status); a step is named as in the first campaign of its group.
    """
    conditions = [AutomationCampaign.template_id.is_not(None), *_campaign_conditions(filters)]
    reached = func.sum(case((AutomationStep.status.in_(EXECUTED), 1), else_=0))
    groups = session.execute(
        select(
            AutomationCampaign.template_id, AutomationStep.position, func.count(), reached,
            func.min(AutomationCampaign.id),
        )
        .select_from(AutomationCampaign)
        .join(AutomationStep, AutomationStep.campaign_id == AutomationCampaign.id)
        .where(*conditions)
        .group_by(AutomationCampaign.template_id, AutomationStep.position)
    ).all()
    if not groups:
        return []
    templates = dict(session.execute(
        select(AutomationTemplate.id, AutomationTemplate.name)
        .where(AutomationTemplate.id.in_({template_id for template_id, *_ in groups}))
    ).all())
    # The steps of a few campaigns (usually one per template), by the campaign index.
    names = {
        (campaign_id, position): name
        for campaign_id, position, name in session.execute(
            select(AutomationStep.campaign_id, AutomationStep.position, AutomationStep.name)
            .where(AutomationStep.campaign_id.in_({first for *_, first in groups}))
        )
    }
    return sorted(
        ({"template": templates[template_id], "position": position,
          "step": names.get((first, position), ""), "campaigns": int(total), "reached": int(done or 0)}
         for template_id, position, total, done, first in groups),
        key=lambda row: (row["template"], row["position"]),
    )


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
    return rows
