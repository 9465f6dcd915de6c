"""Contacts: search, add, edit, delete, tags, opt-outs, CSV import, and a timeline
(steps, follow-ups, and what the contact did with the emails: opened, clicked,
replied, auto-replied, bounced, unsubscribed)."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import streamlit as st

from automations.domain.errors import NotFound, ValidationError
from automations.reports.timelines import TimelineEntry, contact_timeline
from automations.services import contacts as service
from automations.services.contact_import import (
    STANDARD_COLUMNS,
    import_contacts,
    preview_import,
)
from automations.services.contacts import ContactFilter
from ui.common import (
    LIST_TTL,
    READ_TTL,
    action,
    clear_reads,
    db_url,
    field_error,
    fmt,
    get_db,
    other_errors,
    page_title,
    rows,
    status_label,
    type_label,
)
from ui.tables import clickable_table, page_controls, page_download, page_of, read_page, scroll_to

TABLE = "ct_list"
TIMELINE_SECONDS = 1  # a campaign a rule starts shows on the timeline a moment after the runner starts it
# How each kind of timeline entry is named (engagement: the contact opened, clicked, replied...).
TIMELINE_KINDS = {"step": "campaign step", "follow-up": "follow-up", "engagement": "engagement"}


def _as_row(contact: Any) -> dict[str, Any]:
    return {"id": contact.id, **service.contact_as_input(contact), "name": contact.full_name}


@st.cache_data(ttl=READ_TTL, show_spinner=False)
def _page(url: str, filters: ContactFilter, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    with get_db().read_session() as s:
        found, total = service.search_contacts(s, filters, limit=limit, offset=offset)
        return [_as_row(c) for c in found], total


@st.cache_data(ttl=READ_TTL, show_spinner=False)
def _contact(url: str, contact_id: int) -> dict[str, Any] | None:
    with get_db().read_session() as s:
        try:
            return _as_row(service.get_contact(s, contact_id))
        except NotFound:
            return None


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _tags(url: str) -> list[str]:
    with get_db().read_session() as s:
        return service.all_tags(s)


def _timeline(contact_id: int) -> list[TimelineEntry]:
    """Not cached: one contact's latest steps, read by an index, every second."""
    with get_db().read_session() as s:
        return contact_timeline(s, contact_id)


def _contact_form(key: str, values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any] | None:
    """The contact's fields; returns them when the form is submitted."""
    with st.form(key):
        c1, c2 = st.columns(2)
        first = c1.text_input("First name", value=values.get("first_name", ""), max_chars=100)
        with c1:
            field_error(errors, "first_name")
        last = c2.text_input("Last name", value=values.get("last_name", ""), max_chars=100)
        email = c1.text_input("Email", value=values.get("email") or "", max_chars=320)
        with c1:
            field_error(errors, "email")
        phone = c2.text_input("Phone (international, e.g. +14155550123)", value=values.get("phone") or "", max_chars=40)
        with c2:
            field_error(errors, "phone")
        company = c1.text_input("Company", value=values.get("company", ""), max_chars=200)
        timezone = c2.text_input("Timezone (IANA)", value=values.get("timezone", "UTC"))
        with c2:
            field_error(errors, "timezone")
        tags = st.text_input("Tags (comma separated)", value=", ".join(values.get("tags", [])))
        field_error(errors, "tags")
        o1, o2 = st.columns(2)
        email_out = o1.checkbox("Opted out of email", value=values.get("email_opt_out", False))
        sms_out = o2.checkbox("Opted out of SMS", value=values.get("sms_opt_out", False))
        other_errors(errors)
        if st.form_submit_button("Save contact", type="primary"):
            return {
                "first_name": first,
                "last_name": last,
                "email": email,
                "phone": phone,
                "company": company,
                "timezone": timezone,
                "tags": tags,
                "email_opt_out": email_out,
                "sms_opt_out": sms_out,
            }
    return None


