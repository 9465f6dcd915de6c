"""What every page shares: the cached database, the settings, small render helpers.

Pages call `automations` through these; no SQL or business rules live here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import streamlit as st

from automations.domain.config import Settings, get_settings
from automations.domain.db import Database
from automations.domain.errors import Conflict, NotFound, ValidationError
from automations.domain.timeutil import format_local, utcnow
from automations.reports.overview import SilentHolder


@st.cache_resource(show_spinner=False)
def _database(url: str) -> Database:
    return Database(url)


def settings() -> Settings:
    return get_settings()


def get_db() -> Database:
    """The process's database (one engine per URL, shared across reruns and sessions)."""
    return _database(get_settings().database_url)


# How often screens showing work done elsewhere (the runner, the API, another
# session) read it again by themselves: what they show is at most this old.
LIVE_SECONDS = 3
# The cache life of the reads such screens make: shorter than the refresh, so a
# refresh shows the database as it is, while sessions open at once share a read.
READ_TTL = 1
# Every other cached read (lists of templates, rules, tags, the calendar's and the
# statistics' aggregates): what the runner or the API changes shows within seconds.
LIST_TTL = 5


def clear_reads() -> None:
    """Forget cached reads after a write, so every page shows the change."""
    st.cache_data.clear()


def db_url() -> str:
    """The cache key of every cached read: a different database is different data."""
    return get_settings().database_url


def now_minute() -> datetime:
    """Now, to the minute: cached reads keyed on it stay valid for that minute."""
    return utcnow().replace(second=0, microsecond=0)


