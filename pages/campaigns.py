"""Campaigns: the filtered, paginated list with progress, and one campaign's detail
with its schedule and actions (pause, resume, cancel, delete, duplicate, save as
template, edit). Each step shows its planned time in the contact's clock and the
team's, why it moved, and when its email was opened, clicked, replied to or
bounced; every engagement is listed with its time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import streamlit as st

from automations.domain.errors import NotFound
from automations.domain.models import CampaignStatus, MessageType
from automations.domain.timeutil import format_local, utcnow
from automations.reports.overview import silent_holders
from automations.reports.timelines import CampaignDetail, campaign_detail
from automations.services import campaigns as service
from automations.services.campaigns import CampaignFilter, CampaignRow
from automations.services.templates import TemplateSummary, list_templates
from ui.common import (
    LIST_TTL,
    LIVE_SECONDS,
    READ_TTL,
    action,
    badge,
    db_url,
    field_error,
    fmt,
    get_db,
    other_errors,
    page_title,
    rows,
    settings,
    silent_holder_text,
    status_label,
    type_label,
)
from ui.steps_editor import load_steps, steps_editor
from ui.tables import clickable_table, page_controls, page_download, page_of, read_page, scroll_to

TABLE = "camp_list"
# A planned time with its zone's abbreviation, so the two clocks side by side are
# never mistaken for each other ("2026-03-09 09:00 EDT").
ZONED = "%Y-%m-%d %H:%M %Z"


@st.cache_data(ttl=READ_TTL, show_spinner=False)
def _page(url: str, filters: CampaignFilter, offset: int, limit: int) -> tuple[list[CampaignRow], int]:
    with get_db().read_session() as s:
        return service.list_campaigns(s, filters, limit=limit, offset=offset)


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _templates(url: str) -> list[TemplateSummary]:
    with get_db().read_session() as s:
        return list_templates(s)


@st.cache_data(ttl=READ_TTL, show_spinner=False)
def _detail(url: str, campaign_id: int) -> CampaignDetail | None:
    with get_db().read_session() as s:
        try:
            return campaign_detail(s, campaign_id)
        except NotFound:
            return None


def _filters() -> CampaignFilter:
    templates = {t.id: t.name for t in _templates(db_url())}
    c1, c2, c3, c4 = st.columns([2, 1, 2, 1])
    search = c1.text_input("Search", key="camp_search", placeholder="campaign, contact name or email")
    status = c2.selectbox("Status", [s.value for s in CampaignStatus], index=None, key="camp_status", placeholder="any")
    template = c3.selectbox(
        "Template", list(templates), format_func=templates.get, index=None, key="camp_template", placeholder="any"
    )
    kind = c4.selectbox(
        "Message type",
        [m.value for m in MessageType],
        index=None,
        key="camp_type",
        placeholder="any",
        format_func=type_label,
    )
    contact = st.session_state.get("camp_contact")
    if contact:
        st.caption(f"Only the campaigns of contact #{contact}.")
        if st.button("Show every contact", key="camp_contact_clear"):
            st.session_state.pop("camp_contact")
            st.rerun()
    return CampaignFilter(status=status, contact_id=contact, template_id=template, message_type=kind, search=search)


def _next_step(row: CampaignRow) -> str:
    return f"{type_label(row.next_step_type)} · {row.next_step_name}" if row.next_step_name else "—"


@st.fragment(run_every=LIVE_SECONDS)
def _list(filters: CampaignFilter) -> None:
    """The page of campaigns, read again every few seconds (the runner moves them on)."""
    found, total = read_page(TABLE, lambda offset, limit: _page(db_url(), filters, offset, limit), filters)
    if not total:
        if filters == CampaignFilter():
            st.info("No campaign yet. Create one on **New Campaign**.", icon=":material/add_circle:")
            st.page_link("pages/new_campaign.py", label="New Campaign", icon=":material/add_circle:")
        else:
            st.info("No campaign matches these filters. Clear a filter to see more.", icon=":material/search:")
        return
    st.caption("Click a row to open the campaign.")
    frame = rows(
        found,
        id="id",
        campaign="name",
        status=lambda r: status_label(r.status),
        progress=lambda r: round(r.progress * 100),
        steps=lambda r: f"{r.steps_finished}/{r.steps_total}",
        contact="contact_name",
        next_step=_next_step,
        next_step_at=lambda r: fmt(r.next_step_at) if r.next_step_at else "—",
    )
    picked = clickable_table(
        TABLE,
        frame,
        [r.id for r in found],
        version=(filters, page_of(TABLE)),
        height=38 + 35 * len(found),
        column_config={
            "id": st.column_config.NumberColumn("#", width=60),
            "campaign": st.column_config.TextColumn(width="medium"),
            "status": st.column_config.TextColumn(width=95),
            "progress": st.column_config.ProgressColumn(
                "progress", min_value=0, max_value=100, format="%.0f%%", color="blue", width=110
            ),
            "steps": st.column_config.TextColumn(width=60),
            "contact": st.column_config.TextColumn(width="medium"),
            "next step": st.column_config.TextColumn(width="medium"),
            "next step at": st.column_config.TextColumn(width=140),
        },
    )
    page_controls(TABLE, total, len(found), "Campaigns")
    page_download(TABLE, frame, f"campaigns-page-{st.session_state[f'{TABLE}_page']}.csv")
    if picked is not None:
        _open(picked)
        st.session_state["camp_scroll"] = True
        st.rerun()


def _open(campaign_id: int | None) -> None:
    """Show `campaign_id` under the list (None: none)."""
    st.session_state["camp_open"] = campaign_id
    for key in ("camp_confirm", "camp_template_form", "camp_editing"):
        st.session_state.pop(key, None)


def _actions(detail: CampaignDetail) -> None:
    cid = detail.id
    bar = st.container(horizontal=True)  # buttons as wide as their labels, wrapping when narrow
    is_open = detail.status in ("active", "paused")
    if detail.status == "active" and bar.button("Pause", icon=":material/pause:", key="camp_pause"):
        with action("Campaign paused"), get_db().session() as s:
            service.pause_campaign(s, cid)
    if detail.status == "paused" and bar.button("Resume", icon=":material/play_arrow:", key="camp_resume"):
        with action("Campaign resumed; pending steps moved by the pause"), get_db().session() as s:
            service.resume_campaign(s, cid)
    if is_open and bar.button("Cancel", icon=":material/stop:", key="camp_cancel"):
        st.session_state["camp_confirm"] = ("cancel", cid)
    if bar.button("Delete", icon=":material/delete:", key="camp_delete"):
        st.session_state["camp_confirm"] = ("delete", cid)
    if bar.button("Duplicate", icon=":material/content_copy:", key="camp_duplicate"):
        with action("Campaign duplicated"):
            with get_db().session() as s:
                copy = service.duplicate_campaign(s, cid)
            st.session_state["camp_open"] = copy.id
    if bar.button("Save as template", icon=":material/extension:", key="camp_as_template"):
        st.session_state["camp_template_form"] = cid
    if is_open and bar.button("Edit pending steps", icon=":material/edit:", key="camp_edit"):
        st.session_state["camp_editing"] = cid
        load_steps("edit", detail.pending_steps)

    confirm = st.session_state.get("camp_confirm")
    if confirm and confirm[1] == cid:
        verb = confirm[0]
        consequence = (
            "its pending steps are canceled and nothing more runs"
            if verb == "cancel"
            else "the campaign, its steps and their history are deleted (the contact stays)"
        )
        st.warning(f"{verb.capitalize()} “{detail.name}”? {consequence}.", icon=":material/warning:")
        yes, no = st.columns([1, 5])
        if yes.button(f"Yes, {verb}", type="primary", key="camp_confirm_yes"):
            st.session_state.pop("camp_confirm")
            with action(f"Campaign {'canceled' if verb == 'cancel' else 'deleted'}"), get_db().session() as s:
                if verb == "cancel":
                    service.cancel_campaign(s, cid)
                else:
                    service.delete_campaign(s, cid)
                    st.session_state.pop("camp_open", None)
        if no.button("No, keep it", key="camp_confirm_no"):
            st.session_state.pop("camp_confirm")
            st.rerun()

    if st.session_state.get("camp_template_form") == cid:
        errors = st.session_state.get("camp_template_errors", {})
        with st.form("camp_template"):
            name = st.text_input("Template name", value=f"{detail.name} template")
            field_error(errors, "name")
            other_errors(errors)
            if st.form_submit_button("Save template", type="primary"):
                with action("Saved as a custom template", "camp_template_errors"):
                    with get_db().session() as s:
                        service.save_campaign_as_template(s, cid, name=name)
                    st.session_state.pop("camp_template_form")

    if st.session_state.get("camp_editing") == cid:
        st.subheader("Edit pending steps")
        st.caption("Steps already executed stay as they are; the pending ones are replaced and re-timed.")
        errors = st.session_state.get("camp_edit_errors", {})
        steps = steps_editor("edit", errors)
        other_errors(errors)
        save, stop = st.columns([1, 5])
        if save.button("Save steps", type="primary", key="camp_edit_save"):
            with action("Pending steps saved", "camp_edit_errors"):
                with get_db().session() as s:
                    service.replace_pending_steps(s, cid, steps)
                st.session_state.pop("camp_editing")
        if stop.button("Discard changes", key="camp_edit_discard"):
            st.session_state.pop("camp_editing")
            st.rerun()


@st.fragment(run_every=LIVE_SECONDS)
def _progress(campaign_id: int) -> None:
    """The campaign's status, progress and steps, read again every few seconds."""
    detail = _detail(db_url(), campaign_id)
    if detail is None:
        st.info("That campaign no longer exists.")
        return
    done, total = detail.progress
    st.markdown(
        f"{badge(detail.status)} · contact **{detail.contact_name}** · "
        f"template {detail.template_name or '—'} · started {fmt(detail.start_at)} · {done}/{total} steps done"
    )
    st.markdown(f"**Schedule:** {detail.schedule_text}")
    st.progress(done / total if total else 0.0)
    now = utcnow()
    with get_db().read_session() as session:
        for holder in silent_holders(session, now, campaign_id=campaign_id):
            st.warning(silent_holder_text(holder, now), icon=":material/pending:")
    contact_zone = ZoneInfo(detail.zone)

    def contact_time(moment: datetime | None) -> str:
        return format_local(moment, contact_zone, ZONED)

    def team_time(moment: datetime | None) -> str:
        return format_local(moment, settings().tz, ZONED)

    st.dataframe(
        rows(
            detail.steps,
            step=lambda s: s.position + 1,
            name="name",
            type=lambda s: type_label(s.message_type),
            status=lambda s: status_label(s.status),
            **{
                "Contact's time": lambda s: contact_time(s.scheduled_at),
                "Team time": lambda s: team_time(s.scheduled_at),
                "Why it moved": lambda s: s.schedule_note or "",
            },
            executed=lambda s: fmt(s.executed_at),
            attempts="attempts",
            last_error=lambda s: s.last_error or "",
            opened=lambda s: fmt(s.opened_at),
            clicked=lambda s: fmt(s.clicked_at),
            replied=lambda s: fmt(s.replied_at),
            bounced=lambda s: fmt(s.bounced_at),
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "step": st.column_config.NumberColumn(width=50),
            "Contact's time": st.column_config.TextColumn(
                help=f"The planned time in the zone the campaign plans in ({detail.zone})"
            ),
            "Team time": st.column_config.TextColumn(
                help=f"The planned time in the team's zone ({settings().timezone})"
            ),
            "Why it moved": st.column_config.TextColumn(
                width="medium",
                help="Why the planned time is not the plain delay: the send window, a holiday, SMS quiet hours "
                "or a frequency cap",
            ),
            "last error": st.column_config.TextColumn(),
            "opened": st.column_config.TextColumn(help="When the recipient first opened the email (not a machine)"),
            "bounced": st.column_config.TextColumn(help="When the email bounced hard"),
        },
    )
    _engagement(detail)
    st.markdown("**Content, personalised for the contact**")
    for step in detail.steps:
        with st.expander(f"{step.position + 1}. {step.name} · {type_label(step.message_type)} · {step.status}"):
            st.markdown(
                f"{badge(step.status)} scheduled {contact_time(step.scheduled_at)} (contact's time), "
                f"{team_time(step.scheduled_at)} (team time)"
                + (f" · executed {fmt(step.executed_at)}" if step.executed_at else "")
                + f" · {step.attempts} attempt(s)"
            )
            if step.schedule_note:
                st.caption(f"Why it moved: {step.schedule_note}")
            if step.last_error:
                st.error(step.last_error)
            if step.message_type == "webhook":
                st.code(step.webhook_url or "", language=None)
            else:
                if step.subject:
                    st.markdown(f"**{'Title' if step.message_type == 'task' else 'Subject'}:** {step.subject}")
                st.text(step.body)


def _engagement(detail: CampaignDetail) -> None:
    """What the recipient did with the campaign's emails, the latest first."""
    if not detail.engagement:
        return
    st.markdown("**What the recipient did**")
    st.dataframe(
        rows(
            detail.engagement,
            when=lambda e: fmt(e.when),
            engagement="label",
            what="what",
            step=lambda e: e.step_name or "—",
        ),
        hide_index=True,
        width="stretch",
        column_config={"what": st.column_config.TextColumn(width="large")},
    )


def _detail_view(campaign_id: int) -> None:
    detail = _detail(db_url(), campaign_id)
    if detail is None:
        st.info("That campaign no longer exists.")
        return
    scroll_to("camp_detail", st.session_state.pop("camp_scroll", False))
    head, close = st.columns([6, 1], vertical_alignment="center")
    head.subheader(f"{detail.name}")
    if close.button("Close", icon=":material/close:", key="camp_close"):
        _open(None)
        st.rerun()
    _actions(detail)
    _progress(campaign_id)


page_title(":material/list_alt: Campaigns")
_list(_filters())
chosen = st.session_state.get("camp_open")
if chosen:
    st.divider()
    with st.container(key="camp_detail"):
        _detail_view(chosen)
