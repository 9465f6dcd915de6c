"""Statistics: how campaigns perform over a date range, with charts and the CSV exports."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import plotly.express as px
import streamlit as st

from automations.calendar_events import local_midnight
from automations.exports import EXPORT_KINDS, ExportFilter, csv_bytes, export_file_name
from automations.stats import ChartSeries, StatsFilter, automation_stats, chart_series
from automations.templates import list_templates
from automations.timeutil import utcnow
from pages.common import db_url, get_db, now_minute, page_title, settings, type_label

TYPE_COLOURS = {"email": "#2563eb", "sms": "#16a34a", "task": "#d97706", "webhook": "#7c3aed"}
OUTCOME_COLOURS = {"success": "#16a34a", "failure": "#dc2626", "skipped": "#9ca3af"}
STATUS_COLOURS = {"pending": "#93c5fd", "running": "#a78bfa", "sent": "#16a34a", "done": "#15803d",
                  "failed": "#dc2626", "skipped": "#9ca3af", "canceled": "#4b5563"}
MESSAGE_TYPES = ["email", "sms", "task", "webhook"]
DEFAULT_DAYS = 30


@st.cache_data(ttl=60, show_spinner=False)
def _templates(url: str) -> dict[int, str]:
    with get_db().read_session() as s:
        return {t.id: t.name for t in list_templates(s)}


@st.cache_data(ttl=30, show_spinner=False)
def _figures(url: str, now: datetime, filters: StatsFilter) -> dict[str, object]:
    with get_db().read_session() as s:
        return automation_stats(s, now, filters)


@st.cache_data(ttl=30, show_spinner=False)
def _charts(url: str, tz_name: str, filters: StatsFilter) -> ChartSeries:
    with get_db().read_session() as s:
        return chart_series(s, filters, settings().tz)


def _filters() -> StatsFilter:
    today = utcnow().astimezone(settings().tz).date()
    c1, c2, c3 = st.columns([2, 2, 2])
    chosen = c1.date_input("Date range", value=(today - timedelta(days=DEFAULT_DAYS - 1), today),
                           key="st_range", format="YYYY-MM-DD")
    first, last = _days(chosen, today)
    templates = _templates(db_url())
    template = c2.selectbox("Template", list(templates), format_func=templates.get, index=None,
                            placeholder="All templates", key="st_template")
    types = c3.multiselect("Message type", MESSAGE_TYPES, key="st_types", format_func=type_label,
                           placeholder="All types")
    tz = settings().tz
    # The range is of whole local days, the last one included.
    return StatsFilter(start=local_midnight(first, tz), end=local_midnight(last + timedelta(days=1), tz),
                       template_id=template, message_type=tuple(types) or None)


def _days(chosen: object, today: date) -> tuple[date, date]:
    # While the user is picking, the range may have one end only.
    if isinstance(chosen, (tuple, list)):
        if len(chosen) == 2:
            return chosen[0], chosen[1]
        if len(chosen) == 1:
            return chosen[0], chosen[0]
        return today - timedelta(days=DEFAULT_DAYS - 1), today
    return chosen, chosen  # type: ignore[return-value]


def _percent(value: object) -> str:
    return "–" if value is None else f"{float(value):.1%}"  # type: ignore[arg-type]


def _duration(seconds: object) -> str:
    if seconds is None:
        return "–"
    s = float(seconds)  # type: ignore[arg-type]
    if abs(s) < 120:
        return f"{s:.0f} s"
    if abs(s) < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _kpis(stats: dict) -> None:
    campaigns = stats["campaigns_by_status"]
    steps = stats["steps_by_status"]
    row = st.columns(5)
    row[0].metric("Active campaigns", f"{campaigns['active']:,}")
    row[1].metric("Paused campaigns", f"{campaigns['paused']:,}")
    row[2].metric("Completed campaigns", f"{campaigns['completed']:,}")
    row[3].metric("Canceled campaigns", f"{campaigns['canceled']:,}")
    row[4].metric("Completion rate", _percent(stats["completion_rate"]),
                  help="Completed campaigns among those that finished (completed or canceled)")
    row = st.columns(5)
    row[0].metric("Sent", f"{steps['sent']:,}")
    row[1].metric("Done (tasks)", f"{steps['done']:,}")
    row[2].metric("Failed", f"{steps['failed']:,}")
    row[3].metric("Skipped", f"{steps['skipped']:,}")
    row[4].metric("Pending", f"{steps['pending'] + steps['running']:,}")
    lag = stats["lag_seconds"]
    row = st.columns(5)
    row[0].metric("Success rate", _percent(stats["success_rate"]),
                  help="Sent and done among sent, done and failed (skipped steps are left out)")
    row[1].metric("Average lag", _duration(lag["average"]),
                  help="How late steps ran after their planned time")
    row[2].metric("p95 lag", _duration(lag["p95"]))
    row[3].metric("Pending follow-ups", f"{stats['followups']['pending']:,}")
    row[4].metric("Overdue follow-ups", f"{stats['followups']['overdue']:,}")


def _charts_section(charts: ChartSeries) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Executions per day")
        if charts.executions_per_day:
            figure = px.bar(charts.executions_per_day, x="day", y="count", color="message_type",
                            color_discrete_map=TYPE_COLOURS, labels={"message_type": "type"})
            figure.update_layout(barmode="stack", height=340, margin={"t": 10})
            st.plotly_chart(figure, key="st_exec_per_day")
        else:
            st.caption("No step ran in this range.")
    with right:
        st.subheader("Success and failure over time")
        if charts.outcomes_per_day:
            figure = px.line(charts.outcomes_per_day, x="day", y="count", color="outcome",
                             color_discrete_map=OUTCOME_COLOURS, markers=True)
            figure.update_layout(height=340, margin={"t": 10})
            st.plotly_chart(figure, key="st_outcomes")
        else:
            st.caption("No step ran in this range.")
    left, right = st.columns(2)
    with left:
        st.subheader("Status by message type")
        if charts.status_by_type:
            figure = px.bar(charts.status_by_type, x="message_type", y="count", color="status",
                            color_discrete_map=STATUS_COLOURS, labels={"message_type": "type"})
            figure.update_layout(barmode="stack", height=340, margin={"t": 10})
            st.plotly_chart(figure, key="st_status_by_type")
        else:
            st.caption("No steps in this range.")
    with right:
        st.subheader("Busiest hours")
        figure = px.bar(charts.busiest_hours, x="hour", y="count",
                        labels={"hour": f"hour ({settings().timezone})", "count": "steps run"})
        figure.update_layout(height=340, margin={"t": 10})
        figure.update_xaxes(dtick=1)
        st.plotly_chart(figure, key="st_hours")
    st.subheader("Template funnel")
    st.caption("How many campaigns of each template reached each step (the step ran).")
    if charts.template_funnel:
        figure = px.bar(charts.template_funnel, x="position", y="reached", color="template",
                        barmode="group", hover_data=["step", "campaigns"],
                        labels={"position": "step", "reached": "campaigns that reached it"})
        figure.update_layout(height=360, margin={"t": 10})
        figure.update_xaxes(dtick=1)
        st.plotly_chart(figure, key="st_funnel")
    else:
        st.caption("No campaign from a template started in this range.")


def _exports(filters: StatsFilter) -> None:
    st.subheader("Exports")
    st.caption("CSV files (UTF-8, ISO 8601 times) for the range and filters above; "
               "`python -m automations export KIND` writes the same files.")
    export = ExportFilter(start=filters.start, end=filters.end, template_id=filters.template_id,
                          message_type=filters.message_type)
    columns = st.columns(len(EXPORT_KINDS))
    now = now_minute()
    for column, kind in zip(columns, EXPORT_KINDS):
        def build(kind: str = kind) -> bytes:
            with get_db().read_session() as s:
                return csv_bytes(s, kind, export, now=now)

        column.download_button(f"⬇️ {kind}", data=build, file_name=export_file_name(kind, export),
                               mime="text/csv", on_click="ignore", key=f"st_download_{kind}",
                               width="stretch")


page_title(":material/bar_chart: Statistics")
filters = _filters()
stats = _figures(db_url(), now_minute(), filters)
if stats["steps_total"] == 0 and stats["campaigns_total"] == 0:
    st.info("No campaign activity in this range. Widen the dates, or start a campaign on **New Campaign**.")
_kpis(stats)
_charts_section(_charts(db_url(), settings().timezone, filters))
_exports(filters)
