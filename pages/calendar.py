"""Calendar: every step of every campaign in a week, month or year, with filters,
the detail of an event, and the period's CSV."""

from __future__ import annotations

from dataclasses import astuple
from datetime import date, timedelta

import plotly.graph_objects as go
import streamlit as st
from streamlit_calendar import calendar as fullcalendar

from automations.domain.errors import NotFound
from automations.domain.timeutil import utcnow
from automations.reports.calendar import (
    VIEWS,
    CalendarEvent,
    CalendarFilter,
    CalendarPeriod,
    EventDetail,
    calendar_period,
    event_detail,
    hour_grid,
    month_cells,
    period_label,
    shift_period,
    year_heatmap,
)
from automations.reports.exports import ExportFilter, csv_bytes, export_file_name
from automations.services.campaigns import CampaignFilter, list_campaigns
from automations.services.contacts import ContactFilter, search_contacts
from automations.services.templates import list_templates
from ui.common import badge, db_url, fmt, get_db, page_title, settings, type_label

TYPE_COLOURS = {"email": "#2563eb", "sms": "#16a34a", "task": "#d97706", "webhook": "#7c3aed"}
STATUS_MARKS = {
    "pending": "○",
    "running": "▸",
    "sent": "✓",
    "done": "✓",
    "failed": "✗",
    "skipped": "↷",
    "canceled": "⊘",
}
MESSAGE_TYPES = ["email", "sms", "task", "webhook"]
STATUSES = ["pending", "running", "sent", "done", "failed", "skipped", "canceled"]


# --- cached reads -----------------------------------------------------------------


@st.cache_data(ttl=30, show_spinner=False)
def _period(url: str, tz_name: str, view: str, anchor: date, filters: tuple) -> CalendarPeriod:
    with get_db().read_session() as s:
        return calendar_period(s, view, anchor, settings().tz, CalendarFilter(*filters))  # type: ignore[arg-type]


@st.cache_data(ttl=60, show_spinner=False)
def _templates(url: str) -> dict[int, str]:
    with get_db().read_session() as s:
        return {t.id: t.name for t in list_templates(s)}


@st.cache_data(ttl=60, show_spinner=False)
def _campaigns(url: str, text: str) -> dict[int, str]:
    with get_db().read_session() as s:
        found, _ = list_campaigns(s, CampaignFilter(search=text), limit=50)
        return {c.id: f"{c.name} · {c.contact_name} (#{c.id})" for c in found}


@st.cache_data(ttl=60, show_spinner=False)
def _contacts(url: str, text: str) -> dict[int, str]:
    with get_db().read_session() as s:
        found, _ = search_contacts(s, ContactFilter(search=text), limit=50)
        return {c.id: f"{c.full_name} · {c.email or c.phone or ''} (#{c.id})" for c in found}


@st.cache_data(ttl=30, show_spinner=False)
def _detail(url: str, step_id: int) -> EventDetail | None:
    with get_db().read_session() as s:
        try:
            return event_detail(s, step_id)
        except NotFound:
            return None


# --- state ------------------------------------------------------------------------


def _today() -> date:
    return utcnow().astimezone(settings().tz).date()


def _init_state() -> None:
    st.session_state.setdefault("cal_view", "month")
    st.session_state.setdefault("cal_anchor", _today())
    st.session_state.setdefault("cal_jump", st.session_state["cal_anchor"])


def _move(steps: int) -> None:
    anchor = st.session_state["cal_anchor"]
    st.session_state["cal_anchor"] = (
        _today() if steps == 0 else shift_period(st.session_state["cal_view"], anchor, steps)
    )
    st.session_state["cal_jump"] = st.session_state["cal_anchor"]


def _jump() -> None:
    if st.session_state.get("cal_jump"):
        st.session_state["cal_anchor"] = st.session_state["cal_jump"]


# --- controls ---------------------------------------------------------------------


def _navigation() -> None:
    c1, c2, c3, c4, c5 = st.columns([3, 1, 1, 1, 2], vertical_alignment="bottom")
    c1.radio("View", list(VIEWS), key="cal_view", horizontal=True, format_func=str.title)
    c2.button("◀ Previous", key="cal_prev", on_click=_move, args=(-1,), width="stretch")
    c3.button("Today", key="cal_today", on_click=_move, args=(0,), width="stretch")
    c4.button("Next ▶", key="cal_next", on_click=_move, args=(1,), width="stretch")
    c5.date_input("Jump to", key="cal_jump", on_change=_jump, format="YYYY-MM-DD")


