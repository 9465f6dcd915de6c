"""Statistics: how campaigns perform over a date range, with charts, the email
engagement funnel and link clicks, and the CSV exports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from automations.domain.timeutil import utcnow
from automations.reports.calendar import local_midnight
from automations.reports.engagement import (
    FunnelRow,
    LinkClicks,
    email_funnel,
    email_funnel_by_step,
    funnel_total,
    link_clicks,
)
from automations.reports.exports import (
    EXPORT_KINDS,
    ExportFilter,
    csv_bytes,
    export_file_name,
)
from automations.reports.stats import ChartSeries, StatsFilter, lag_spread, statistics_page
from automations.services.templates import list_templates
from ui.common import LIST_TTL, db_url, get_db, now_minute, page_title, rows, settings, type_label

TYPE_COLOURS = {"email": "#2563eb", "sms": "#16a34a", "task": "#d97706", "webhook": "#7c3aed"}
OUTCOME_COLOURS = {"success": "#16a34a", "failure": "#dc2626", "skipped": "#9ca3af"}
STATUS_COLOURS = {
    "pending": "#93c5fd",
    "running": "#a78bfa",
    "sent": "#16a34a",
    "done": "#15803d",
    "failed": "#dc2626",
    "skipped": "#9ca3af",
    "canceled": "#4b5563",
}
MESSAGE_TYPES = ["email", "sms", "task", "webhook"]
DEFAULT_DAYS = 30


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _templates(url: str) -> dict[int, str]:
    with get_db().read_session() as s:
        return {t.id: t.name for t in list_templates(s)}


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _figures_and_charts(
    url: str, tz_name: str, now: datetime, filters: StatsFilter
) -> tuple[dict[str, Any], ChartSeries]:
    # One read for both: each executed step of the range is read once, for the figures and the charts.
    with get_db().read_session() as s:
        figures, charts = statistics_page(s, now, filters, settings().tz)
        # The median and the longest lag, beside the figures' average and p95.
        lag = figures["lag_seconds"]
        figures["lag_seconds"] = {**lag, **lag_spread(s, filters, lag["executed"])}
        return figures, charts


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _engagement_figures(
    url: str, filters: StatsFilter, machine_opens: bool
) -> tuple[list[FunnelRow], list[FunnelRow], list[LinkClicks]]:
    with get_db().read_session() as s:
        return (
            email_funnel(s, filters, machine_opens=machine_opens),
            email_funnel_by_step(s, filters, machine_opens=machine_opens),
            link_clicks(s, filters),
        )


def _filters() -> StatsFilter:
    today = utcnow().astimezone(settings().tz).date()
    c1, c2, c3 = st.columns([2, 2, 2])
    chosen = c1.date_input(
        "Date range", value=(today - timedelta(days=DEFAULT_DAYS - 1), today), key="st_range", format="YYYY-MM-DD"
    )
    first, last = _days(chosen, today)
    templates = _templates(db_url())
    template = c2.selectbox(
        "Template",
        list(templates),
        format_func=templates.get,
        index=None,
        placeholder="All templates",
        key="st_template",
    )
    types = c3.multiselect(
        "Message type", MESSAGE_TYPES, key="st_types", format_func=type_label, placeholder="All types"
    )
    tz = settings().tz
    # The range is of whole local days, the last one included.
    return StatsFilter(
        start=local_midnight(first, tz),
        end=local_midnight(last + timedelta(days=1), tz),
        template_id=template,
        message_type=tuple(types) or None,
    )


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


ACTIVE_HELP = (
    "Campaigns that started in this range and are active now. The Overview counts every "
    "active campaign, whatever its start."
)


def _kpis(stats: dict) -> None:
    campaigns = stats["campaigns_by_status"]
    steps = stats["steps_by_status"]
    # The scope is said above the figures: the Overview's "Active campaigns" counts them all.
    st.markdown("**Campaigns that started in this range**, by their status now (the Overview counts them all)")
    row = st.columns(5)
    row[0].metric("Active", f"{campaigns['active']:,}", help=ACTIVE_HELP)
    row[1].metric("Paused", f"{campaigns['paused']:,}", help="Campaigns that started in this range and are paused now")
    row[2].metric(
        "Completed", f"{campaigns['completed']:,}", help="Campaigns that started in this range and ran all their steps"
    )
    row[3].metric("Canceled", f"{campaigns['canceled']:,}", help="Campaigns that started in this range, then canceled")
    row[4].metric(
        "Completion rate",
        _percent(stats["completion_rate"]),
        help="Completed campaigns among those that finished (completed or canceled)",
    )
    st.markdown("**Steps in this range**: on the day they ran, or on their planned day while they have not run")
    row = st.columns(5)
    row[0].metric("Sent", f"{steps['sent']:,}", help="Emails, SMS and webhooks delivered")
    row[1].metric("Done (tasks)", f"{steps['done']:,}", help="Task steps that created their follow-up")
    row[2].metric("Failed", f"{steps['failed']:,}", help="Steps that could not be delivered, after their retries")
    row[3].metric("Skipped", f"{steps['skipped']:,}", help="Steps not sent, e.g. the contact opted out of the channel")
    row[4].metric("Pending", f"{steps['pending'] + steps['running']:,}", help="Planned in this range, not run yet")
    row = st.columns(5)
    row[0].metric(
        "Success rate",
        _percent(stats["success_rate"]),
        help="Sent and done among sent, done and failed (skipped steps are left out)",
    )
    row[1].metric(
        "Pending follow-ups", f"{stats['followups']['pending']:,}", help="Follow-up tasks due in this range, not done"
    )
    row[2].metric(
        "Overdue follow-ups", f"{stats['followups']['overdue']:,}", help="Pending follow-up tasks already past due"
    )
    _lag(stats["lag_seconds"])
    _moved(stats["moved"])


# What each count of moved steps means (the keys of the figures' `moved`).
MOVED = {
    "window": (
        "Moved by the send window",
        "Steps planned outside their campaign's send window, moved to its next opening",
    ),
    "holidays": ("Moved by holidays", "Steps planned on a holiday of their campaign's calendar, moved to the next day"),
    "quiet_hours": ("Moved by quiet hours", "SMS steps planned in SMS quiet hours, moved to when they end"),
    "frequency_cap": (
        "Moved by frequency caps",
        "Steps a runner deferred because the contact had reached a frequency cap",
    ),
}


def _moved(moved: dict[str, int]) -> None:
    """How many of the range's steps their schedule moved, by reason."""
    st.markdown(
        "**Steps moved by their schedule**: planned in this range at a later time than their delay gave "
        "(a step moved for two reasons counts under both)"
    )
    row = st.columns(5)
    for column, (key, (label, explained)) in zip(row, MOVED.items(), strict=False):
        column.metric(label, f"{moved.get(key, 0):,}", help=explained)