@st.fragment(run_every=TIMELINE_SECONDS)
def _timeline_view(contact_id: int) -> None:
    """What happened and will happen to the contact, read again every few seconds
    (a rule or the runner may start or move a campaign meanwhile)."""
    entries = _timeline(contact_id)
    if not entries:
        st.info("No campaign or follow-up yet. Start one on **New Campaign**.", icon=":material/add_circle:")
        return
    st.dataframe(
        rows(
            entries,
            when=lambda e: fmt(e.when),
            kind=lambda e: TIMELINE_KINDS.get(e.kind, e.kind),
            what="what",
            type=lambda e: type_label(e.message_type),
            status=lambda e: status_label(e.status),
            campaign=lambda e: e.campaign_name or "—",
        ),
        hide_index=True,
        width="stretch",
        column_config={"what": st.column_config.TextColumn(width="large")},
    )


def _detail(contact: dict[str, Any]) -> None:
    cid = contact["id"]
    st.subheader(contact["name"])
    flags = [f for f, on in (("no email", contact["email_opt_out"]), ("no SMS", contact["sms_opt_out"])) if on]
    st.caption(
        " · ".join(
            [
                contact["email"] or "no email",
                contact["phone"] or "no phone",
                contact["company"] or "—",
                contact["timezone"],
            ]
            + flags
        )
        + ("  \nTags: " + ", ".join(contact["tags"]) if contact["tags"] else "")
    )
    timeline, edit, delete = st.tabs(["Timeline", "Edit", "Delete"])
    with timeline:
        _timeline_view(cid)
        if st.button("See this contact's campaigns", key="ct_campaigns"):
            st.session_state["camp_contact"] = cid
            st.switch_page("pages/campaigns.py")
    with edit:
        errors = st.session_state.get("ct_edit_errors", {})
        changes = _contact_form(f"ct_edit_{cid}", contact, errors)
        if changes is not None:
            with action("Contact saved", "ct_edit_errors"), get_db().session() as s:
                service.update_contact(s, cid, changes)
    with delete:
        st.write("Deleting a contact deletes their campaigns and follow-ups.")
        cancel = st.checkbox("Cancel their active and paused campaigns first", key="ct_cancel_campaigns")
        if st.button("Delete contact", icon=":material/delete:", key="ct_delete"):
            st.session_state["ct_confirm"] = cid
        if st.session_state.get("ct_confirm") == cid:
            st.warning(f"Delete {contact['name']} for good?", icon=":material/warning:")
            if st.button("Yes, delete", type="primary", key="ct_delete_yes"):
                st.session_state.pop("ct_confirm")
                with action("Contact deleted"):
                    with get_db().session() as s:
                        service.delete_contact(s, cid, cancel_campaigns=cancel)
                    st.session_state.pop("ct_open", None)


