"""The steps editor shared by New Campaign, Templates and a campaign's "edit pending
steps": a data editor for the sequence (order, name, type, delay), then each step's
content with only the fields its type uses.

State lives in `st.session_state` under a prefix; `load_steps` replaces it (a
template chosen, a campaign opened), `steps_editor` renders it and returns the
steps as input for the domain services.
"""

from __future__ import annotations

from datetime import time
from typing import Any

import pandas as pd
import streamlit as st

from automations.domain.schedule import parse_hhmm
from automations.services.schemas import (
    MAX_DELAY_DAYS,
    MAX_DELAY_HOURS,
    MAX_EMAIL_BODY,
    MAX_NOTES,
    MAX_SMS_BODY,
    MAX_SUBJECT,
)
from ui.common import field_error, mark_shown, type_label

MESSAGE_TYPES = ["email", "sms", "task", "webhook"]
CONTENT_FIELDS = ("subject", "body", "webhook_url")
MAX_URL = 2000
SEND_AT = time(9, 0)  # what "Send at" shows before a time is chosen


def load_steps(prefix: str, steps: list[dict[str, Any]]) -> None:
    """Start editing `steps` (replaces whatever the editor held)."""
    version = st.session_state.get(f"{prefix}_version", 0) + 1
    st.session_state[f"{prefix}_version"] = version
    uids = [f"s{version}_{index}" for index in range(len(steps))]
    st.session_state[f"{prefix}_base"] = [
        {"uid": uid, **{k: step.get(k) for k in ("name", "message_type", "delay_days", "delay_hours")}}
        for uid, step in zip(uids, steps, strict=False)
    ]
    for uid, step in zip(uids, steps, strict=False):
        for name in CONTENT_FIELDS:
            st.session_state[f"{prefix}_{uid}_{name}"] = step.get(name) or ""
        send_at = _time(step.get("send_at"))
        st.session_state[f"{prefix}_{uid}_business_days"] = bool(step.get("business_days"))
        st.session_state[f"{prefix}_{uid}_timed"] = send_at is not None
        st.session_state[f"{prefix}_{uid}_send_at"] = send_at or SEND_AT


