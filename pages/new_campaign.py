"""New Campaign: name, contact(s), optional template, steps, start and schedule, preview, save."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st

from automations.domain.errors import ValidationError
from automations.domain.models import Contact
from automations.domain.schedule import Planned
from automations.domain.timeutil import as_utc, format_local, humanize_delay
from automations.services.campaigns import (
    preview_schedule,
    render_step,
    start_campaigns_for_contacts,
)
from automations.services.contacts import (
    ContactFilter,
    all_tags,
    contact_ids_with_tag,
    get_contact,
    search_contacts,
)
from automations.services.planning import DEFAULT_SCHEDULE, zone_name
from automations.services.templates import (
    TemplateSummary,
    get_template,
    list_templates,
    step_as_input,
)
from ui.common import LIST_TTL, action, db_url, field_error, fmt, get_db, other_errors, page_title, settings, type_label
from ui.schedule_settings import load_schedule, schedule_settings
from ui.steps_editor import load_steps, steps_editor

MAX_NAME = 200  # a campaign's name, as the domain limits it

P = "new"  # session-state prefix of this page's steps editor
ERRORS = "new_errors"


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _templates(url: str) -> list[TemplateSummary]:
    with get_db().read_session() as s:
        return list_templates(s)


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _template_steps(url: str, template_id: int) -> list[dict[str, Any]]:
    with get_db().read_session() as s:
        return [step_as_input(step) for step in get_template(s, template_id).steps]


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _template_schedule(url: str, template_id: int) -> dict[str, Any] | None:
    with get_db().read_session() as s:
        return get_template(s, template_id).schedule


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _contact_choices(url: str, text: str) -> dict[int, str]:
    with get_db().read_session() as s:
        found, _ = search_contacts(s, ContactFilter(search=text), limit=50)
        return {c.id: f"{c.full_name} · {c.email or c.phone or 'no email'} (#{c.id})" for c in found}


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _tags(url: str) -> list[str]:
    with get_db().read_session() as s:
        return all_tags(s)


WHEN = "%a %Y-%m-%d %H:%M"


def _preview(
    steps: list[dict[str, Any]], start_at: datetime | None, contact_ids: list[int], schedule: dict[str, Any] | None
) -> None:
    """Each step's planned time for the first contact chosen: in the contact's zone
    and in the team's, with the reason it moved, and its content for that contact."""
    contact = None
    if contact_ids:
        with get_db().read_session() as s:
            contact = get_contact(s, contact_ids[0])
            s.expunge(contact)
    contact_zone = contact.timezone if contact is not None else None
    try:
        plans = preview_schedule(steps, start_at=start_at, schedule=schedule, contact_timezone=contact_zone)
    except ValidationError as exc:
        if all(field.startswith("schedule") for field in exc.errors):
            st.info("The preview appears once the send window is right.", icon=":material/visibility:")
        else:
            st.info("The preview appears once every step is complete.", icon=":material/visibility:")
        return
    team = settings().timezone
    # The contact's own zone (the team's when they have none or an unknown one), and
    # the one the steps are planned in: the same unless the schedule names a zone.
    own = zone_name(None, contact_zone) if contact is not None else zone_name(schedule, None)
    planned_in = zone_name(schedule, contact_zone)
    name = st.session_state.get("new_name", "")
    table = [_preview_row(step, plan, contact, name, own, team) for step, plan in zip(steps, plans, strict=False)]
    st.caption(_preview_caption(contact, len(contact_ids), own, planned_in, team))
    st.dataframe(
        table, hide_index=True, width="stretch", column_config={"content": st.column_config.TextColumn(width="large")}
    )


def _preview_row(
    step: dict[str, Any], plan: Planned, contact: Contact | None, campaign: str, own: str, team: str
) -> dict[str, str]:
    subject = body = ""
    if contact is not None:
        try:
            subject, body = render_step(_Step(step), contact, campaign)
        except Exception as exc:  # a template that cannot render for this contact is shown as such
            body = f"(cannot render: {exc})"
    return {
        f"contact's time ({own})": format_local(plan.at, ZoneInfo(own), WHEN),
        f"team time ({team})": fmt(plan.at, WHEN),
        "why it moved": plan.note or "",
        "after": humanize_delay(step["delay_days"], step["delay_hours"]),
        "step": step["name"],
        "type": type_label(step["message_type"]),
        "subject / title": subject if contact else step.get("subject", ""),
        "content": body if contact else step.get("body") or step.get("webhook_url") or "",
    }


def _preview_caption(contact: Contact | None, chosen: int, own: str, planned_in: str, team: str) -> str:
    if contact is None:
        parts = [f"No contact chosen: times in {own}", "choose a contact to see their times and personalised content"]
    else:
        who = f"{contact.full_name}, the first of the {chosen:,} contacts chosen" if chosen > 1 else contact.full_name
        parts = [f"Times for {who}: in their time zone ({own}) and in the team's ({team})"]
        if chosen > 1:
            parts.append("each other contact's steps are planned in their own time zone")
        parts.append(f"content for {contact.full_name}")
    if planned_in != own:
        parts.append(f"the send window and send times are read in {planned_in}")
    return " · ".join(parts)


