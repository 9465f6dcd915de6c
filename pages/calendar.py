"""Calendar: every step of every campaign in a week, month or year, with filters,
the steps of a chosen day, the detail of an event, and the period's CSV.

Every day and time on the page is written one way (`day_label`, `moment_label`:
"Mon 2 Mar 2026 14:05"); the calendar component is set up to write its headers
and times the same way. Times are the team's (AUTOMATIONS_TIMEZONE), or with
"Contact's local time" on, each event's in the zone its campaign plans in (the
contact's own by default), named on the event; the periods' days stay the team's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
import streamlit as st
from streamlit_calendar import calendar as fullcalendar

from automations.domain.errors import NotFound
from automations.domain.timeutil import utcnow
from automations.reports.calendar import (
    DATE_INPUT_FORMAT,
    VIEWS,
    WEEKDAY_NAMES,
    CalendarDay,
    CalendarEvent,
    CalendarFilter,
    CalendarPeriod,
    EventDetail,
    View,
    YearDay,
    busiest_days,
    calendar_day,
    calendar_period,
    column_label,
    day_label,
    event_detail,
    hour_grid,
    local_day,
    moment_label,
    month_cells,
    period_days,
    period_label,
    planning_zones,
    shift_period,
    time_label,
    year_months,
)
from automations.reports.exports import ExportFilter, csv_bytes, export_file_name
from automations.services.campaigns import CampaignFilter, list_campaigns
from automations.services.contacts import ContactFilter, search_contacts
from automations.services.templates import list_templates
from ui.common import LIST_TTL, badge, db_url, get_db, page_title, settings, type_label

TYPE_COLOURS = {"email": "#2563eb", "sms": "#16a34a", "task": "#d97706", "webhook": "#7c3aed"}
# Streamlit's named colours nearest to TYPE_COLOURS, for the legend.
TYPE_BADGES = {"email": "blue", "sms": "green", "task": "orange", "webhook": "violet"}
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
# The year view's day shades (fill, text) from a few steps (1) to as busy as the
# busiest day of the year (4); days without steps keep the button's own colours.
YEAR_SHADES = {
    1: ("#fef3c7", "#1f2937"),
    2: ("#fde68a", "#1f2937"),
    3: ("#fb923c", "#1f2937"),
    4: ("#c2410c", "#ffffff"),
}
# The pickers of what is chosen in one period and view (moving to another empties
# them); they are set to None rather than forgotten, which would leave the browser
# showing the old choice.
PICKERS = ("cal_day", "cal_pick")
# FullCalendar's Intl locale: day headers "Mon 2" and 24-hour times "09:00", as `day_label` writes them.
FULLCALENDAR_LOCALE = "en-GB"
TIME_FORMAT = {"hour": "2-digit", "minute": "2-digit", "hour12": False}


# --- cached reads -----------------------------------------------------------------


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _period(url: str, tz_name: str, view: View, anchor: date, filters: tuple) -> CalendarPeriod:
    with get_db().read_session() as s:
        return calendar_period(s, view, anchor, settings().tz, CalendarFilter(*filters))


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _day(url: str, tz_name: str, day: date, filters: tuple) -> CalendarDay:
    with get_db().read_session() as s:
        return calendar_day(s, day, settings().tz, CalendarFilter(*filters))


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _templates(url: str) -> dict[int, str]:
    with get_db().read_session() as s:
        return {t.id: t.name for t in list_templates(s)}


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _campaigns(url: str, text: str) -> dict[int, str]:
    with get_db().read_session() as s:
        found, _ = list_campaigns(s, CampaignFilter(search=text), limit=50)
        return {c.id: f"{c.name} · {c.contact_name} (#{c.id})" for c in found}


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _contacts(url: str, text: str) -> dict[int, str]:
    with get_db().read_session() as s:
        found, _ = search_contacts(s, ContactFilter(search=text), limit=50)
        return {c.id: f"{c.full_name} · {c.email or c.phone or ''} (#{c.id})" for c in found}


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _zones(url: str, campaign_ids: tuple[int, ...]) -> dict[int, str]:
    with get_db().read_session() as s:
        return planning_zones(s, campaign_ids)


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _detail(url: str, step_id: int) -> EventDetail | None:
    with get_db().read_session() as s:
        try:
            return event_detail(s, step_id)
        except NotFound:
            return None


# --- whose clock -------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """Whose time the page writes: the team's zone, or (`zones` given) each event's
    contact's, that is the zone its campaign plans in, named beside the time."""

    team: tzinfo
    zones: Mapping[int, str] | None = None  # campaign id -> IANA zone

    @property
    def local(self) -> bool:
        return self.zones is not None

    def zone_name(self, event: CalendarEvent) -> str | None:
        return None if self.zones is None else self.zones.get(event.campaign_id)

    def zone(self, event: CalendarEvent) -> tzinfo:
        name = self.zone_name(event)
        return ZoneInfo(name) if name else self.team

    def _named(self, text: str, event: CalendarEvent) -> str:
        name = self.zone_name(event)
        return f"{text} {name}" if name else text

    def time(self, event: CalendarEvent) -> str:
        """ "14:05", or "09:05 America/New_York" in the contact's clock."""
        return self._named(time_label(event.start, self.zone(event)), event)

    def moment(self, event: CalendarEvent) -> str:
        """ "Mon 2 Mar 2026 14:05", or "Mon 2 Mar 2026 09:05 America/New_York"."""
        return self._named(moment_label(event.start, self.zone(event)), event)

    def wall(self, event: CalendarEvent) -> datetime:
        """The event's local wall-clock time, as the calendar component places it."""
        return event.start.astimezone(self.zone(event)).replace(tzinfo=None)


