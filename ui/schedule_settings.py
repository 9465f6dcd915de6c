"""The schedule settings shared by New Campaign and the template editor (SPEC
section 10): whose clock the steps are planned in, the send window, the holiday
calendar and the exemption from frequency caps.

State lives in `st.session_state` under a prefix, like the steps editor's;
`load_schedule` replaces it (a template chosen or opened), `schedule_settings`
renders it and returns the schedule as input for the domain services.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from functools import cache
from typing import Any
from zoneinfo import available_timezones

import holidays
import streamlit as st

from automations.domain.schedule import DAY_NAMES, holiday_calendar, parse_hhmm
from automations.services.planning import DEFAULT_SCHEDULE, schedule_json
from automations.services.schemas import SendWindowInput, window_end_problem
from ui.common import field_error, mark_shown

CONTACT = "contact"
WEEKDAYS = list(DAY_NAMES[:5])
OPENS = time(9, 0)
CLOSES = time(17, 0)
MAX_HOLIDAY_CODE = 12  # what ScheduleInput accepts ("US-NY", "DE-BY")
TITLE = "Send window and time zone"


def _key(prefix: str, name: str) -> str:
    return f"{prefix}_sched_{name}"


# --- the choices ---------------------------------------------------------------


@cache
def time_zones() -> tuple[str, ...]:
    """The contact's own zone, then every IANA zone by name (the region/city ones
    and UTC: the bare aliases such as "EST" or "localtime" only confuse a list)."""
    zones = sorted(z for z in available_timezones() if "/" in z or z == "UTC")
    return (CONTACT, *zones)


def zone_label(zone: str) -> str:
    return "Contact's time zone" if zone == CONTACT else zone


def _words(class_name: str) -> str:
    """`BosniaAndHerzegovina` as "Bosnia and Herzegovina"."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", class_name).split()
    return " ".join(w.lower() if i and w in ("And", "Of", "The") else w for i, w in enumerate(words))


@cache
def holiday_countries() -> dict[str, str]:
    """Country code -> "United States (US)", for every country the `holidays`
    package knows, by its two-letter code, sorted by name."""
    codes = [code for code in holidays.list_supported_countries() if len(code) == 2]
    try:
        from holidays.registry import COUNTRIES  # the package's own names of its countries

        names = {entry[1]: _words(entry[0]) for entry in COUNTRIES.values()}
    except (ImportError, AttributeError, IndexError, TypeError):
        names = {code: code for code in codes}
    # Only each country's own code: "UK" is the package's alias of GB.
    labels = {code: f"{names[code]} ({code})" for code in codes if code in names}
    return dict(sorted(labels.items(), key=lambda item: item[1]))


@cache
def subdivisions(country: str) -> dict[str, str]:
    """Subdivision code -> "New York (NY)" of `country`, the ones a schedule can
    name ("US-NY": a code the domain upper-cases and accepts)."""
    try:
        calendar_class = type(holiday_calendar(country))
    except KeyError:
        return {}
    aliases: dict[str, str] = {}
    for name, code in getattr(calendar_class, "subdivisions_aliases", {}).items():
        aliases.setdefault(code, name)
    found = {}
    for code in getattr(calendar_class, "subdivisions", ()):
        if code == code.upper() and "-" not in code and len(f"{country}-{code}") <= MAX_HOLIDAY_CODE:
            found[code] = f"{aliases[code]} ({code})" if code in aliases else code
    return found


# --- the state -----------------------------------------------------------------


def load_schedule(prefix: str, schedule: Mapping[str, Any] | None) -> None:
    """Start editing `schedule` (a stored one, every key present, or None for the
    defaults); replaces whatever the widgets of `prefix` held."""
    values = schedule_json(schedule)
    window = values["send_window"]
    country, _, subdivision = (values["holidays"] or "").partition("-")
    state = st.session_state
    state[_key(prefix, "tz")] = values["timezone"]
    state[_key(prefix, "window")] = window is not None
    state[_key(prefix, "days")] = list(window["days"]) if window else list(WEEKDAYS)
    state[_key(prefix, "start")] = _time(window["start"], OPENS) if window else OPENS
    state[_key(prefix, "end")] = _time(window["end"], CLOSES) if window else CLOSES
    state[_key(prefix, "holidays")] = country or None
    state[_key(prefix, "subdiv")] = subdivision or None
    state[_key(prefix, "exempt")] = bool(values["frequency_cap_exempt"])
    state[_key(prefix, "value")] = values


def _time(text: str | None, default: time) -> time:
    try:
        return parse_hhmm(text or "")
    except ValueError:
        return default


def _hhmm(value: time | None) -> str:
    return "" if value is None else f"{value:%H:%M}"


WINDOW_FIELDS = ("days", "start", "end")


def _window_problems(days: list[str], start: time | None, end: time | None) -> dict[str, str]:
    """What is wrong with the window as it is set (what a save would say of it)."""
    problems = {
        field: SendWindowInput.empty_messages[field]
        for field, value in zip(WINDOW_FIELDS, (days, start, end), strict=True)
        if value is None or value == []
    }
    if start is not None and end is not None and end <= start:
        problems["end"] = window_end_problem(_hhmm(start))
    return problems


def _new_country(prefix: str) -> None:
    """Another country: its subdivisions are not the last one's."""
    st.session_state[_key(prefix, "subdiv")] = None