class _Step:
    """The attributes `render_step` reads, from an editor row."""

    def __init__(self, data: dict[str, Any]):
        self.name = data.get("name") or ""
        self.subject = data.get("subject") or ""
        self.body = data.get("body") or ""


# What a saved campaign leaves behind: an empty form, ready for the next one
# (set before the widgets are drawn, so that they show it).
FRESH: dict[str, Any] = {
    "new_name": "",
    "new_contact": None,
    "new_contacts": [],
    "new_tag": None,
    "new_template": None,
    "new_contact_search": "",
    "new_later": False,
}


def _reset_form() -> None:
    if st.session_state.pop("new_reset", False):
        for key, value in FRESH.items():
            st.session_state[key] = value
        st.session_state["new_loaded_template"] = None
        load_steps(P, [])
        load_schedule(P, None)


page_title(":material/add_circle: New Campaign")
_reset_form()
errors: dict[str, str] = st.session_state.get(ERRORS, {})
templates = _templates(db_url())

name = st.text_input("Campaign name", key="new_name", placeholder="e.g. Welcome Acme", max_chars=MAX_NAME)
field_error(errors, "name")

st.subheader("Contacts")
mode = st.radio("Apply to", ["One contact", "Several contacts", "Everyone with a tag"], horizontal=True, key="new_mode")
contact_ids: list[int] = []
if mode == "Everyone with a tag":
    tag = st.selectbox("Tag", _tags(db_url()), index=None, key="new_tag", placeholder="Choose a tag")
    if tag:
        with get_db().read_session() as s:
            contact_ids = contact_ids_with_tag(s, tag)
        st.caption(f"{len(contact_ids):,} contacts have the tag “{tag}”: one campaign each.")
else:
    query = st.text_input("Find contact", key="new_contact_search", placeholder="name, email or company")
    choices = _contact_choices(db_url(), query)
    if not choices:
        st.info("No contact matches. Add contacts on the **Contacts** page.", icon=":material/group:")
    if mode == "One contact":
        picked = st.selectbox(
            "Contact",
            list(choices),
            format_func=lambda i: choices.get(i, str(i)),
            index=None,
            key="new_contact",
            placeholder="Choose a contact",
        )
        contact_ids = [picked] if picked else []
    else:
        contact_ids = st.multiselect(
            "Contacts",
            list(choices),
            format_func=lambda i: choices.get(i, str(i)),
            key="new_contacts",
            placeholder="Choose contacts",
        )
field_error(errors, "contact_id", "contact_ids")

st.subheader("Steps")
by_id = {t.id: t for t in templates}
template_id = st.selectbox(
    "Start from a template (optional)",
    list(by_id),
    index=None,
    key="new_template",
    format_func=lambda i: f"{by_id[i].name} · {by_id[i].step_count} steps · {by_id[i].category}",
    placeholder="From scratch",
)
if st.session_state.get("new_loaded_template", "unset") != template_id:
    st.session_state["new_loaded_template"] = template_id
    load_steps(P, _template_steps(db_url(), template_id) if template_id else [])
    load_schedule(P, _template_schedule(db_url(), template_id) if template_id else None)
steps = steps_editor(P, errors)
if not steps:
    st.info("Choose a template above, or add your first step in the table.", icon=":material/extension:")

st.subheader("Start")
c1, c2, c3 = st.columns([1, 1, 2])
later = c1.toggle("Start later", key="new_later")
start_at: datetime | None = None
if later:
    day = c2.date_input("Start date", key="new_start_date")
    at = c3.time_input("Start time", key="new_start_time", value=time(9, 0))
    start_at = as_utc(datetime.combine(day, at).replace(tzinfo=settings().tz))
field_error(errors, "start_at")
schedule = schedule_settings(P, errors)

st.subheader("Preview")
_preview(steps, start_at, contact_ids, schedule)

other_errors(errors)
if st.button("Save and activate", type="primary", key="new_save"):
    with action("Campaign saved and activated", ERRORS):
        # Every problem of the form comes back at once (name, contacts, each step).
        with get_db().session() as s:
            created = start_campaigns_for_contacts(
                s,
                contact_ids,
                template_id=template_id,
                steps=steps,
                name=name,
                start_at=start_at,
                # Said in full, defaults included: None would mean "the template's"
                # (the form started from it, and may have changed it since).
                schedule=schedule if schedule is not None else dict(DEFAULT_SCHEDULE),
            )
        st.session_state["new_created"] = [c.id for c in created]
        st.session_state["new_reset"] = True
created_ids = st.session_state.get("new_created")
if created_ids:
    st.success(f"{len(created_ids)} campaign(s) created. See them on **Campaigns**.")
    st.page_link("pages/campaigns.py", label="Open Campaigns", icon=":material/list_alt:")
