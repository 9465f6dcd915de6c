"""Templates: system and custom templates, their steps; create, edit, delete, clone."""

from __future__ import annotations

from typing import Any

import streamlit as st

from automations.domain.models import TemplateCategory
from automations.domain.timeutil import humanize_delay
from automations.services import templates as service
from automations.services.templates import TemplateSummary
from ui.common import LIST_TTL, action, db_url, field_error, get_db, other_errors, page_title, rows, type_label
from ui.schedule_settings import describe_schedule, load_schedule, schedule_settings
from ui.steps_editor import load_steps, steps_editor
from ui.tables import clickable_table, page_download, scroll_to

CATEGORIES = [c.value for c in TemplateCategory]


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _templates(url: str) -> list[TemplateSummary]:
    with get_db().read_session() as s:
        return service.list_templates(s)


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _steps(url: str, template_id: int) -> list[dict[str, Any]]:
    with get_db().read_session() as s:
        return [service.step_as_input(step) for step in service.get_template(s, template_id).steps]


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _schedule(url: str, template_id: int) -> dict[str, Any] | None:
    with get_db().read_session() as s:
        return service.get_template(s, template_id).schedule


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _switches(url: str, template_id: int) -> dict[str, bool]:
    with get_db().read_session() as s:
        template = service.get_template(s, template_id)
        return {"stop_on_reply": template.stop_on_reply, "tracking": template.tracking}


