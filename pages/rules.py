"""Follow-up rules: list, create, edit, enable/disable, delete, and what each rule did for whom."""

from __future__ import annotations

from typing import Any

import streamlit as st

from automations.domain.models import RuleAction, RuleTrigger
from automations.domain.timeutil import utcnow
from automations.services import rules
from automations.services.rules import (
    ACTION_LABELS,
    TRIGGER_LABELS,
    HistoryRow,
    RuleView,
)
from automations.services.templates import list_templates
from ui.common import (
    LIST_TTL,
    READ_TTL,
    action,
    db_url,
    field_error,
    fmt,
    get_db,
    other_errors,
    page_title,
    rows,
    status_label,
)
from ui.tables import clickable_table, page_controls, page_download, page_of, read_page

ERRORS = "rules_errors"


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _rules(url: str) -> tuple[list[RuleView], int]:
    with get_db().read_session() as s:
        return rules.rule_views(s, limit=500)


@st.cache_data(ttl=LIST_TTL, show_spinner=False)
def _templates(url: str) -> dict[int, str]:
    with get_db().read_session() as s:
        return {t.id: t.name for t in list_templates(s)}


@st.cache_data(ttl=READ_TTL, show_spinner=False)
def _history(url: str, rule_id: int | None, offset: int, limit: int) -> tuple[list[HistoryRow], int]:
    with get_db().read_session() as s:
        return rules.rule_history(s, rule_id=rule_id, limit=limit, offset=offset)


def _rule_table(views: list[RuleView]) -> None:
    """The rules; clicking one opens it for editing below."""
    st.caption("Click a rule to change, disable or delete it.")
    frame = rows(
        views,
        rule="name",
        active=lambda r: "yes" if r.is_active else "disabled",
        when="description",
        delay="delay",
        conditions="conditions",
        **{"re-enrolment": "reenrolment"},
        applied="applied",
        pending="pending",
        skipped="skipped",
    )
    picked = clickable_table(
        "rules_list",
        frame,
        [v.id for v in views],
        version=len(views),
        height=38 + 35 * len(views),
        column_config={"when": st.column_config.TextColumn(width="large")},
    )
    page_download("rules_list", frame, "rules.csv")
    if picked is not None:
        st.session_state["edit_rule"] = picked


def _count(label: str, key: str, value: int, upper: int, lower: int = 0, column: Any = st) -> int:
    """A whole number that cannot be below `lower`: a value out of bounds is kept as
    typed and said to be wrong (it is never silently changed), and the domain refuses it."""
    number = int(column.number_input(label, max_value=None, step=1, value=value, key=key))
    if number < lower:
        column.error(f"{label}: {number} is below {lower}. Use {lower} or more.", icon=":material/warning:")
    elif number > upper:
        column.error(f"{label}: {number:,} is too large, at most {upper:,}.", icon=":material/warning:")
    return number