def schedule_settings(prefix: str, errors: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Render the settings; return the schedule as a dict for the domain services,
    or None when every setting is the default (the contact's clock, any time, no
    holidays, capped).

    `errors` (from a `ValidationError`, e.g. `schedule.send_window.end`) are shown
    under the field they concern.
    """
    errors = errors or {}
    state = st.session_state
    if _key(prefix, "tz") not in state:
        # Widgets forget their values when they are not drawn (another page was
        # open): they start again from what they last returned.
        load_schedule(prefix, state.get(_key(prefix, "value")))
    # A bordered section rather than an expander: the step panels are the page's
    # expanders, and what is said of them (how many, the first one) stays true.
    with st.container(border=True, key=_key(prefix, "box")):
        st.markdown(f"**{TITLE}**")
        zones = list(time_zones())
        if state[_key(prefix, "tz")] not in zones:
            zones.append(state[_key(prefix, "tz")])  # a stored name the list leaves out
        zone = st.selectbox(
            "Whose clock",
            zones,
            key=_key(prefix, "tz"),
            format_func=zone_label,
            help="The send window and the send times are local times of this zone. The contact's time zone falls "
            "back to the team's when the contact has none.",
        )
        field_error(errors, "schedule.timezone")

        windowed = st.toggle(
            "Only send inside a window",
            key=_key(prefix, "window"),
            help="A step due outside the window waits for its next opening.",
        )
        window: dict[str, Any] | None = None
        if windowed:
            state.setdefault(_key(prefix, "days"), list(WEEKDAYS))  # a widget not drawn forgets its value
            state.setdefault(_key(prefix, "start"), OPENS)
            state.setdefault(_key(prefix, "end"), CLOSES)
            columns = st.columns([3, 1, 1])
            days = columns[0].multiselect(
                "Days",
                list(DAY_NAMES),
                key=_key(prefix, "days"),
                format_func=str.capitalize,
                placeholder="Choose the days",
            )
            start = columns[1].time_input("Opens at", key=_key(prefix, "start"))
            end = columns[2].time_input("Closes at", key=_key(prefix, "end"))
            # The window is checked as it is set: these three values are all a save
            # would look at, so what it said of them may only be out of date.
            live = _window_problems(days, start, end)
            for field, column in zip(WINDOW_FIELDS, columns, strict=True):
                if field in live:
                    column.error(live[field], icon=":material/warning:")
            window = {"days": days, "start": _hhmm(start), "end": _hhmm(end)}
        for field in WINDOW_FIELDS:
            mark_shown(f"schedule.send_window.{field}")
        field_error(errors, "schedule.send_window")

        c1, c2 = st.columns(2)
        countries = holiday_countries()
        options = list(countries)
        country = state.get(_key(prefix, "holidays"))
        if country and country not in countries:
            options.append(country)  # a stored code the list does not name (an alias)
        country = c1.selectbox(
            "Holidays of",
            options,
            index=None,
            key=_key(prefix, "holidays"),
            format_func=lambda code: countries.get(code, code),
            placeholder="No holidays",
            on_change=_new_country,
            args=(prefix,),
            help="No step goes out on a public holiday of this calendar.",
        )
        code = country
        regions = subdivisions(country) if country else {}
        if country and (regions or state.get(_key(prefix, "subdiv"))):
            choices = list(regions)
            current = state.get(_key(prefix, "subdiv"))
            if current and current not in regions:
                choices.append(current)
            region = c2.selectbox(
                "Region (optional)",
                choices,
                index=None,
                key=_key(prefix, "subdiv"),
                format_func=lambda sub: regions.get(sub, sub),
                placeholder="The whole country",
                help="Adds the holidays of a state or region to the country's.",
            )
            if region:
                code = f"{country}-{region}"
        with c1:
            field_error(errors, "schedule.holidays")

        exempt = st.checkbox(
            "Exempt from frequency caps (transactional)",
            key=_key(prefix, "exempt"),
            help="Receipts, password resets and the like go out even when the contact has had their share of "
            "messages for the day.",
        )
        field_error(errors, "schedule.frequency_cap_exempt", "schedule")

    schedule = {"timezone": zone, "send_window": window, "holidays": code, "frequency_cap_exempt": bool(exempt)}
    state[_key(prefix, "value")] = schedule
    return None if schedule == DEFAULT_SCHEDULE else schedule


# --- in words ------------------------------------------------------------------


def _days(days: list[str]) -> str:
    """["mon", ..., "fri"] as "Mon–Fri"; days with gaps one by one ("Mon, Wed")."""
    indexes = sorted(DAY_NAMES.index(d) for d in days if d in DAY_NAMES)
    if len(indexes) == 7:
        return "every day"
    if len(indexes) > 2 and indexes == list(range(indexes[0], indexes[-1] + 1)):
        return f"{DAY_NAMES[indexes[0]].capitalize()}–{DAY_NAMES[indexes[-1]].capitalize()}"
    return ", ".join(DAY_NAMES[i].capitalize() for i in indexes)


def describe_schedule(schedule: Mapping[str, Any] | None) -> str:
    """One line: "Contact's time zone · Mon–Fri 09:00–17:00 · holidays US"."""
    values = schedule_json(schedule)
    window = values["send_window"]
    parts = [zone_label(values["timezone"])]
    parts.append(f"{_days(window['days'])} {window['start']}–{window['end']}" if window else "any day, any time")
    parts.append(f"holidays {values['holidays']}" if values["holidays"] else "no holidays")
    if values["frequency_cap_exempt"]:
        parts.append("exempt from frequency caps")
    return " · ".join(parts)