def _filters() -> CalendarFilter:
    with st.expander("Filters", expanded=False):
        c1, c2, c3 = st.columns(3)
        templates = _templates(db_url())
        template = c1.selectbox(
            "Template",
            list(templates),
            format_func=templates.get,
            index=None,
            placeholder="All templates",
            key="cal_template",
        )
        campaign_text = c2.text_input(
            "Find campaign", key="cal_campaign_search", placeholder="campaign or contact name"
        )
        campaigns = _campaigns(db_url(), campaign_text)
        campaign = c2.selectbox(
            "Campaign",
            list(campaigns),
            format_func=campaigns.get,
            index=None,
            placeholder="All campaigns",
            key="cal_campaign",
        )
        contact_text = c3.text_input("Find contact", key="cal_contact_search", placeholder="name, email or company")
        contacts = _contacts(db_url(), contact_text)
        contact = c3.selectbox(
            "Contact",
            list(contacts),
            format_func=contacts.get,
            index=None,
            placeholder="All contacts",
            key="cal_contact",
        )
        c4, c5 = st.columns(2)
        types = c4.multiselect("Message type", MESSAGE_TYPES, key="cal_types", format_func=type_label)
        statuses = c5.multiselect("Status", STATUSES, key="cal_statuses")
    return CalendarFilter(
        campaign_id=campaign,
        template_id=template,
        contact_id=contact,
        message_type=tuple(types),
        status=tuple(statuses),
    )


# --- drawing ----------------------------------------------------------------------


def _title(event: CalendarEvent) -> str:
    return f"{STATUS_MARKS.get(event.status, '')} {event.title} · {event.contact_name}"


def _fullcalendar(period: CalendarPeriod, view: str) -> None:
    tz = settings().tz
    events = []
    for e in period.events:
        # Local wall-clock times shown as they are (FullCalendar in "UTC" mode does
        # not convert), so the grid is in the configured timezone.
        local = e.start.astimezone(tz).replace(tzinfo=None)
        colour = TYPE_COLOURS.get(e.message_type, "#6b7280")
        events.append(
            {
                "id": str(e.id),
                "title": _title(e),
                "start": local.isoformat(),
                "end": (local + timedelta(minutes=45)).isoformat(),
                "backgroundColor": colour,
                "borderColor": "#dc2626" if e.status == "failed" else colour,
                "classNames": [f"status-{e.status}"],
            }
        )
    options = {
        "initialView": "timeGridWeek" if view == "week" else "dayGridMonth",
        "initialDate": period.anchor.isoformat(),
        "headerToolbar": False,
        "timeZone": "UTC",
        "firstDay": 1,
        "height": 680 if view == "week" else "auto",
        "dayMaxEvents": 4,
        "allDaySlot": False,
        "scrollTime": "07:00:00",
        "eventTimeFormat": {"hour": "2-digit", "minute": "2-digit", "hour12": False},
    }
    css = (
        ".status-canceled, .status-skipped {opacity: .55;}"
        ".status-failed {border-width: 3px !important;}"
        ".status-canceled .fc-event-title {text-decoration: line-through;}"
    )
    state = fullcalendar(
        events=events,
        options=options,
        custom_css=css,
        callbacks=["eventClick"],
        key=f"cal_fc_{view}_{period.anchor.isoformat()}_{len(events)}",
    )
    clicked = (state or {}).get("eventClick", {}).get("event", {}).get("id")
    if clicked and clicked != st.session_state.get("cal_last_click"):
        st.session_state["cal_last_click"] = clicked
        st.session_state["cal_selected"] = int(clicked)


def _month_grid(period: CalendarPeriod) -> None:
    st.caption("Busy month: each day shows its count by message type and its first steps.")
    header = st.columns(7)
    for column, name in zip(header, ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), strict=False):
        column.markdown(f"**{name}**")
    for week in month_cells(period):
        columns = st.columns(7, border=True)
        for column, cell in zip(columns, week, strict=False):
            label = f"**{cell.day.day}**" if cell.in_month else f":gray[{cell.day.day}]"
            lines = [label]
            if cell.summary:
                lines.append(f"{cell.summary.total} steps")
                lines.append(" ".join(f"{type_label(k)} {n}" for k, n in sorted(cell.summary.by_type.items())))
                lines += [f"{fmt(e.start, '%H:%M')} {_title(e)}" for e in cell.summary.first]
            column.markdown("  \n".join(lines))