def _rule_form(key: str, current: dict[str, Any], templates: dict[int, str]) -> dict[str, Any]:
    """The rule's widgets (keys prefixed by `key`, so each rule has its own form state)."""
    errors: dict[str, str] = st.session_state.get(ERRORS, {}) if st.session_state.get("rules_form") == key else {}
    trigger_config = current.get("trigger_config") or {}
    action_config = current.get("action_config") or {}
    data: dict[str, Any] = {}
    data["name"] = st.text_input("Name", value=current.get("name", ""), key=f"{key}_name", max_chars=200)
    field_error(errors, "name")
    data["is_active"] = st.checkbox("Active", value=current.get("is_active", True), key=f"{key}_active")

    triggers = [t.value for t in RuleTrigger]
    data["trigger"] = st.selectbox(
        "When",
        triggers,
        index=triggers.index(current.get("trigger", RuleTrigger.TAG_ADDED.value)),
        format_func=TRIGGER_LABELS.get,
        key=f"{key}_trigger",
    )
    config: dict[str, Any] = {}
    if data["trigger"] == RuleTrigger.TAG_ADDED.value:
        config["tag"] = st.text_input("Tag", value=trigger_config.get("tag") or "", key=f"{key}_tag", max_chars=64)
    elif data["trigger"] == RuleTrigger.FIELD_CHANGED.value:
        config["field"] = st.text_input(
            "Field (standard or custom)", value=trigger_config.get("field") or "", key=f"{key}_field"
        )
        config["value"] = st.text_input(
            "Changed to (empty: any change)", value=trigger_config.get("value") or "", key=f"{key}_value"
        )
    elif data["trigger"] == RuleTrigger.INBOUND_EVENT.value:
        config["event"] = st.text_input(
            "Event name (e.g. replied)", value=trigger_config.get("event") or "", key=f"{key}_event"
        )
    elif data["trigger"] == RuleTrigger.FOLLOWUP_OVERDUE.value:
        config["days_overdue"] = _count(
            "Days overdue", f"{key}_overdue", int(trigger_config.get("days_overdue") or 1), 3650
        )
    elif data["trigger"] == RuleTrigger.CAMPAIGN_COMPLETED.value:
        choices = [0, *templates]
        config["template_id"] = (
            st.selectbox(
                "Only campaigns from template",
                choices,
                index=choices.index(trigger_config.get("template_id") or 0)
                if (trigger_config.get("template_id") or 0) in choices
                else 0,
                format_func=lambda i: templates.get(i, "any template"),
                key=f"{key}_from_template",
            )
            or None
        )
    elif data["trigger"] == RuleTrigger.LINK_CLICKED.value:
        config["url_contains"] = st.text_input(
            "Link contains",
            value=trigger_config.get("url_contains") or "",
            key=f"{key}_url_contains",
            max_chars=500,
            placeholder="pricing",
            help="Only clicks on links whose address contains this text (any case). Empty: any link.",
        )
    data["trigger_config"] = config
    field_error(
        errors, *[f"trigger_config.{k}" for k in ("tag", "field", "value", "event", "days_overdue", "url_contains")]
    )
    data["stop_other_campaigns"] = (
        st.checkbox(
            "Stop the contact's other active campaigns (inbound events only)",
            value=current.get("stop_other_campaigns", False),
            key=f"{key}_stop",
            disabled=data["trigger"] != RuleTrigger.INBOUND_EVENT.value,
        )
        and data["trigger"] == RuleTrigger.INBOUND_EVENT.value
    )

    conditions_text = st.text_area(
        "Only when (one condition per line: `tag: vip`, `opted in: email`, `plan = pro`, `company contains acme`)",
        value=rules.conditions_to_text(current.get("conditions") or []),
        key=f"{key}_conditions",
    )
    data["conditions_text"] = conditions_text
    field_error(errors, "conditions", *[k for k in errors if k.startswith("conditions.")])

    days, hours = st.columns(2)
    data["delay_days"] = _count("Delay (days)", f"{key}_days", int(current.get("delay_days", 0)), 3650, column=days)
    data["delay_hours"] = _count("and hours", f"{key}_hours", int(current.get("delay_hours", 0)), 2160, column=hours)
    with days:
        field_error(errors, "delay_days")
    with hours:
        field_error(errors, "delay_hours")

    actions = [a.value for a in RuleAction]
    data["action"] = st.radio(
        "Then",
        actions,
        index=actions.index(current.get("action", actions[0])),
        format_func=ACTION_LABELS.get,
        key=f"{key}_action",
        horizontal=True,
    )
    if data["action"] == RuleAction.CREATE_FOLLOWUP.value:
        data["action_config"] = {
            "title": st.text_input(
                "Task title (e.g. Call {{ contact.first_name }})",
                value=action_config.get("title") or "",
                key=f"{key}_title",
            ),
            "notes": st.text_area("Task notes", value=action_config.get("notes") or "", key=f"{key}_notes"),
        }
        field_error(errors, "action_config.title", "action_config.notes")
    else:
        ids = list(templates)
        chosen = action_config.get("template_id")
        data["action_config"] = {
            "template_id": st.selectbox(
                "Campaign template",
                ids,
                index=ids.index(chosen) if chosen in ids else 0,
                format_func=templates.get,
                key=f"{key}_template",
            )
            if ids
            else None
        }
        field_error(errors, "action_config.template_id")

    once = current.get("reenroll_after_days") is None
    mode = st.radio(
        "Re-enrolment",
        ["once", "every"],
        index=0 if once else 1,
        key=f"{key}_reenrol",
        format_func={"once": "Once per contact, ever", "every": "At most once every N days"}.get,
        horizontal=True,
    )
    data["reenroll_after_days"] = None
    if mode == "every":
        data["reenroll_after_days"] = _count(
            "N days", f"{key}_reenrol_days", int(current.get("reenroll_after_days") or 30), 3650, lower=1
        )
        field_error(errors, "reenroll_after_days")
    other_errors(errors)
    return data


