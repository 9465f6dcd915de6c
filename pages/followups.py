"""Follow-ups: pending tasks grouped as overdue, today and upcoming; done, snooze,
cancel, or add one by hand."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import streamlit as st

from automations.domain.timeutil import as_utc, utcnow
from automations.services import followups as service
from automations.services.contacts import ContactFilter, search_contacts
from automations.services.followups import FollowUpCounts, day_bounds
from ui.common import (
    action,
    db_url,
    field_error,
    fmt,
    get_db,
    now_minute,
    page_title,
    settings,
)

SHOWN = 12  # per group; the totals say how many more there are


@st.cache_data(ttl=30, show_spinner=False)
def _groups(url: str, now: datetime) -> dict[str, tuple[list[dict[str, object]], int]]:
    _, end_of_day = day_bounds(now, settings().tz)
    spans = {"Overdue": (None, now), "Today": (now, end_of_day), "Upcoming": (end_of_day, None)}
    groups = {}
    with get_db().read_session() as s:
        for label, (start, end) in spans.items():
            found, total = service.list_followups(s, due_from=start, due_before=end, limit=SHOWN)
            groups[label] = (
                [
                    {
                        "id": f.id,
                        "title": f.title,
                        "notes": f.notes,
                        "due_at": f.due_at,
                        "contact": f.contact.full_name,
                        "campaign": f.campaign.name if f.campaign else None,
                    }
                    for f in found
                ],
                total,
            )
    return groups


@st.cache_data(ttl=30, show_spinner=False)
def _counts(url: str, now: datetime) -> FollowUpCounts:
    with get_db().read_session() as s:
        return service.followup_counts(s, now, settings().tz)


@st.cache_data(ttl=60, show_spinner=False)
def _contact_choices(url: str, text: str) -> dict[int, str]:
    with get_db().read_session() as s:
        found, _ = search_contacts(s, ContactFilter(search=text), limit=50)
        return {c.id: f"{c.full_name} · {c.email or c.phone or ''} (#{c.id})" for c in found}


def _row(item: dict[str, object], snooze_days: int) -> None:
    fid = int(item["id"])  # type: ignore[arg-type]
    c1, c2, c3, c4, c5 = st.columns([3.5, 1.6, 1, 1.25, 1.1])
    origin = f" · from “{item['campaign']}”" if item["campaign"] else ""
    c1.markdown(f"**{item['title']}**  \n{item['contact']}{origin}")
    c2.write(fmt(item["due_at"]))  # type: ignore[arg-type]
    if c3.button("Done", key=f"fu_done_{fid}", icon=":material/check:"):
        with action("Follow-up done"), get_db().session() as s:
            service.complete_followup(s, fid)
    if c4.button(
        "Snooze", key=f"fu_snooze_{fid}", icon=":material/snooze:", help=f"Move it {snooze_days} day(s) from now"
    ):
        with action(f"Snoozed for {snooze_days} day(s)"), get_db().session() as s:
            service.snooze_followup(s, fid, utcnow() + timedelta(days=snooze_days))
    if c5.button("Cancel", key=f"fu_cancel_{fid}", icon=":material/close:"):
        with action("Follow-up canceled"), get_db().session() as s:
            service.cancel_followup(s, fid)


def _add_form() -> None:
    errors = st.session_state.get("fu_errors", {})
    query = st.text_input("Find contact", key="fu_contact_search", placeholder="name, email or company")
    choices = _contact_choices(db_url(), query)
    with st.form("fu_add", clear_on_submit=True):
        contact = st.selectbox(
            "Contact", list(choices), format_func=choices.get, index=None, placeholder="Choose a contact"
        )
        field_error(errors, "contact_id")
        title = st.text_input("Title")
        field_error(errors, "title")
        notes = st.text_area("Notes", height=68)
        c1, c2 = st.columns(2)
        day = c1.date_input("Due date")
        at = c2.time_input("Due time", value=time(9, 0))
        field_error(errors, "due_at")
        if st.form_submit_button("Add follow-up", type="primary"):
            with action("Follow-up added", "fu_errors"), get_db().session() as s:
                service.create_followup(
                    s,
                    {
                        "contact_id": contact or 0,
                        "title": title,
                        "notes": notes,
                        "due_at": as_utc(datetime.combine(day, at).replace(tzinfo=settings().tz)),
                    },
                )


page_title(":material/notifications: Follow-ups")
now = now_minute()
counts = _counts(db_url(), now)
m1, m2, m3 = st.columns(3)
m1.metric("Overdue", f"{counts.overdue:,}")
m2.metric("Due today", f"{counts.due_today:,}")
m3.metric("Pending in all", f"{counts.pending:,}")
with st.expander(":material/add: Add a follow-up by hand", expanded=False):
    _add_form()
snooze_days = (
    st.segmented_control(
        "Snooze moves a follow-up by",
        [1, 2, 3, 7, 14],
        default=1,
        format_func=lambda d: f"{d} day{'s' if d > 1 else ''}",
        key="fu_snooze_days",
    )
    or 1
)
groups = _groups(db_url(), now)
if not counts.pending:
    st.info(
        "Nothing to follow up. Task steps of campaigns, rules, or the form above add follow-ups here.",
        icon=":material/celebration:",
    )
for label, (items, total) in groups.items():
    if not total:
        continue
    st.subheader(f"{label} ({total:,})")
    for item in items:
        _row(item, snooze_days)
    if total > len(items):
        st.caption(f"Showing the first {len(items)} of {total:,}.")