def _lag(lag: dict[str, Any]) -> None:
    """The scheduling lag as median, p95, longest and average, with what they mean."""
    st.markdown("**How late steps ran**: the time from a step's planned time to when it ran")
    median, p95, longest, average = (_duration(lag[key]) for key in ("p50", "p95", "max", "average"))
    row = st.columns(5)
    row[0].metric(
        "Median lag (p50)",
        median,
        help=f"How long after its planned time a step ran. Half of the steps ran within {median}.",
    )
    row[1].metric("p95 lag", p95, help=f"95 % of the steps ran within {p95} of their planned time; 5 % later.")
    row[2].metric("Longest lag", longest, help="The latest step of the range ran this long after its planned time.")
    row[3].metric(
        "Average lag",
        average,
        help="The mean lag. A few very late steps (the runner was stopped, or the campaign was paused) "
        "pull it up, above the median and sometimes above the p95.",
    )
    row[4].metric("Steps that ran", f"{lag['executed']:,}", help="The steps the lag is measured on")
    if lag["executed"]:
        st.caption(_lag_sentence(lag))


def _lag_sentence(lag: dict[str, Any]) -> str:
    said = (
        f"Half of the steps ran within {_duration(lag['p50'])} of their planned time and "
        f"95 % within {_duration(lag['p95'])}; the latest ran {_duration(lag['max'])} late."
    )
    # An average above the p95 looks like a contradiction: say where it comes from.
    if lag["average"] > lag["p95"]:
        said += (
            f" The average ({_duration(lag['average'])}) is pulled up by a few late steps "
            "(the runner was stopped, or the campaign was paused)."
        )
    return said