def _save(key: str, rule_id: int | None, data: dict[str, Any]) -> None:
    st.session_state["rules_form"] = key
    with action("Rule saved.", ERRORS):
        values = dict(data)
        values["conditions"] = rules.conditions_from_text(values.pop("conditions_text"))
        with get_db().session() as s:
            if rule_id is None:
                rules.create_rule(s, values, now=utcnow())
            else:
                rules.update_rule(s, rule_id, values, now=utcnow())


def main() -> None:
    page_title(":material/rule: Follow-up rules")
    st.caption(
        "When something happens to a contact, after a delay, create a follow-up task or start a "
        "campaign. The runner applies each rule once per event, on its next tick."
    )
    url = db_url()
    views, total = _rules(url)
    templates = _templates(url)

    if views:
        _rule_table(views)
    else:
        st.info(
            "No rules yet. Create one below, for example: when the tag `trial` is added, start Customer Onboarding."
        )

    with st.expander("New rule", icon=":material/add_circle:", expanded=not views):
        data = _rule_form("new", {}, templates)
        if st.button("Create rule", type="primary", key="new_save"):
            _save("new", None, data)

    by_id = {v.id: v for v in views}
    rule_id = st.session_state.get("edit_rule")
    if rule_id in by_id:
        view = by_id[rule_id]
        st.subheader(f"Rule “{view.name}”")
        st.markdown(f"**{view.description}** · {view.delay} · {view.reenrolment}")
        toggle, remove = st.columns(2)
        if toggle.button("Disable" if view.is_active else "Enable", key=f"toggle_{rule_id}"):
            with action("Rule disabled." if view.is_active else "Rule enabled."), get_db().session() as s:
                rules.set_rule_active(s, rule_id, not view.is_active, now=utcnow())
        sure = remove.checkbox("Yes, delete this rule and its history", key=f"sure_{rule_id}")
        if remove.button("Delete", key=f"delete_{rule_id}", disabled=not sure):
            with action("Rule deleted."), get_db().session() as s:
                rules.delete_rule(s, rule_id)
        with st.expander("Change settings", expanded=True):
            key = f"rule{rule_id}"
            data = _rule_form(key, view.settings, templates)
            if st.button("Save changes", type="primary", key=f"{key}_save"):
                _save(key, rule_id, data)

    st.subheader("History")
    names = {0: "All rules", **{v.id: v.name for v in views}}
    chosen = st.selectbox("Show", list(names), format_func=names.get, key="history_rule")
    history, count = read_page("history", lambda offset, limit: _history(url, chosen or None, offset, limit), chosen)
    if not history:
        st.caption("Nothing yet: rules act when the runner sees a matching event.")
        return
    st.caption("Newest first.")
    frame = rows(
        history,
        rule="rule_name",
        contact="contact_name",
        trigger=lambda h: TRIGGER_LABELS.get(h.event_kind or "", h.event_kind or ""),
        status=lambda h: status_label(h.status),
        due=lambda h: fmt(h.due_at),
        done=lambda h: fmt(h.applied_at),
        detail="detail",
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    page_controls("history", count, len(history), "Executions")
    page_download("history", frame, f"rule-history-page-{page_of('history')[0]}.csv")


main()