def _week_grid(period: CalendarPeriod) -> None:
    st.caption("Busy week: steps per hour and day.")
    rows = hour_grid(period)
    days = [k for k in rows[0] if k != "hour"]
    figure = go.Figure(
        go.Heatmap(
            z=[[row[d] for d in days] for row in rows],
            x=days,
            y=[row["hour"] for row in rows],
            colorscale="Blues",
            hovertemplate="%{x} %{y}: %{z} steps<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(height=620, margin={"t": 10, "b": 10})
    st.plotly_chart(figure, key="cal_week_heatmap")
    if period.day_samples:
        st.caption("The first steps of each day (choose one below to see its details).")
        first = period.start.astimezone(settings().tz).date()
        for column, offset in zip(st.columns(7, border=True), range(7), strict=False):
            day = first + timedelta(days=offset)
            lines = [f"**{day:%a %d}**"]
            lines += [f"{fmt(e.start, '%H:%M')} {_title(e)}" for e in period.day_samples.get(f"{day:%Y-%m-%d}", [])]
            column.markdown("  \n".join(lines))


def _year(period: CalendarPeriod) -> None:
    heat = year_heatmap(period)
    figure = go.Figure(
        go.Heatmap(
            z=heat.totals,
            x=heat.days,
            y=heat.months,
            customdata=[
                [[e, s] for e, s in zip(row_e, row_s, strict=False)]
                for row_e, row_s in zip(heat.executed, heat.scheduled, strict=False)
            ],
            colorscale="YlOrRd",
            xgap=2,
            ygap=2,
            hoverongaps=False,
            hovertemplate="%{y} %{x}: %{z} steps<br>executed %{customdata[0]}, "
            "scheduled %{customdata[1]}<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed")
    figure.update_xaxes(dtick=1)
    figure.update_layout(height=480, margin={"t": 10, "b": 10})
    st.plotly_chart(figure, key="cal_year_heatmap")
    if heat.busiest:
        st.markdown("**Busiest days:** " + ", ".join(f"{d:%d %b} ({n})" for d, n in heat.busiest))


def _event_list(period: CalendarPeriod) -> None:
    listed = (
        period.events
        or [e for b in period.buckets for e in b.first]
        or [e for day in sorted(period.day_samples) for e in period.day_samples[day]]
    )
    if not listed:
        return
    options = {e.id: f"{fmt(e.start)} · {_title(e)} · {e.campaign_name}" for e in listed}
    chosen = st.selectbox(
        "Event",
        list(options),
        format_func=options.get,
        index=None,
        placeholder="Choose an event to see its details",
        key="cal_pick",
    )
    if chosen is not None:
        st.session_state["cal_selected"] = chosen


def _show_detail() -> None:
    step_id = st.session_state.get("cal_selected")
    if not step_id:
        return
    detail = _detail(db_url(), int(step_id))
    if detail is None:
        st.info("That step no longer exists.")
        return
    e = detail.event
    with st.container(border=True):
        st.subheader(f"{type_label(e.message_type)} {e.title}")
        st.markdown(
            f"{badge(e.status)} · campaign **{e.campaign_name}** ({detail.campaign_status}) · "
            f"contact **{e.contact_name}** · step {detail.position}"
        )
        when = f"Planned {fmt(detail.scheduled_at)}"
        if detail.executed_at:
            when += f" · executed {fmt(detail.executed_at)}"
        st.caption(f"{when} · attempts {detail.attempts}")
        if detail.last_error:
            st.error(detail.last_error)
        if detail.subject:
            st.markdown(f"**{'Title' if e.message_type == 'task' else 'Subject'}:** {detail.subject}")
        if detail.webhook_url:
            st.markdown(f"**URL:** `{detail.webhook_url}`")
        if detail.body:
            st.text(detail.body)


def _download(period: CalendarPeriod, filters: CalendarFilter) -> None:
    export = ExportFilter(
        start=period.start,
        end=period.end,
        campaign_id=filters.campaign_id,
        template_id=filters.template_id,
        contact_id=filters.contact_id,
        message_type=filters.message_type,
        status=filters.status,
    )

    def build() -> bytes:
        with get_db().read_session() as s:
            return csv_bytes(s, "calendar", export)

    st.download_button(
        "⬇️ Download this period (CSV)",
        data=build,
        file_name=export_file_name("calendar", export),
        mime="text/csv",
        on_click="ignore",
        key="cal_download",
    )


# --- page -------------------------------------------------------------------------

page_title(":material/calendar_month: Calendar")
_init_state()
_navigation()
filters = _filters()
view = st.session_state["cal_view"]
anchor = st.session_state["cal_anchor"]
period = _period(db_url(), settings().timezone, view, anchor, astuple(filters))

st.markdown(f"### {period_label(view, anchor)}")
st.caption(
    f"{period.total} step(s) in this {view} · times in {settings().timezone} · "
    + " ".join(f"{type_label(k)}" for k in MESSAGE_TYPES)
    + " · ✓ sent/done ✗ failed ↷ skipped ○ pending ⊘ canceled"
)
if period.total == 0:
    st.info(
        "Nothing scheduled or executed in this period. Start a campaign on **New Campaign**, or move to another period."
    )
elif view == "year":
    _year(period)
elif not period.aggregated:
    _fullcalendar(period, view)
elif view == "month":
    _month_grid(period)
else:
    _week_grid(period)

_event_list(period)
_show_detail()
if period.total:
    _download(period, filters)