def _clock(events: Iterable[CalendarEvent]) -> Clock:
    """The team's clock, or with "Contact's local time" on, the contacts' zones of
    `events` (the events the page shows, looked up by their campaigns)."""
    team = settings().tz
    if not st.session_state.get("cal_local"):
        return Clock(team)
    return Clock(team, _zones(db_url(), tuple(sorted({e.campaign_id for e in events}))))


def _shown(period: CalendarPeriod) -> list[CalendarEvent]:
    """Every event the period's view names (listed, or the first of each day or hour)."""
    return [
        *period.events,
        *(e for b in period.buckets for e in b.first),
        *(e for key in sorted(period.day_samples) for e in period.day_samples[key]),
    ]


# --- state ------------------------------------------------------------------------


def _today() -> date:
    return utcnow().astimezone(settings().tz).date()


def _init_state() -> None:
    st.session_state.setdefault("cal_view", "month")
    st.session_state.setdefault("cal_anchor", _today())
    st.session_state.setdefault("cal_jump", st.session_state["cal_anchor"])
    st.session_state.setdefault("cal_nav", 0)


def _navigated() -> None:
    """Another period or view: forget the day and event chosen in the old one.

    `cal_nav` is part of the calendar component's key, so the component is drawn
    afresh and its last click (which it keeps returning) is not taken again."""
    for key in PICKERS:
        st.session_state[key] = None
    st.session_state.pop("cal_selected", None)
    st.session_state["cal_nav"] = st.session_state.get("cal_nav", 0) + 1


def _move(steps: int) -> None:
    anchor = st.session_state["cal_anchor"]
    st.session_state["cal_anchor"] = (
        _today() if steps == 0 else shift_period(st.session_state["cal_view"], anchor, steps)
    )
    st.session_state["cal_jump"] = st.session_state["cal_anchor"]
    _navigated()


def _jump() -> None:
    if st.session_state.get("cal_jump"):
        st.session_state["cal_anchor"] = st.session_state["cal_jump"]
    _navigated()


def _open_day(day: date) -> None:
    """A day clicked in the year view: its week, with the steps of that day listed."""
    st.session_state["cal_view"] = "week"
    st.session_state["cal_anchor"] = day
    st.session_state["cal_jump"] = day
    _navigated()
    st.session_state["cal_day"] = day


def _choose_day(day: date) -> None:
    """A day clicked in the current period: list its steps (before the day picker is drawn)."""
    st.session_state["cal_day"] = day
    st.session_state["cal_pick"] = None


def _choose_event(step_id: int) -> None:
    st.session_state["cal_selected"] = step_id
    st.session_state["cal_pick"] = step_id


def _day_changed() -> None:
    st.session_state["cal_pick"] = None


def _picked() -> None:
    st.session_state["cal_selected"] = st.session_state.get("cal_pick")