def _browse() -> None:
    c1, c2 = st.columns([3, 1])
    search = c1.text_input("Search", key="ct_search", placeholder="name, email, company or phone")
    tag = c2.selectbox("Tag", _tags(db_url()), index=None, key="ct_tag", placeholder="any")
    filters = ContactFilter(search=search, tag=tag)
    found, total = read_page(TABLE, lambda offset, limit: _page(db_url(), filters, offset, limit), filters)
    if not total:
        st.info(
            "No contacts match. Add one in **Add contact** or import a CSV file."
            if search or tag
            else "No contacts yet. Add one in **Add contact** or import a CSV file.",
            icon=":material/group:",
        )
        return
    st.caption("Click a row to open the contact.")
    frame = pd.DataFrame(
        [
            {
                "#": c["id"],
                "name": c["name"],
                "email": c["email"] or "",
                "phone": c["phone"] or "",
                "company": c["company"],
                "tags": ", ".join(c["tags"]),
                "opted out of": " ".join(
                    f for f, on in (("email", c["email_opt_out"]), ("SMS", c["sms_opt_out"])) if on
                ),
            }
            for c in found
        ],
        columns=["#", "name", "email", "phone", "company", "tags", "opted out of"],
    )
    picked = clickable_table(
        TABLE,
        frame,
        [c["id"] for c in found],
        version=(filters, page_of(TABLE)),
        height=38 + 35 * len(found),
        column_config={"#": st.column_config.NumberColumn(width=60)},
    )
    page_controls(TABLE, total, len(found), "Contacts")
    page_download(TABLE, frame, f"contacts-page-{st.session_state[f'{TABLE}_page']}.csv")
    if picked is not None:
        st.session_state["ct_open"] = picked
        st.session_state.pop("ct_confirm", None)
    chosen = st.session_state.get("ct_open")
    if chosen:
        contact = _contact(db_url(), chosen)
        if contact is None:
            st.session_state.pop("ct_open")
            return
        st.divider()
        with st.container(key="ct_detail"):
            scroll_to("ct_detail", picked is not None)
            _detail(contact)


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1", "cp1250", "cp1251", "mac-roman"]
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _import() -> None:
    st.write(
        "A CSV file with a header row, as spreadsheets save it (any encoding, comma, semicolon or tab). Columns: "
        + ", ".join(f"`{c}`" for c in STANDARD_COLUMNS)
        + "; any other column becomes a custom field. Only `first_name` is required."
    )
    upload = st.file_uploader("CSV file", type=["csv", "txt", "tsv"], key="ct_upload")
    if upload is None:
        return
    data = upload.getvalue()
    c1, c2 = st.columns(2)
    encoding = c1.selectbox(
        "Encoding", ENCODINGS, index=None, placeholder="detect", key="ct_encoding",
        help="Detected from the file; choose another if names look wrong in the preview.",
    )  # fmt: skip
    delimiter = c2.selectbox(
        "Delimiter", list(DELIMITERS), format_func=DELIMITERS.get, index=None, placeholder="detect",
        key="ct_delimiter",
    )  # fmt: skip
    try:
        with get_db().read_session() as s:
            fmt, preview, total = preview_import(s, data, encoding=encoding, delimiter=delimiter)
    except ValidationError as exc:
        for field, problem in exc.errors.items():
            st.error(f"{field.capitalize()}: {problem}")
        return
    bad = [r for r in preview if not r.ok]
    shown = f"of the first {len(preview):,} rows, " if total > len(preview) else ""
    st.caption(
        f"Read as **{fmt.encoding}**, **{fmt.delimiter_name}**-separated: {total:,} rows; "
        f"{shown}{len(preview) - len(bad):,} are valid and {len(bad):,} have problems."
    )
    st.dataframe(
        [
            {
                "line": r.line,
                "check": "valid" if r.ok else "problem",
                "problems": "; ".join(f"{k}: {v}" for k, v in r.errors.items()),
                "first name": r.data.get("first_name", ""),
                "last name": r.data.get("last_name", ""),
                "email": r.data.get("email") or "",
                "phone": r.data.get("phone") or "",
            }
            for r in preview
        ],
        hide_index=True,
        width="stretch",
    )
    if st.button(
        f"Import the valid rows of {total:,}",
        type="primary",
        key="ct_import",
        disabled=total == len(bad),
    ):
        bar = st.progress(0.0, text="Importing…")

        def progress(rows: int) -> None:
            bar.progress(min(rows / max(total, 1), 1.0), text=f"Importing… {rows:,} of {total:,} rows read")

        try:
            result = import_contacts(
                get_db().session, io.BytesIO(data), encoding=fmt.encoding, delimiter=fmt.delimiter, progress=progress
            )
        except ValidationError as exc:
            bar.empty()
            st.error("; ".join(f"{k}: {v}" for k, v in exc.errors.items()))
            return
        bar.empty()
        clear_reads()
        st.session_state["ct_import_result"] = (
            result.created,
            [
                {"line": r.line, "problems": "; ".join(f"{k}: {v}" for k, v in r.errors.items())}
                for r in result.rejected[:10_000]
            ],
            len(result.rejected),
        )
    outcome = st.session_state.get("ct_import_result")
    if outcome:
        st.success(f"Imported {outcome[0]:,} contacts.")
        if outcome[2]:
            st.warning(
                f"{outcome[2]:,} rows were not imported"
                + (" (the first 10,000 listed):" if outcome[2] > 10_000 else ":")
            )
            st.dataframe(outcome[1], hide_index=True, width="stretch")


page_title(":material/group: Contacts")
browse, add, upload = st.tabs(["Contacts", "Add contact", "Import CSV"])
with browse:
    _browse()
with add:
    errors = st.session_state.get("ct_add_errors", {})
    # A new form after each contact added: it opens empty (a refused one keeps what was typed).
    added = st.session_state.get("ct_added", 0)
    values = _contact_form(f"ct_add_{added}", {}, errors)
    if values is not None:
        with action("Contact added", "ct_add_errors"):
            with get_db().session() as s:
                service.create_contact(s, values)
            st.session_state["ct_added"] = added + 1
with upload:
    _import()