def _duration(summary: TemplateSummary) -> str:
    return humanize_delay(summary.duration.days, summary.duration.seconds // 3600)


def _form(prefix: str, values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """Name, category, description, steps and schedule of a custom template. The
    fields start from `values` (their state is kept under the prefix, so `_fill` can
    reset them)."""
    for field, default in (("name", ""), ("category", "custom"), ("desc", "")):
        st.session_state.setdefault(f"{prefix}_{field}", values.get(FIELDS[field], default))
    c1, c2 = st.columns([3, 1])
    name = c1.text_input("Name", key=f"{prefix}_name", max_chars=200)
    with c1:
        field_error(errors, "name")
    category = c2.selectbox("Category", CATEGORIES, key=f"{prefix}_category")
    description = st.text_area("Description", key=f"{prefix}_desc", height=68, max_chars=5000)
    field_error(errors, "description")
    steps = steps_editor(prefix, errors)
    schedule = schedule_settings(prefix, errors)
    for field, default in SWITCHES.items():
        st.session_state.setdefault(f"{prefix}_{field}", values.get(field, default))
    c1, c2 = st.columns(2)
    stop_on_reply = c1.checkbox(
        "Stop the campaign when the contact replies",
        key=f"{prefix}_stop_on_reply",
        help="A reply cancels the rest of the campaign and creates a follow-up with the reply's first lines.",
    )
    tracking = c2.checkbox(
        "Track opens and clicks",
        key=f"{prefix}_tracking",
        help="With AUTOMATIONS_PUBLIC_URL set, links go through a tracked redirect and an open pixel is added.",
    )
    other_errors(errors)
    return {
        "name": name,
        "category": category,
        "description": description,
        "steps": steps,
        "schedule": schedule,
        "stop_on_reply": stop_on_reply,
        "tracking": tracking,
    }


SWITCHES = {"stop_on_reply": True, "tracking": True}


FIELDS = {"name": "name", "category": "category", "desc": "description"}


def _fill(
    prefix: str, values: dict[str, Any], steps: list[dict[str, Any]], schedule: dict[str, Any] | None = None
) -> None:
    """Put `values`, `steps` and `schedule` in the form of `prefix` (before it is drawn)."""
    for field, default in (("name", ""), ("category", "custom"), ("desc", "")):
        st.session_state[f"{prefix}_{field}"] = values.get(FIELDS[field], default)
    for field, on in SWITCHES.items():
        st.session_state[f"{prefix}_{field}"] = values.get(field, on)
    load_steps(prefix, steps)
    load_schedule(prefix, schedule)


def _detail(summary: TemplateSummary) -> None:
    st.subheader(summary.name)
    kind = "System template (read-only: clone it to change it)" if summary.is_system else "Custom template"
    st.caption(
        f"{kind} · {summary.category} · {summary.step_count} steps over {_duration(summary)} · "
        f"used by {summary.campaigns:,} campaigns"
    )
    schedule = _schedule(db_url(), summary.id)
    switches = _switches(db_url(), summary.id)
    replies = "a reply stops the campaign" if switches["stop_on_reply"] else "replies do not stop the campaign"
    tracked = "opens and clicks tracked" if switches["tracking"] else "not tracked"
    st.caption(f":material/schedule: {describe_schedule(schedule)} · :material/reply: {replies} · {tracked}")
    if summary.description:
        st.write(summary.description)
    steps = _steps(db_url(), summary.id)
    st.dataframe(
        [
            {
                "step": i + 1,
                "name": s["name"],
                "type": type_label(s["message_type"]),
                "after": humanize_delay(s["delay_days"], s["delay_hours"]),
                "subject / title": s["subject"],
                "content": s["body"] or s["webhook_url"] or "",
            }
            for i, s in enumerate(steps)
        ],
        hide_index=True,
        width="stretch",
        column_config={"content": st.column_config.TextColumn(width="large")},
    )
    cols = st.columns([1, 1, 1, 4])
    if cols[0].button("Clone", icon=":material/content_copy:", key="tpl_clone"):
        with action("Template cloned"):
            with get_db().session() as s:
                copy = service.clone_template(s, summary.id)
            _open(copy.id)
    if summary.is_system:
        return
    if cols[1].button("Edit", icon=":material/edit:", key="tpl_edit"):
        st.session_state["tpl_editing"] = summary.id
        st.session_state.pop("tpl_edit_errors", None)
        _fill(
            "tpl_edit",
            {"name": summary.name, "category": summary.category, "description": summary.description, **switches},
            steps,
            schedule,
        )
    if cols[2].button("Delete", icon=":material/delete:", key="tpl_delete"):
        st.session_state["tpl_confirm_delete"] = summary.id
    if st.session_state.get("tpl_confirm_delete") == summary.id:
        st.warning(f"Delete “{summary.name}”? Campaigns made from it keep their steps.", icon=":material/warning:")
        yes, no = st.columns([1, 5])
        if yes.button("Yes, delete", type="primary", key="tpl_delete_yes"):
            st.session_state.pop("tpl_confirm_delete")
            with action("Template deleted"):
                with get_db().session() as s:
                    service.delete_template(s, summary.id)
                _open(None)
        if no.button("No, keep it", key="tpl_delete_no"):
            st.session_state.pop("tpl_confirm_delete")
            st.rerun()
    if st.session_state.get("tpl_editing") == summary.id:
        errors = st.session_state.get("tpl_edit_errors", {})
        values = _form(
            "tpl_edit", {"name": summary.name, "category": summary.category, "description": summary.description}, errors
        )
        if st.button("Save template", type="primary", key="tpl_edit_save"):
            with action("Template saved", "tpl_edit_errors"):
                with get_db().session() as s:
                    service.update_template(s, summary.id, values)
                st.session_state.pop("tpl_editing")


def _browse() -> None:
    templates = _templates(db_url())
    if not templates:
        st.info(
            "No templates yet. Run `python -m automations seed-templates` for the system "
            "templates, or create one in **New template**.",
            icon=":material/extension:",
        )
        return
    st.caption(f"{len(templates):,} templates · click a row to open it.")
    frame = rows(
        templates,
        name="name",
        category="category",
        kind=lambda t: "system" if t.is_system else "custom",
        steps="step_count",
        duration=_duration,
        types=lambda t: " ".join(type_label(m) for m in t.message_types),
        campaigns="campaigns",
    )
    picked = clickable_table(
        "tpl_list",
        frame,
        [t.id for t in templates],
        version=len(templates),
        height=38 + 35 * len(templates),
        column_config={"name": st.column_config.TextColumn(width="medium")},
    )
    page_download("tpl_list", frame, "templates.csv")
    if picked is not None:
        _open(picked)
    by_id = {t.id: t for t in templates}
    chosen = st.session_state.get("tpl_open")
    if chosen in by_id:
        st.divider()
        with st.container(key="tpl_detail"):
            scroll_to("tpl_detail", picked is not None)
            _detail(by_id[chosen])


def _open(template_id: int | None) -> None:
    """Show `template_id` under the list (None: none), with no form of another one open."""
    st.session_state["tpl_open"] = template_id
    for key in ("tpl_editing", "tpl_confirm_delete", "tpl_edit_errors"):
        st.session_state.pop(key, None)


page_title(":material/extension: Templates")
browse, create = st.tabs(["All templates", "New template"])
with browse:
    _browse()
with create:
    if "tpl_new_version" not in st.session_state or st.session_state.pop("tpl_new_reset", False):
        _fill("tpl_new", {}, [])
    errors = st.session_state.get("tpl_new_errors", {})
    values = _form("tpl_new", {}, errors)
    if st.button("Create template", type="primary", key="tpl_new_save"):
        with action("Template created", "tpl_new_errors"):
            with get_db().session() as s:
                created = service.create_template(s, values)
            st.session_state["tpl_new_reset"] = True
            _open(created.id)