def _period_day_list(view: View, anchor: date) -> list[date]:
    first, after = period_days(view, anchor)
    return [first + timedelta(days=i) for i in range((after - first).days)]


# --- controls ---------------------------------------------------------------------


def _navigation() -> None:
    c1, c2, c3, c4, c5 = st.columns([3, 1, 1, 1, 2], vertical_alignment="bottom")
    c1.radio("View", list(VIEWS), key="cal_view", horizontal=True, format_func=str.title, on_change=_navigated)
    c2.button("◀ Previous", key="cal_prev", on_click=_move, args=(-1,), width="stretch")
    c3.button("Today", key="cal_today", on_click=_move, args=(0,), width="stretch")
    c4.button("Next ▶", key="cal_next", on_click=_move, args=(1,), width="stretch")
    c5.date_input("Jump to (day/month/year)", key="cal_jump", on_change=_jump, format=DATE_INPUT_FORMAT)
    st.toggle(
        "Contact's local time",
        key="cal_local",
        help="Show each step at its time in its contact's zone (the zone its campaign plans in), named on "
        f"each step, instead of the team's zone ({settings().timezone}). The days of the period stay the team's.",
    )


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


def _legend() -> str:
    types = " ".join(f":{TYPE_BADGES[k]}-badge[{type_label(k)}]" for k in MESSAGE_TYPES)
    return f"{types} · ✓ sent/done ✗ failed ↷ skipped ○ pending ▸ running ⊘ canceled"


# Month events are all bars (time, then the whole title wrapped over as many lines
# as it needs), never FullCalendar's dots or titles cut at the cell's edge.
FULLCALENDAR_CSS = """
.fc-daygrid-event, .fc-daygrid-block-event { white-space: normal; }
.fc-daygrid-block-event .fc-event-main-frame { align-items: flex-start; }
.fc-event-time { flex-shrink: 0; overflow: visible; }
.fc-event-title, .fc-h-event .fc-event-title {
  white-space: normal; overflow: visible; text-overflow: clip; overflow-wrap: anywhere;
}
.fc-timegrid-slot { height: 2.2em; }
.fc-timegrid-event .fc-event-title { overflow: hidden; }
.fc-daygrid-day, .fc-timegrid-slot-lane { cursor: pointer; }
.status-canceled, .status-skipped { opacity: .55; }
.status-failed { border-width: 3px !important; }
.status-canceled .fc-event-title { text-decoration: line-through; }
"""


def _fullcalendar(period: CalendarPeriod, view: View, clock: Clock) -> None:
    tz = settings().tz
    events: list[dict[str, Any]] = []
    for e in period.events:
        # Local wall-clock times shown as they are (FullCalendar in "UTC" mode does
        # not convert), so the grid is in the configured timezone, or each event in
        # its contact's (named in its title).
        local = clock.wall(e)
        colour = TYPE_COLOURS.get(e.message_type, "#6b7280")
        zone = clock.zone_name(e)
        events.append(
            {
                "id": str(e.id),
                "title": f"{_title(e)} · {zone}" if zone else _title(e),
                "start": local.isoformat(),
                "end": (local + timedelta(minutes=45)).isoformat(),
                "backgroundColor": colour,
                "borderColor": "#dc2626" if e.status == "failed" else colour,
                "textColor": "#ffffff",
                "classNames": [f"status-{e.status}"],
            }
        )
    options: dict[str, Any] = {
        "initialDate": period.anchor.isoformat(),
        "headerToolbar": False,
        "timeZone": "UTC",
        "locale": FULLCALENDAR_LOCALE,
        "firstDay": 1,
        "eventDisplay": "block",
        "displayEventEnd": False,
        "eventTimeFormat": TIME_FORMAT,
        # "Today" is the display timezone's, not the browser's.
        "now": utcnow().astimezone(tz).replace(tzinfo=None).isoformat(timespec="minutes"),
    }
    if view == "week":
        # The whole day is in the grid: it opens at 07:00 and scrolls from midnight to midnight.
        options |= {
            "initialView": "timeGridWeek",
            "height": 760,
            "slotMinTime": "00:00:00",
            "slotMaxTime": "24:00:00",
            "scrollTime": "07:00:00",
            "allDaySlot": False,
            "slotLabelFormat": TIME_FORMAT,
            "dayHeaderFormat": {"weekday": "short", "day": "numeric"},
        }
    else:
        options |= {
            "initialView": "dayGridMonth",
            "height": "auto",
            "dayMaxEvents": 4,
            "showNonCurrentDates": False,
            "fixedWeekRows": False,
            "dayHeaderFormat": {"weekday": "short"},
        }
    clocks = "local" if clock.local else "team"
    key = f"cal_fc_{st.session_state['cal_nav']}_{view}_{period.anchor.isoformat()}_{len(events)}_{clocks}"
    state = fullcalendar(
        events=events,
        options=options,
        custom_css=FULLCALENDAR_CSS,
        callbacks=["dateClick", "eventClick"],
        key=key,
    )
    # The component returns its last click on every rerun: act on each click once.
    value = state or {}
    seen = json.dumps([key, value], sort_keys=True, default=str)
    if not value.get("callback") or st.session_state.get("cal_fc_seen") == seen:
        return
    st.session_state["cal_fc_seen"] = seen
    days = _period_day_list(view, period.anchor)
    if value["callback"] == "eventClick":
        clicked = next((e for e in period.events if str(e.id) == value["eventClick"]["event"].get("id")), None)
        if clicked is not None:
            _choose_day(local_day(clicked.start, tz))
            _choose_event(clicked.id)
    elif value["callback"] == "dateClick":
        day = date.fromisoformat(value["dateClick"]["date"][:10])
        if day in days:
            _choose_day(day)