def _traces(
    rows: list[dict[str, Any]],
    x: str,
    y: str,
    by: str,
    colours: dict[str, str] | None = None,
    kind: type[go.Bar] | type[go.Scatter] = go.Bar,
    per_trace: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
    label: Callable[[str], str] = str,
    x_label: Callable[[Any], Any] | None = None,
) -> list[go.Bar | go.Scatter]:
    """One trace per value of `by`, in order of first appearance, named by `label`
    (`x_label` names the categories of the x axis).

    Built with graph_objects rather than plotly express, which spends about 0.1 s
    per figure preparing its data: a fifth of the page's time budget."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row[by]), []).append(row)
    traces = []
    for name, members in groups.items():
        colour = (colours or {}).get(name)
        style = {"marker_color": colour} if kind is go.Bar else {"line_color": colour, "mode": "lines+markers"}
        traces.append(
            kind(
                x=[x_label(r[x]) if x_label else r[x] for r in members],
                y=[r[y] for r in members],
                name=label(name),
                **style,
                **(per_trace(members) if per_trace else {}),
            )
        )
    return traces


def _figure(traces: list[Any], height: int = 340, legend: str | None = None, **layout: Any) -> go.Figure:
    figure = go.Figure(traces)
    figure.update_layout(height=height, margin={"t": 10}, legend_title_text=legend, **layout)
    return figure


def _charts_section(charts: ChartSeries) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Executions per day")
        if charts.executions_per_day:
            figure = _figure(
                _traces(charts.executions_per_day, "day", "count", "message_type", TYPE_COLOURS, label=type_label),
                legend="Message type",
                barmode="stack",
                xaxis_title="Day",
                yaxis_title="Steps run",
            )
            st.plotly_chart(figure, key="st_exec_per_day")
        else:
            st.caption("No step ran in this range.")
    with right:
        st.subheader("Success and failure over time")
        if charts.outcomes_per_day:
            figure = _figure(
                _traces(
                    charts.outcomes_per_day,
                    "day",
                    "count",
                    "outcome",
                    OUTCOME_COLOURS,
                    kind=go.Scatter,
                    label=str.capitalize,
                ),
                legend="Outcome",
                xaxis_title="Day",
                yaxis_title="Steps run",
            )
            st.plotly_chart(figure, key="st_outcomes")
        else:
            st.caption("No step ran in this range.")
    left, right = st.columns(2)
    with left:
        st.subheader("Status by message type")
        if charts.status_by_type:
            figure = _figure(
                _traces(
                    charts.status_by_type,
                    "message_type",
                    "count",
                    "status",
                    STATUS_COLOURS,
                    label=str.capitalize,
                    x_label=type_label,
                ),
                legend="Status",
                barmode="stack",
                xaxis_title="Message type",
                yaxis_title="Steps",
            )
            st.plotly_chart(figure, key="st_status_by_type")
        else:
            st.caption("No steps in this range.")
    with right:
        st.subheader("Busiest hours")
        figure = _figure(
            [go.Bar(x=[h["hour"] for h in charts.busiest_hours], y=[h["count"] for h in charts.busiest_hours])],
            xaxis_title=f"Hour of the day ({settings().timezone})",
            yaxis_title="Steps run",
        )
        figure.update_xaxes(dtick=1)
        st.plotly_chart(figure, key="st_hours")
    st.subheader("Template funnel")
    st.caption("How many campaigns of each template reached each step (the step ran).")
    if charts.template_funnel:
        traces = _traces(
            charts.template_funnel,
            "number",  # steps are numbered from 1, as everywhere else in the app
            "reached",
            "template",
            per_trace=lambda rows: {
                "customdata": [[r["step"], r["campaigns"]] for r in rows],
                "hovertemplate": "Step %{x}: %{customdata[0]}<br>reached by %{y} of "
                "%{customdata[1]} campaigns<extra>%{fullData.name}</extra>",
            },
        )
        figure = _figure(
            traces,
            height=360,
            legend="Template",
            barmode="group",
            xaxis_title="Step",
            yaxis_title="Campaigns that reached it",
        )
        figure.update_xaxes(dtick=1)
        st.plotly_chart(figure, key="st_funnel")
    else:
        st.caption("No campaign from a template started in this range.")


NO_TEMPLATE = "No template (own steps)"
FUNNEL_STAGES = ("Sent", "Delivered", "Opened", "Clicked", "Replied")


def _funnel_table(funnel: list[FunnelRow], **first: Any) -> Any:
    """The funnel rows as a table, each rate with what it is of ("12 of 40 delivered, 30%")."""
    return rows(
        funnel,
        **first,
        sent="sent",
        delivered="delivered",
        opened=lambda r: r.rates()["opened"].text,
        clicked=lambda r: r.rates()["clicked"].text,
        click_to_open=lambda r: r.rates()["click_to_open"].text,
        replied=lambda r: r.rates()["replied"].text,
        bounced=lambda r: r.rates()["bounced"].text,
        unsubscribed=lambda r: r.rates()["unsubscribed"].text,
    )


def _engagement(filters: StatsFilter) -> None:
    """What the recipients of the range's emails did, per template and per step, and
    the clicks on each link."""
    st.subheader("Email engagement")
    machine = st.toggle(
        "Count machine opens",
        key="st_machine_opens",
        help="Mail-privacy proxies (such as Apple Mail's) and link scanners fetch the open pixel without "
        "anyone reading: their opens are left out unless this is on.",
    )
    funnel, by_step, links = _engagement_figures(db_url(), filters, machine)
    st.caption(
        "The emails sent in this range and what their recipients did since. Delivered: sent minus hard bounces; "
        "opened, clicked, replied and unsubscribed are rates of the delivered emails, bounced of those sent."
        + ("" if machine else " Opens by mail-privacy proxies and link scanners are left out.")
    )
    if not funnel:
        st.caption("No email was sent in this range.")
        return
    total = funnel_total(funnel)
    left, right = st.columns([3, 2])
    with left:
        st.dataframe(
            _funnel_table(funnel, template=lambda r: r.template_name or NO_TEMPLATE),
            hide_index=True,
            width="stretch",
        )
        with st.expander("By step"):
            st.dataframe(
                _funnel_table(
                    by_step,
                    template=lambda r: r.template_name or NO_TEMPLATE,
                    step=lambda r: f"{r.number}. {r.step}",
                ),
                hide_index=True,
                width="stretch",
            )
    with right:
        counts = [total.sent, total.delivered, total.opened, total.clicked, total.replied]
        figure = go.Figure(
            go.Funnel(
                y=list(FUNNEL_STAGES),
                x=counts,
                textinfo="value+percent initial",
                marker={"color": ["#93c5fd", "#60a5fa", "#2563eb", "#1d4ed8", "#16a34a"]},
            )
        )
        figure.update_layout(height=300, margin={"t": 10, "l": 10, "r": 10})
        st.plotly_chart(figure, key="st_engagement_chart")
    st.markdown("**Clicks per link**")
    if links:
        st.dataframe(
            rows(
                links,
                template=lambda r: r.template_name or NO_TEMPLATE,
                url="url",
                clicks="clicks",
                recipients="recipients",
            ),
            hide_index=True,
            width="stretch",
            column_config={
                "url": st.column_config.LinkColumn(width="large"),
                "recipients": st.column_config.NumberColumn(help="Distinct contacts who clicked the link"),
            },
        )
    else:
        st.caption("No link was clicked in the emails of this range.")


def _exports(filters: StatsFilter) -> None:
    st.subheader("Exports")
    st.caption(
        "CSV files (UTF-8, ISO 8601 times) for the range and filters above; "
        "`python -m automations export KIND` writes the same files."
    )
    export = ExportFilter(
        start=filters.start, end=filters.end, template_id=filters.template_id, message_type=filters.message_type
    )
    columns = st.columns(len(EXPORT_KINDS))
    now = now_minute()
    for column, kind in zip(columns, EXPORT_KINDS, strict=False):

        def build(kind: str = kind) -> bytes:
            with get_db().read_session() as s:
                return csv_bytes(s, kind, export, now=now)

        column.download_button(
            f"⬇️ {kind}",
            data=build,
            file_name=export_file_name(kind, export),
            mime="text/csv",
            on_click="ignore",
            key=f"st_download_{kind}",
            width="stretch",
        )


page_title(":material/bar_chart: Statistics")
filters = _filters()
stats, charts = _figures_and_charts(db_url(), settings().timezone, now_minute(), filters)
if stats["steps_total"] == 0 and stats["campaigns_total"] == 0:
    st.info("No campaign activity in this range. Widen the dates, or start a campaign on **New Campaign**.")
_kpis(stats)
_charts_section(charts)
_engagement(filters)
_exports(filters)