def _time(value: Any) -> time | None:
    """A step's "HH:MM" as a time (None: none, or not a time)."""
    try:
        return parse_hhmm(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def _grid(prefix: str) -> pd.DataFrame:
    base = st.session_state.get(f"{prefix}_base", [])
    frame = pd.DataFrame(
        [
            {
                "uid": s["uid"],
                "order": i + 1,
                "name": s["name"],
                "message_type": s["message_type"],
                "delay_days": s["delay_days"] or 0,
                "delay_hours": s["delay_hours"] or 0,
            }
            for i, s in enumerate(base)
        ],
        columns=["uid", "order", "name", "message_type", "delay_days", "delay_hours"],
    )
    return frame.astype({"order": "Int64", "delay_days": "Int64", "delay_hours": "Int64"})


def _int(value: Any) -> int:
    try:
        return 0 if value is None or pd.isna(value) else int(value)
    except (TypeError, ValueError):
        return 0


def steps_editor(prefix: str, errors: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Render the editor; return the steps in order as dicts for the domain services.

    `errors` (from a `ValidationError`, e.g. `steps.2.body`) are shown next to the
    field they concern.
    """
    errors = errors or {}
    version = st.session_state.get(f"{prefix}_version", 0)
    st.caption(
        "Add a row for each step (the + under the table) or use the buttons below, delete rows to remove steps, and "
        "change **order** to move a step. Delays count from the previous step "
        "(the first step's from the start)."
    )
    edited = st.data_editor(
        _grid(prefix),
        key=f"{prefix}_grid_{version}",
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        # The uid (hidden) ties each row to its content below; added rows have none yet.
        column_order=["order", "name", "message_type", "delay_days", "delay_hours"],
        column_config={
            "order": st.column_config.NumberColumn(
                "order", min_value=1, step=1, width="small", help="Position of the step; change it to reorder"
            ),
            "name": st.column_config.TextColumn("name", required=True, max_chars=200, width="large"),
            "message_type": st.column_config.SelectboxColumn(
                "type", options=MESSAGE_TYPES, required=True, default="email"
            ),
            # No bounds here: the grid would change -1 into 1 without a word. The
            # checks below say what is wrong instead.
            "delay_days": st.column_config.NumberColumn(
                "delay days", step=1, default=0, help=f"Days after the previous step, 0 to {MAX_DELAY_DAYS:,}"
            ),
            "delay_hours": st.column_config.NumberColumn(
                "delay hours", step=1, default=0, help=f"Hours on top of the days, 0 to {MAX_DELAY_HOURS:,}"
            ),
        },
    )
    # Rows added in the editor have no uid yet; number them in the order they appear.
    ordered: list[tuple[float, int, str, Any]] = []
    new_count = 0
    for position, (_, row) in enumerate(edited.iterrows()):
        uid = row.get("uid")
        if not isinstance(uid, str):
            uid = f"n{version}_{new_count}"
            new_count += 1
        order = row.get("order")
        key = float(order) if order is not None and not pd.isna(order) else float("inf")
        ordered.append((key, position, uid, row))
    ordered.sort(key=lambda item: (item[0], item[1]))

    steps: list[dict[str, Any]] = []
    for index, (_, _, uid, row) in enumerate(ordered):
        kind = row.get("message_type") if isinstance(row.get("message_type"), str) else "email"
        name = row.get("name") if isinstance(row.get("name"), str) else ""
        step = {
            "name": name,
            "message_type": kind,
            "delay_days": _int(row.get("delay_days")),
            "delay_hours": _int(row.get("delay_hours")),
            "subject": "",
            "body": "",
            "webhook_url": None,
        }
        live = _delay_problems(step)
        for problem_field in ("name", "message_type", "delay_days", "delay_hours"):
            # A delay is checked as it is typed; what the last save said of it may be out of date.
            problem = (
                live.get(problem_field) if problem_field in DELAYS else errors.get(f"steps.{index}.{problem_field}")
            )
            if problem:
                st.error(f"Step {index + 1}, {FIELD_NAMES[problem_field]}: {problem}", icon=":material/warning:")
            mark_shown(f"steps.{index}.{problem_field}")
        has_error = any(key.startswith(f"steps.{index}.") for key in errors)
        label = f"Step {index + 1} · {name or '(no name)'} · {type_label(kind)}"
        # A panel opens where there is something to do (a problem, content still to
        # write) and then stays as the user leaves it: its state is kept under its
        # key, not recomputed from what has been typed so far.
        panel = f"{prefix}_{uid}_panel"
        unwritten = not any(st.session_state.get(f"{prefix}_{uid}_{f}") for f in CONTENT_FIELDS)
        if panel not in st.session_state:
            st.session_state[panel] = unwritten or not name
        if has_error:
            st.session_state[panel] = True
        with st.expander(label, key=panel, on_change=_keep):
            step.update(_content_fields(prefix, uid, kind, index, errors))
            step.update(_timing_fields(prefix, uid, index, errors))
        steps.append(step)
    field_error(errors, "steps")
    _add_buttons(prefix, steps)
    return steps


DELAYS = ("delay_days", "delay_hours")
FIELD_NAMES = {"name": "name", "message_type": "type", "delay_days": "delay in days", "delay_hours": "delay in hours"}
DELAY_LIMITS = {"delay_days": MAX_DELAY_DAYS, "delay_hours": MAX_DELAY_HOURS}


def _delay_problems(step: dict[str, Any]) -> dict[str, str]:
    """What is wrong with a step's delays, as soon as they are typed."""
    problems = {}
    for field in DELAYS:
        value = step[field]
        if value < 0:
            problems[field] = f"{value} is negative: a delay is 0 or more."
        elif value > DELAY_LIMITS[field]:
            problems[field] = f"{value:,} is too long: at most {DELAY_LIMITS[field]:,}."
    return problems


def _keep() -> None:
    """A panel's open/closed state is kept by its key (nothing else to do on a toggle)."""


def _add_buttons(prefix: str, steps: list[dict[str, Any]]) -> None:
    """One button per message type: a step with sensible defaults, its fields open below."""
    cols = st.columns([1, 1, 1, 1.2, 2.5])
    for col, kind in zip(cols, MESSAGE_TYPES, strict=False):
        if col.button(
            f"Add {type_label(kind)}",
            key=f"{prefix}_add_{kind}",
            icon=":material/add:",
            help=f"Add {'an' if kind == 'email' else 'a'} {type_label(kind)} step at the end",
        ):
            number = sum(1 for s in steps if s["message_type"] == kind) + 1
            new = {
                "name": f"{kind.capitalize() if kind != 'sms' else 'SMS'} {number}",
                "message_type": kind,
                "delay_days": 1 if steps else 0,
                "delay_hours": 0,
            }
            load_steps(prefix, steps + [new])
            st.rerun()


def _timing_fields(prefix: str, uid: str, index: int, errors: dict[str, str]) -> dict[str, Any]:
    """Business days and a set local time: how the step's delay is counted and read."""
    key = f"{prefix}_{uid}_"
    where = f"steps.{index}."
    st.session_state.setdefault(key + "business_days", False)
    st.session_state.setdefault(key + "timed", False)
    st.session_state.setdefault(key + "send_at", SEND_AT)  # a widget not drawn forgets its value
    c1, c2, c3 = st.columns([2, 1.4, 1.2], vertical_alignment="center")
    business_days = c1.checkbox(
        "Count business days only",
        key=key + "business_days",
        help="The delay in days counts only days the send window is open (Monday to Friday without a window), "
        "holidays left out.",
    )
    timed = c2.toggle(
        "Send at a set time",
        key=key + "timed",
        help="After the delay, the step waits for this time of day, in the clock of the schedule (the contact's "
        "by default).",
    )
    send_at: str | None = None
    if timed:
        at = c3.time_input("Send at", key=key + "send_at", label_visibility="collapsed")
        send_at = None if at is None else f"{at:%H:%M}"
    field_error(errors, where + "business_days", where + "send_at")
    return {"business_days": bool(business_days), "send_at": send_at}


def _content_fields(prefix: str, uid: str, kind: str, index: int, errors: dict[str, str]) -> dict[str, Any]:
    key = f"{prefix}_{uid}_"
    for name in CONTENT_FIELDS:
        st.session_state.setdefault(key + name, "")
    where = f"steps.{index}."
    hint = 'Personalise with {{ contact.first_name | default("there") }}, {{ contact.company }}…'
    # Each field with a maximum shows its counter (max_chars) before the limit is hit.
    if kind == "email":
        subject = st.text_input("Subject", key=key + "subject", help=hint, max_chars=MAX_SUBJECT)
        field_error(errors, where + "subject")
        body = st.text_area("Body", key=key + "body", height=140, help=hint, max_chars=MAX_EMAIL_BODY)
        field_error(errors, where + "body")
        return {"subject": subject, "body": body}
    if kind == "sms":
        body = st.text_area("Text message", key=key + "body", height=90, help=hint, max_chars=MAX_SMS_BODY)
        field_error(errors, where + "body")
        return {"body": body}
    if kind == "task":
        title = st.text_input("Task title", key=key + "subject", max_chars=MAX_SUBJECT)
        field_error(errors, where + "subject")
        notes = st.text_area("Notes", key=key + "body", height=90, max_chars=MAX_NOTES)
        field_error(errors, where + "body")
        return {"subject": title, "body": notes}
    url = st.text_input("Webhook URL", key=key + "webhook_url", placeholder="https://…", max_chars=MAX_URL)
    field_error(errors, where + "webhook_url")
    return {"webhook_url": url}