def _day_button(day: date, label: str, key: str) -> None:
    st.button(
        label, key=key, on_click=_choose_day, args=(day,), type="tertiary", help=f"List the steps of {day_label(day)}"
    )


def _month_grid(period: CalendarPeriod, clock: Clock) -> None:
    st.caption(
        "Busy month: each day shows its count by message type and its first steps; click a day to list them all."
    )
    for column, name in zip(st.columns(7), WEEKDAY_NAMES, strict=True):
        column.markdown(f"**{name}**")
    for week in month_cells(period):
        for column, cell in zip(st.columns(7, border=True), week, strict=True):
            if not cell.in_month:
                column.markdown(f":gray[{cell.day.day}]")
                continue
            with column:
                _day_button(cell.day, f"**{cell.day.day}**", f"cal_mday_{cell.day.isoformat()}")
            if cell.summary:
                lines = [f"{cell.summary.total} steps"]
                lines.append(" ".join(f"{type_label(k)} {n}" for k, n in sorted(cell.summary.by_type.items())))
                lines += [f"{clock.time(e)} {_title(e)}" for e in cell.summary.first]
                column.markdown("  \n".join(lines))


def _week_grid(period: CalendarPeriod, clock: Clock) -> None:
    hours_in = f" (hours of the team's zone, {settings().timezone})" if clock.local else ""
    st.caption(f"Busy week: steps per hour and day, over the whole day{hours_in}.")
    rows = hour_grid(period)
    days = [k for k in rows[0] if k != "hour"]
    hours = [row["hour"] for row in rows]
    figure = go.Figure(
        go.Heatmap(
            z=[[row[d] for d in days] for row in rows],
            x=days,
            y=hours,
            colorscale="Blues",
            hovertemplate="%{x} %{y}: %{z} steps<extra></extra>",
        )
    )
    # Every hour labelled, midnight at the top.
    figure.update_yaxes(autorange="reversed", type="category", tickmode="array", tickvals=hours)
    figure.update_xaxes(type="category", side="top")
    figure.update_layout(height=680, margin={"t": 30, "b": 10})
    st.plotly_chart(figure, key="cal_week_heatmap")
    st.caption("The first steps of each day; click a day to list all its steps.")
    first, _ = period_days("week", period.anchor)
    for column, offset in zip(st.columns(7, border=True), range(7), strict=True):
        day = first + timedelta(days=offset)
        with column:
            _day_button(day, f"**{column_label(day)}**", f"cal_wday_{day.isoformat()}")
        lines = [f"{clock.time(e)} {_title(e)}" for e in period.day_samples.get(day.isoformat(), [])]
        column.markdown("  \n".join(lines) or ":gray[no steps]")