def fmt(value: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC time shown in the configured timezone."""
    return format_local(value, get_settings().tz, pattern)


STATUS_COLOURS = {
    "active": "blue",
    "paused": "orange",
    "completed": "green",
    "canceled": "gray",
    "pending": "blue",
    "running": "violet",
    "sent": "green",
    "done": "green",
    "failed": "red",
    "skipped": "orange",
}
TYPE_NAMES = {"email": "Email", "sms": "SMS", "task": "Task", "webhook": "Webhook"}


def badge(status: str) -> str:
    """A status as a coloured badge (Markdown)."""
    return f":{STATUS_COLOURS.get(status, 'gray')}-badge[{status}]"


def status_label(status: str) -> str:
    """A status for a table cell (`rows` colours it like its badge)."""
    return status


def type_label(message_type: str | None) -> str:
    if not message_type:
        return ""
    return TYPE_NAMES.get(message_type, message_type)


def flash(message: str, icon: str = ":material/check_circle:") -> None:
    """A toast shown on the next run (a toast raised right before `st.rerun` is lost)."""
    st.session_state["_flash"] = (message, icon)


def show_flash() -> None:
    message = st.session_state.get("_flash")
    if message:
        del st.session_state["_flash"]
        st.toast(message[0], icon=message[1])


SEEN = "_session_started"


def signed_in() -> bool:
    """When AUTOMATIONS_UI_PASSWORD is unset, or this session signed in less than
    AUTOMATIONS_UI_SESSION_HOURS ago (an expired sign-in is forgotten here)."""
    if get_settings().ui_password is None:
        return True
    since = st.session_state.get("signed_in_at")
    if since is None:
        return False
    if time.time() - since > get_settings().ui_session_hours * 3600:
        del st.session_state["signed_in_at"]
        st.session_state["session_expired"] = True
        return False
    return True


def _through_router() -> None:
    """Make sure a visitor's pages run inside the router (`app.py`).

    Streamlit treats an app with a `pages/` folder as an old-style multipage app
    until `st.navigation` has run once in the process, and in that mode it runs a
    page file directly when its URL is opened first (a bookmark, after a
    restart). That first run is discarded and the page runs again through
    `app.py`: with its navigation, its wide layout and, for a visitor who has not
    signed in, the password form. (`AppTest` resets that mode before each run;
    its later runs keep their widget events and only the login gate applies.)
    """
    from streamlit.runtime.pages_manager import PagesManager

    first_run = not st.session_state.get(SEEN)
    st.session_state[SEEN] = True
    if not PagesManager.uses_pages_directory:
        return
    PagesManager.uses_pages_directory = False
    locked = not signed_in()
    if first_run or locked:
        st.rerun()


def page_title(title: str) -> None:
    """The page's title, and the toast queued by the action that led here. Every
    page calls it first."""
    _through_router()
    st.session_state[SHOWN_ERRORS] = set()
    st.title(title)
    show_flash()


SHOWN_ERRORS = "_errors_shown"


def field_error(errors: dict[str, str], *fields: str) -> None:
    """Show the problem of each of `fields` right where it is called (under the field)."""
    for name in fields:
        if name in errors:
            st.error(f"{errors[name]}", icon=":material/warning:")
            mark_shown(name)


def mark_shown(field: str) -> None:
    """`field`'s problem is on screen (`other_errors` leaves it out)."""
    st.session_state.setdefault(SHOWN_ERRORS, set()).add(field)


def other_errors(errors: dict[str, str]) -> None:
    """The problems no field of the form showed (a form shows every problem of a save)."""
    shown = st.session_state.get(SHOWN_ERRORS, set())
    for field, problem in errors.items():
        if field not in shown:
            st.error(f"{field.replace('_', ' ').replace('.', ' ')}: {problem}", icon=":material/warning:")


@contextmanager
def action(success: str, errors_key: str | None = None) -> Iterator[None]:
    """Run a write: on success clear the reads, queue a toast and rerun; on a domain
    error show it (validation problems are stored under `errors_key` for the fields)."""
    try:
        yield
    except ValidationError as exc:
        if errors_key:
            # Rerun so that each problem shows under its field (drawn before this ran).
            st.session_state[errors_key] = exc.errors
            flash("Nothing saved: please correct the fields marked below.", ":material/warning:")
            st.rerun()
        st.error("Please correct: " + "; ".join(f"{k}: {v}" for k, v in exc.errors.items()))
        return
    except (Conflict, NotFound) as exc:
        st.error(str(exc))
        return
    if errors_key:
        st.session_state.pop(errors_key, None)
    clear_reads()
    flash(success)
    st.rerun()


# Cell colours of a status in tables (background, text): the badges' colours.
STATUS_CELL_COLOURS = {
    "blue": ("#e8f0fe", "#1a56b3"),
    "orange": ("#fff2e0", "#a15c00"),
    "green": ("#e6f4ea", "#1e7b34"),
    "gray": ("#f0f0f2", "#555a64"),
    "violet": ("#f1eafd", "#6b3fb3"),
    "red": ("#fde8e8", "#b42318"),
}


def _status_cell(value: Any) -> str:
    colour = STATUS_COLOURS.get(value if isinstance(value, str) else "")
    if colour is None:
        return ""
    background, text = STATUS_CELL_COLOURS[colour]
    return f"background-color: {background}; color: {text}"


def rows(items: list[Any], **columns: Any) -> Any:
    """A table for `st.dataframe`: each column is an attribute name or a function,
    titled by its name in words (`last_tick` is shown as "last tick").
    A `status` column is coloured like the status badges."""
    import pandas as pd

    titles = {name: name.replace("_", " ") for name in columns}
    table = []
    for item in items:
        row = {}
        for name, spec in columns.items():
            row[titles[name]] = spec(item) if callable(spec) else getattr(item, spec)
        table.append(row)
    frame = pd.DataFrame(table, columns=list(titles.values()))
    if "status" in columns and table:
        return frame.style.map(_status_cell, subset=["status"])
    return frame


def silent_holder_text(holder: SilentHolder, now: datetime) -> str:
    """ "3 step(s) held by runner X, silent since 12:03; taken over at 12:04, when its claims expire." """
    since = f"silent since {fmt(holder.silent_since, '%H:%M:%S')}" if holder.silent_since else "never heard from"
    expiry = holder.lease_expires_at
    if expiry is None:
        when = "taken over by the next runner to tick"
    elif expiry <= now:
        when = f"taken over by the next runner to tick (its claims expired at {fmt(expiry, '%H:%M:%S')})"
    else:
        when = f"taken over at {fmt(expiry, '%H:%M:%S')}, when its claims expire"
    return f"{holder.steps:,} step(s) held by runner {holder.runner_id}, {since}; {when}."
