"""Follow-ups: pending tasks grouped as overdue, today and upcoming; done, snooze,
cancel, or add one by hand."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pandas as pd
import streamlit as st

from automations.domain.timeutil import as_utc, utcnow
from automations.services import followups as service
from automations.services.contacts import ContactFilter, search_contacts
from automations.services.followups import FollowUpCounts, day_bounds
from ui.common import (
    LIST_TTL,
    READ_TTL,
    action,
    db_url,
    field_error,
    fmt,
    get_db,
    now_minute,
    other_errors,
    page_title,
    settings,
)
from ui.tables import clickable_table, page_controls, page_download, page_of, read_page, scroll_to

TABLE = "fu_list"
GROUPS = ("Overdue", "Today", "Upcoming")


def _span(group: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    _, end_of_day = day_bounds(now, settings().tz)
    return {"Overdue": (None, now), "Today": (now, end_of_day), "Upcoming": (end_of_day, None)}[group]


@st.cache_data(ttl=READ_TTL, show_spinner=False)
def _page(url: str, group: str, now: datetime, offset: int, limit: int) -> tuple[list[dict[str, object]], int]:
    start, end = _span(group, now)
    with get_db().read_session() as s:
        found, total = service.list_followups(s, due_from=start, due_before=end, limit=limit, offset=offset)
        return [
            {
                "id": f.id,
                "title": f.title,
                "notes": f.notes,
                "due_at": f.due_at,
                "contact_id": f.contact_id,
                "contact": f.contact.full_name,
                "campaign": f.campaign.name if f.campaign else None,
            }
            for f in found
        ], total


@st.cache_data(ttl=READ_TTL, show_spinner=False)
def _counts(url: str, now: datetime) -> FollowUpCounts:
    with get_db().read_session() as s:
        return service.followup_counts(s, now, settings().tz)


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _contact_choices(url: str, text: str) -> dict[int, str]:
    with get_db().read_session() as s:
        found, _ = search_contacts(s, ContactFilter(search=text), limit=50)
        return {c.id: f"{c.full_name} · {c.email or c.phone or ''} (#{c.id})" for c in found}


def _card(item: dict[str, object], snooze_days: int) -> None:
    """The follow-up chosen in the list, with what can be done to it."""
    fid = int(item["id"])  # type: ignore[call-overload]
    with st.container(border=True):
        origin = f" · from the campaign “{item['campaign']}”" if item["campaign"] else ""
        st.markdown(f"**{item['title']}**  \n{item['contact']}{origin} · due {fmt(item['due_at'])}")  # type: ignore[arg-type]
        if item["notes"]:
            st.text(str(item["notes"]))
        bar = st.container(horizontal=True)
        if bar.button("Done", key=f"fu_done_{fid}", icon=":material/check:", type="primary"):
            with action("Follow-up done"), get_db().session() as s:
                service.complete_followup(s, fid)
                st.session_state.pop("fu_open", None)
        if bar.button(
            f"Snooze {snooze_days} day{'s' if snooze_days > 1 else ''}",
            key=f"fu_snooze_{fid}",
            icon=":material/snooze:",
            help=f"Move it {snooze_days} day(s) from now",
        ):
            with action(f"Snoozed for {snooze_days} day(s)"), get_db().session() as s:
                service.snooze_followup(s, fid, utcnow() + timedelta(days=snooze_days))
        if bar.button("Cancel it", key=f"fu_cancel_{fid}", icon=":material/close:"):
            with action("Follow-up canceled"), get_db().session() as s:
                service.cancel_followup(s, fid)
                st.session_state.pop("fu_open", None)
        if bar.button("Open the contact", key=f"fu_contact_{fid}", icon=":material/person:"):
            st.session_state["ct_open"] = item["contact_id"]
            st.switch_page("pages/contacts.py")


def _add_form() -> None:
    errors = st.session_state.get("fu_errors", {})
    query = st.text_input("Find contact", key="fu_contact_search", placeholder="name, email or company")
    choices = _contact_choices(db_url(), query)
    with st.form("fu_add", clear_on_submit=True):
        contact = st.selectbox(
            "Contact", list(choices), format_func=choices.get, index=None, placeholder="Choose a contact"
        )
        field_error(errors, "contact_id")
        title = st.text_input("Title", max_chars=300)
        field_error(errors, "title")
        notes = st.text_area("Notes", height=68, max_chars=10_000)
        field_error(errors, "notes")
        c1, c2 = st.columns(2)
        day = c1.date_input("Due date")
        at = c2.time_input("Due time", value=time(9, 0))
        field_error(errors, "due_at")
        other_errors(errors)
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
if not counts.pending:
    st.info(
        "Nothing to follow up. Task steps of campaigns, rules, or the form above add follow-ups here.",
        icon=":material/celebration:",
    )
else:
    totals = {
        "Overdue": counts.overdue,
        "Today": counts.due_today,
        "Upcoming": max(counts.pending - counts.overdue - counts.due_today, 0),
    }
    group = (
        st.segmented_control(
            "Show",
            GROUPS,
            default=GROUPS[0] if counts.overdue else GROUPS[1] if counts.due_today else GROUPS[2],
            key="fu_group",
            format_func=lambda g: f"{g} ({totals[g]:,})",
        )
        or GROUPS[0]
    )
    found, total = read_page(TABLE, lambda offset, limit: _page(db_url(), group, now, offset, limit), group)
    if not total:
        st.caption(f"No follow-up {group.lower() if group != 'Today' else 'due later today'}.")
    else:
        st.caption("Click a row to open the follow-up.")
        frame = pd.DataFrame(
            [
                {
                    "due": fmt(item["due_at"]),  # type: ignore[arg-type]
                    "title": item["title"],
                    "contact": item["contact"],
                    "campaign": item["campaign"] or "—",
                }
                for item in found
            ],
            columns=["due", "title", "contact", "campaign"],
        )
        picked = clickable_table(
            TABLE,
            frame,
            [item["id"] for item in found],
            version=(group, page_of(TABLE)),
            height=38 + 35 * len(found),
            column_config={
                "title": st.column_config.TextColumn(width="large"),
                "due": st.column_config.TextColumn(width=140),
            },
        )
        page_controls(TABLE, total, len(found), "Follow-ups")
        page_download(TABLE, frame, f"follow-ups-{group.lower()}-page-{st.session_state[f'{TABLE}_page']}.csv")
        if picked is not None:
            st.session_state["fu_open"] = picked
        chosen = st.session_state.get("fu_open")
        shown = next((item for item in found if item["id"] == chosen), None)
        if shown is not None:
            with st.container(key="fu_detail"):
                scroll_to("fu_detail", picked is not None)
                _card(shown, snooze_days)