def _year_style() -> None:
    """The year's day buttons: small, and shaded by how busy each day is (the shade
    is in the button's key, which Streamlit exposes as a CSS class)."""
    rules = [
        '[class*="st-key-cal_yday_"] button {min-height: 2.6rem; padding: 0 2px; line-height: 1.05;'
        " border-color: rgba(128, 128, 128, .25);}",
        '[class*="st-key-cal_yday_"] button p {font-size: .8rem;}',
        '[class*="st-key-cal_ymonth_"] [data-testid="stCaptionContainer"] {text-align: center;}',
        '[class*="st-key-cal_yblank_"] {visibility: hidden;}',
        '[class*="st-key-cal_yblank_"] button {min-height: 2.6rem;}',
    ]
    rules += [
        f'[class*="st-key-cal_yday_s{level}_"] button {{background-color: {fill}; color: {text};}}'
        for level, (fill, text) in YEAR_SHADES.items()
    ]
    st.html("<style>" + "\n".join(rules) + "</style>")


def _year_day(cell: YearDay) -> None:
    label = f"**{cell.day.day}**" + (f"  \n{cell.total}" if cell.total else "  \n·")
    st.button(
        label,
        key=f"cal_yday_s{cell.shade}_{cell.day.isoformat()}",
        on_click=_open_day,
        args=(cell.day,),
        help=f"{day_label(cell.day)}: {cell.total} step(s), {cell.executed} executed, {cell.scheduled} scheduled",
        width="stretch",
    )


def _year(period: CalendarPeriod) -> None:
    st.caption("Each day shows its number of steps (· for none), darker when busier; click a day to open its week.")
    _year_style()
    months = year_months(period)
    for row in range(0, 12, 3):
        for column, month in zip(st.columns(3, gap="large"), months[row : row + 3], strict=True):
            with column.container(key=f"cal_ymonth_{month.month}"):
                st.markdown(f"**{month.name}**")
                # One column per weekday, its days stacked: a seventh of the
                # layout blocks a row per week needs, so the year draws quickly.
                for weekday, column_of_days in enumerate(st.columns(7, gap="xxsmall")):
                    with column_of_days:
                        st.caption(WEEKDAY_NAMES[weekday])
                        for week in month.weeks:
                            cell = week[weekday]
                            if cell is not None:
                                _year_day(cell)
                            elif week is month.weeks[0]:
                                # Before the 1st: a blank the height of a day.
                                st.button(
                                    " ", key=f"cal_yblank_{month.month}_{weekday}", disabled=True, width="stretch"
                                )
    if busiest := busiest_days(period):
        st.markdown("**Busiest days:** " + ", ".join(f"{day_label(d)} ({n})" for d, n in busiest))


def _day_picker(view: View, anchor: date) -> date | None:
    days = _period_day_list(view, anchor)
    if st.session_state.get("cal_day") not in (None, *days):
        st.session_state["cal_day"] = None
    return st.selectbox(
        "Day",
        days,
        format_func=day_label,
        index=None,
        placeholder="Click a day in the calendar, or choose one, to list its steps",
        key="cal_day",
        on_change=_day_changed,
    )


def _day_time(event: CalendarEvent, day: date, clock: Clock) -> str:
    """The event's time in the day's list; in a contact's clock, with its day when
    that is not the listed (team's) day."""
    zone = clock.zone(event)
    if local_day(event.start, zone) == day:
        return clock.time(event)
    return f"{column_label(local_day(event.start, zone))} {clock.time(event)}"


def _day_list(day: CalendarDay, filters: CalendarFilter, clock: Clock) -> None:
    st.markdown(f"#### {day_label(day.day)}")
    if not day.total:
        st.caption(f"Nothing scheduled or executed on {day_label(day.day)}.")
        return
    shown = len(day.events)
    more = f" (the first {shown} listed; download the day for all of them)" if shown < day.total else ""
    st.caption(f"{day.total} step(s) on {day_label(day.day)}{more}")
    st.table(
        [
            {
                "Time": _day_time(e, day.day, clock),
                "Step": e.title,
                "Type": type_label(e.message_type),
                "Status": f"{STATUS_MARKS.get(e.status, '')} {e.status}",
                "Campaign": e.campaign_name,
                "Contact": e.contact_name,
            }
            for e in day.events
        ],
        hide_index=True,
    )
    _download(day.start, day.end, filters, "⬇️ Download this day (CSV)", "cal_download_day")


def _event_list(period: CalendarPeriod, day: CalendarDay | None, clock: Clock) -> None:
    if day is not None:
        options = {e.id: f"{_day_time(e, day.day, clock)} · {_title(e)} · {e.campaign_name}" for e in day.events}
    else:
        listed = (
            period.events
            or [e for b in period.buckets for e in b.first]
            or [e for key in sorted(period.day_samples) for e in period.day_samples[key]]
        )
        options = {e.id: f"{clock.moment(e)} · {_title(e)} · {e.campaign_name}" for e in listed}
    if not options:
        return
    if st.session_state.get("cal_pick") not in (None, *options):
        st.session_state["cal_pick"] = None
    st.selectbox(
        "Event",
        list(options),
        format_func=options.get,
        index=None,
        placeholder="Choose an event to see its details",
        key="cal_pick",
        on_change=_picked,
    )


def _show_detail() -> None:
    step_id = st.session_state.get("cal_selected")
    if not step_id:
        return
    detail = _detail(db_url(), int(step_id))
    if detail is None:
        st.info("That step no longer exists.")
        return
    # The card is in the contact's clock (the zone the campaign plans in) with the toggle on.
    local = bool(st.session_state.get("cal_local"))
    tz = ZoneInfo(detail.zone) if local else settings().tz
    zone = f" {detail.zone}" if local else ""
    e = detail.event
    with st.container(border=True):
        st.subheader(f"{type_label(e.message_type)} · {e.title}")
        st.markdown(
            f"{badge(e.status)} · campaign **{e.campaign_name}** ({detail.campaign_status}) · "
            f"contact **{e.contact_name}** · step {detail.position + 1}"
        )
        when = f"Planned {moment_label(detail.scheduled_at, tz)}{zone}"
        if detail.executed_at:
            when += f" · executed {moment_label(detail.executed_at, tz)}{zone}"
        st.caption(f"{when} · attempts {detail.attempts}")
        if detail.schedule_note:
            st.markdown(f"**Why it moved:** {detail.schedule_note}")
        if detail.last_error:
            st.error(detail.last_error)
        if detail.subject:
            st.markdown(f"**{'Title' if e.message_type == 'task' else 'Subject'}:** {detail.subject}")
        if detail.webhook_url:
            st.markdown(f"**URL:** `{detail.webhook_url}`")
        if detail.body:
            st.text(detail.body)


def _download(start: datetime, end: datetime, filters: CalendarFilter, label: str, key: str) -> None:
    export = ExportFilter(
        start=start,
        end=end,
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
        label,
        data=build,
        file_name=export_file_name("calendar", export),
        mime="text/csv",
        on_click="ignore",
        key=key,
    )


# --- page -------------------------------------------------------------------------

page_title(":material/calendar_month: Calendar")
_init_state()
_navigation()
filters = _filters()
view: View = st.session_state["cal_view"]
anchor: date = st.session_state["cal_anchor"]
period = _period(db_url(), settings().timezone, view, anchor, astuple(filters))

clock = _clock(_shown(period))
times_in = (
    f"times in each contact's zone, named on each step (days of {settings().timezone})"
    if clock.local
    else f"times in {settings().timezone}"
)
st.markdown(f"### {period_label(view, anchor)}")
st.caption(f"{period.total} step(s) in this {view} · {times_in} · {_legend()}")
if period.total == 0:
    st.info(
        "Nothing scheduled or executed in this period. Start a campaign on **New Campaign**, or move to another period."
    )
if view == "year":
    _year(period)
elif period.total == 0:
    pass
elif not period.aggregated:
    _fullcalendar(period, view, clock)
elif view == "month":
    _month_grid(period, clock)
else:
    _week_grid(period, clock)

chosen_day = _day_picker(view, anchor) if view != "year" else None
day = _day(db_url(), settings().timezone, chosen_day, astuple(filters)) if chosen_day else None
day_clock = _clock(day.events) if day is not None else clock
if day is not None:
    _day_list(day, filters, day_clock)
_event_list(period, day, day_clock)
_show_detail()
if period.total:
    _download(period.start, period.end, filters, "⬇️ Download this period (CSV)", "cal_download")
