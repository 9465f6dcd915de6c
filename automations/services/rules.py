"""Follow-up rules: "when this happens to a contact (and these conditions hold),
after a delay, create a follow-up task or start a campaign".

This module holds the rules' validation and CRUD, the inbound-event service, the
matching of an event against a rule (trigger settings and conditions) and the
rules' history. The runner's evaluation loop is in `automations.runner.rules`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from automations.content.checks import ContentError, check_template
from automations.domain.errors import NotFound, Problems, ValidationError
from automations.domain.limits import json_problem
from automations.domain.models import (
    AutomationTemplate,
    Contact,
    ContactEvent,
    FollowUpRule,
    RuleAction,
    RuleExecution,
    RuleTrigger,
)
from automations.domain.timeutil import as_utc, humanize_delay, utcnow
from automations.services.events import record_event
from automations.services.schemas import (
    MAX_DELAY_DAYS,
    MAX_DELAY_HOURS,
    MAX_NOTES,
    Input,
    parse,
    too_long,
)

# Contact attributes a condition or a field_changed trigger may name; any other
# name is a custom field.
STANDARD_FIELDS = ("first_name", "last_name", "email", "phone", "company", "timezone")
CONDITION_KINDS = ("tag", "field_equals", "field_contains", "opted_in")
CHANNELS = ("email", "sms")
MAX_CONDITIONS = 20
MAX_EVENT_PAYLOAD = 20_000  # characters of JSON
EVENT_NAME_PATTERN = r"^[A-Za-z0-9_.:-]+$"

TRIGGER_LABELS = {
    RuleTrigger.CONTACT_CREATED.value: "Contact created",
    RuleTrigger.TAG_ADDED.value: "Tag added",
    RuleTrigger.FIELD_CHANGED.value: "Field changed",
    RuleTrigger.CAMPAIGN_COMPLETED.value: "Campaign completed",
    RuleTrigger.STEP_FAILED.value: "Step failed",
    RuleTrigger.FOLLOWUP_OVERDUE.value: "Follow-up overdue",
    RuleTrigger.INBOUND_EVENT.value: "Inbound event",
    RuleTrigger.EMAIL_OPENED.value: "Email opened",
    RuleTrigger.LINK_CLICKED.value: "Link clicked",
    RuleTrigger.REPLIED.value: "Replied",
    RuleTrigger.AUTO_REPLIED.value: "Auto-replied (out of office)",
    RuleTrigger.BOUNCED.value: "Email bounced",
    RuleTrigger.UNSUBSCRIBED.value: "Unsubscribed",
}
ACTION_LABELS = {
    RuleAction.CREATE_FOLLOWUP.value: "Create a follow-up task",
    RuleAction.START_CAMPAIGN.value: "Start a campaign",
}


class ConditionInput(Input):
    """One condition on the contact, checked when the trigger happens and again
    when the action is due."""

    kind: Literal["tag", "field_equals", "field_contains", "opted_in"]
    tag: str | None = Field(default=None, max_length=64)
    field: str | None = Field(default=None, max_length=64)
    value: str | None = Field(default=None, max_length=500)
    channel: Literal["email", "sms"] | None = None

    @field_validator("tag", "field", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("value", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _needed(self) -> ConditionInput:
        if self.kind == "tag" and not self.tag:
            raise ValueError("Give the tag the contact must have.")
        if self.kind in ("field_equals", "field_contains") and (not self.field or self.value is None):
            raise ValueError("Give the field and the value to compare it with.")
        if self.kind == "opted_in" and self.channel is None:
            raise ValueError("Choose the channel the contact must be opted in to: email or sms.")
        return self


class RuleInput(Input):
    """A whole rule, as the dashboard form and the API send it."""

    empty_messages: ClassVar[dict[str, str]] = {
        "name": "Give the rule a name.",
        "trigger": "Choose what starts the rule.",
        "action": "Choose what the rule does.",
    }

    name: str = Field(min_length=1, max_length=200)
    is_active: bool = True
    trigger: RuleTrigger
    trigger_config: dict[str, Any] = Field(default_factory=dict)
    conditions: list[ConditionInput] = Field(default_factory=list, max_length=MAX_CONDITIONS)
    delay_days: int = Field(default=0, ge=0, le=MAX_DELAY_DAYS)
    delay_hours: int = Field(default=0, ge=0, le=MAX_DELAY_HOURS)
    action: RuleAction
    action_config: dict[str, Any] = Field(default_factory=dict)
    stop_other_campaigns: bool = False
    reenroll_after_days: int | None = Field(default=None, ge=1, le=MAX_DELAY_DAYS)

    @field_validator("trigger_config", "action_config", mode="before")
    @classmethod
    def _bounded_config(cls, value: Any) -> Any:
        if isinstance(value, dict) and (problem := json_problem(value)):
            raise ValueError(problem)
        return value


# What to say when a trigger's setting is left empty.
_TRIGGER_NEEDS = {
    "tag": "Give the tag that starts this rule.",
    "field": "Give the field whose change starts this rule.",
    "event": "Give the name of the event that starts this rule, e.g. replied.",
    "days_overdue": "Give how many days overdue a follow-up must be to start this rule.",
}


def _clean_trigger_config(trigger: str, config: dict[str, Any], problems: Problems) -> dict[str, Any]:
    """Keep only the settings of `trigger`, normalised; note what is missing."""

    def text(key: str, limit: int, *, lower: bool = False, needed: bool = False) -> str | None:
        value = config.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if needed:
                problems.add(f"trigger_config.{key}", _TRIGGER_NEEDS[key])
            return None
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            problems.add(f"trigger_config.{key}", "Must be text.")
            return None
        value = str(value).strip()
        if len(value) > limit:
            problems.add(f"trigger_config.{key}", too_long(len(value), limit))
            return None
        return value.lower() if lower else value

    def integer(key: str, low: int, high: int, *, needed: bool = False) -> int | None:
        value = config.get(key)
        if value is None or value == "":
            if needed:
                problems.add(f"trigger_config.{key}", _TRIGGER_NEEDS[key])
            return None
        problem = _whole_number_problem(value, low, high)
        if problem:
            problems.add(f"trigger_config.{key}", problem)
            return None
        return int(value)

    if trigger == RuleTrigger.TAG_ADDED.value:
        return {"tag": text("tag", 64, lower=True, needed=True)}
    if trigger == RuleTrigger.FIELD_CHANGED.value:
        # No value: any change of the field triggers the rule.
        return {"field": text("field", 64, lower=True, needed=True), "value": text("value", 500)}
    if trigger == RuleTrigger.INBOUND_EVENT.value:
        return {"event": text("event", 100, needed=True)}
    if trigger == RuleTrigger.FOLLOWUP_OVERDUE.value:
        return {"days_overdue": integer("days_overdue", 0, MAX_DELAY_DAYS, needed=True)}
    if trigger == RuleTrigger.CAMPAIGN_COMPLETED.value:
        # Optional: only campaigns from this template.
        return {"template_id": integer("template_id", 1, 2**31 - 1)}
    if trigger == RuleTrigger.LINK_CLICKED.value:
        # Optional: only links whose address contains this ("pricing").
        return {"url_contains": text("url_contains", 500)}
    return {}


def _whole_number_problem(value: Any, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return "Must be a whole number."
    if value < low:
        return f"Must be {low} or more."
    if value > high:
        return f"At most {high}."
    return None


def _clean_action_config(session: Session, action: str, config: dict[str, Any], problems: Problems) -> dict[str, Any]:
    if action == RuleAction.CREATE_FOLLOWUP.value:
        title = config.get("title")
        notes = config.get("notes") or ""
        if title is not None and not isinstance(title, str):
            problems.add("action_config.title", "Must be text.")
        elif not title or not title.strip():
            problems.add("action_config.title", "Give the task a title.")
        elif len(title.strip()) > 300:
            problems.add("action_config.title", too_long(len(title.strip()), 300))
        if not isinstance(notes, str):
            problems.add("action_config.notes", "Must be text.")
        elif len(notes) > MAX_NOTES:
            problems.add("action_config.notes", too_long(len(notes), MAX_NOTES))
        for key, value in (("title", title), ("notes", notes)):
            if isinstance(value, str) and f"action_config.{key}" not in problems:
                try:
                    check_template(value)
                except ContentError as exc:
                    problems.add(f"action_config.{key}", str(exc))
        return {
            "title": title.strip() if isinstance(title, str) else title,
            "notes": notes.strip() if isinstance(notes, str) else notes,
        }
    template_id = config.get("template_id")
    if template_id is None or template_id == "":
        problems.add("action_config.template_id", "Choose the template to start.")
    elif isinstance(template_id, bool) or not isinstance(template_id, int):
        problems.add("action_config.template_id", "Must be a whole number.")
    elif not 1 <= template_id <= 2**31 - 1 or session.get(AutomationTemplate, template_id) is None:
        problems.add("action_config.template_id", f"No template with id {template_id}.")
    return {"template_id": template_id}


def _choice(enum: type[RuleTrigger] | type[RuleAction], value: Any) -> str | None:
    """`value` as one of `enum`'s values, or None."""
    try:
        return enum(value).value
    except (ValueError, TypeError):
        return None


def _validated(session: Session, data: RuleInput | dict[str, Any]) -> dict[str, Any]:
    """The rule's column values, or a `ValidationError` naming every bad field: the
    rule's own fields, its trigger's and its action's settings (templates checked)
    and the checks across them, all at once."""
    problems = Problems()
    values: RuleInput | None = None
    with problems.gather():
        values = parse(RuleInput, data)
    raw = data.model_dump() if isinstance(data, RuleInput) else data
    if values is not None:
        trigger, action = values.trigger.value, values.action.value
        trigger_config, action_config = values.trigger_config, values.action_config
        stop_others = values.stop_other_campaigns
    else:  # still check the settings, with what can be read of the input
        trigger, action = _choice(RuleTrigger, raw.get("trigger")), _choice(RuleAction, raw.get("action"))
        trigger_config = _config(raw, "trigger_config", problems)
        action_config = _config(raw, "action_config", problems)
        stop_others = raw.get("stop_other_campaigns") is True
    if trigger is not None:
        trigger_config = _clean_trigger_config(trigger, trigger_config, problems)
    if action is not None:
        action_config = _clean_action_config(session, action, action_config, problems)
    if stop_others and trigger is not None and trigger != RuleTrigger.INBOUND_EVENT.value:
        problems.add(
            "stop_other_campaigns", "Only a rule started by an inbound event can stop the contact's other campaigns."
        )
    problems.raise_if_any()
    assert values is not None  # no problem, so parsed
    return {
        "name": values.name,
        "is_active": values.is_active,
        "trigger": values.trigger.value,
        "trigger_config": trigger_config,
        "conditions": [c.model_dump(exclude_none=True) for c in values.conditions],
        "delay_days": values.delay_days,
        "delay_hours": values.delay_hours,
        "action": values.action.value,
        "action_config": action_config,
        "stop_other_campaigns": values.stop_other_campaigns,
        "reenroll_after_days": values.reenroll_after_days,
    }


def _config(raw: dict[str, Any], key: str, problems: Problems) -> dict[str, Any]:
    """A settings object of input that failed validation: empty when it is itself wrong."""
    value = raw.get(key)
    return value if isinstance(value, dict) and key not in problems else {}


def get_rule(session: Session, rule_id: int) -> FollowUpRule:
    rule = session.get(FollowUpRule, rule_id)
    if rule is None:
        raise NotFound("rule", rule_id)
    return rule


def rule_as_input(rule: FollowUpRule) -> dict[str, Any]:
    """The rule as the input `create_rule`/`update_rule` take (for edit forms)."""
    return {
        "name": rule.name,
        "is_active": rule.is_active,
        "trigger": rule.trigger,
        "trigger_config": dict(rule.trigger_config or {}),
        "conditions": [dict(c) for c in rule.conditions or []],
        "delay_days": rule.delay_days,
        "delay_hours": rule.delay_hours,
        "action": rule.action,
        "action_config": dict(rule.action_config or {}),
        "stop_other_campaigns": rule.stop_other_campaigns,
        "reenroll_after_days": rule.reenroll_after_days,
    }


def create_rule(session: Session, data: RuleInput | dict[str, Any], *, now: datetime | None = None) -> FollowUpRule:
    """Add a rule; it applies to events that happen from now on."""
    now = as_utc(now or utcnow())
    rule = FollowUpRule(**_validated(session, data), created_at=now, updated_at=now)
    session.add(rule)
    session.flush()
    return rule


def update_rule(
    session: Session, rule_id: int, changes: dict[str, Any], *, now: datetime | None = None
) -> FollowUpRule:
    """Change some of a rule's settings (the others stay). Pending executions keep
    their due time; they are applied with the rule's settings at that time."""
    rule = get_rule(session, rule_id)
    values = _validated(session, {**rule_as_input(rule), **changes})
    for key, value in values.items():
        setattr(rule, key, value)
    rule.updated_at = as_utc(now or utcnow())
    session.flush()
    return rule


def set_rule_active(session: Session, rule_id: int, active: bool, *, now: datetime | None = None) -> FollowUpRule:
    """Enable or disable a rule. A disabled rule neither matches events nor applies
    its pending executions (they are skipped when due)."""
    rule = get_rule(session, rule_id)
    rule.is_active = active
    rule.updated_at = as_utc(now or utcnow())
    session.flush()
    return rule


def delete_rule(session: Session, rule_id: int) -> None:
    """Delete a rule and its history; follow-ups and campaigns it created stay."""
    session.delete(get_rule(session, rule_id))
    session.flush()


@dataclass(frozen=True)
class RuleSummary:
    rule: FollowUpRule
    applied: int
    pending: int
    skipped: int


def execution_counts(session: Session, rule_ids: list[int]) -> dict[int, dict[str, int]]:
    """For each rule: how many executions are applied, pending and skipped (one grouped query)."""
    counts: dict[int, dict[str, int]] = {rid: {"applied": 0, "pending": 0, "skipped": 0} for rid in rule_ids}
    if rule_ids:
        rows = session.execute(
            select(RuleExecution.rule_id, RuleExecution.status, func.count())
            .where(RuleExecution.rule_id.in_(rule_ids))
            .group_by(RuleExecution.rule_id, RuleExecution.status)
        )
        for rule_id, status, n in rows:
            counts[rule_id][status] = n
    return counts


def list_rules(session: Session, *, limit: int = 100, offset: int = 0) -> tuple[list[RuleSummary], int]:
    """Rules by name with how often each was applied, is pending, was skipped."""
    total = session.scalar(select(func.count()).select_from(FollowUpRule)) or 0
    rules = list(
        session.scalars(select(FollowUpRule).order_by(FollowUpRule.name, FollowUpRule.id).limit(limit).offset(offset))
    )
    counts = execution_counts(session, [r.id for r in rules])
    return [
        RuleSummary(r, counts[r.id]["applied"], counts[r.id]["pending"], counts[r.id]["skipped"]) for r in rules
    ], total


@dataclass(frozen=True)
class HistoryRow:
    id: int
    rule_id: int
    rule_name: str
    contact_id: int
    contact_name: str
    event_kind: str | None
    status: str
    due_at: datetime
    applied_at: datetime | None
    detail: str
    followup_id: int | None
    campaign_id: int | None


def rule_history(
    session: Session,
    *,
    rule_id: int | None = None,
    contact_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[HistoryRow], int]:
    """What rules did (or will do) for whom, newest first, and the total."""
    conditions = []
    if rule_id is not None:
        conditions.append(RuleExecution.rule_id == rule_id)
    if contact_id is not None:
        conditions.append(RuleExecution.contact_id == contact_id)
    if status:
        conditions.append(RuleExecution.status == status)
    total = session.scalar(select(func.count()).select_from(RuleExecution).where(*conditions)) or 0
    rows = session.execute(
        select(RuleExecution, FollowUpRule.name, Contact.first_name, Contact.last_name, ContactEvent.kind)
        .join(FollowUpRule, FollowUpRule.id == RuleExecution.rule_id)
        .join(Contact, Contact.id == RuleExecution.contact_id)
        .outerjoin(ContactEvent, ContactEvent.id == RuleExecution.event_id)
        .where(*conditions)
        .order_by(RuleExecution.created_at.desc(), RuleExecution.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [
        HistoryRow(
            id=ex.id,
            rule_id=ex.rule_id,
            rule_name=name,
            contact_id=ex.contact_id,
            contact_name=f"{first} {last}".strip(),
            event_kind=kind,
            status=ex.status,
            due_at=ex.due_at,
            applied_at=ex.applied_at,
            detail=ex.detail or "",
            followup_id=ex.followup_id,
            campaign_id=ex.campaign_id,
        )
        for ex, name, first, last, kind in rows
    ], total


class InboundEventInput(Input):
    empty_messages: ClassVar[dict[str, str]] = {"name": "Give the event a name, e.g. replied."}

    contact_id: int = Field(gt=0, le=2**31 - 1)
    name: str = Field(min_length=1, max_length=100)
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _event_name(cls, value: str) -> str:
        if not re.fullmatch(EVENT_NAME_PATTERN, value):
            raise ValueError("Use only letters, digits and _ . : - in an event name (no spaces).")
        return value

    @field_validator("payload", mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        if isinstance(value, dict) and (problem := json_problem(value, max_bytes=MAX_EVENT_PAYLOAD)):
            raise ValueError(problem)
        return value

    @field_validator("payload")
    @classmethod
    def _no_nul(cls, value: dict[str, Any]) -> dict[str, Any]:
        text = json.dumps(value)
        if "\x00" in text or "\\u0000" in text:
            raise ValueError("Must not contain NUL characters.")
        return value


def post_inbound_event(
    session: Session, contact_id: int, name: str, payload: dict[str, Any] | None = None, now: datetime | None = None
) -> ContactEvent:
    """Record a named event (for example `replied` or `form_submitted`) with a JSON
    payload for a contact; the runner matches it against the inbound-event rules."""
    problems = Problems()
    values: InboundEventInput | None = None
    with problems.gather():
        values = parse(InboundEventInput, {"contact_id": contact_id, "name": name, "payload": payload or {}})
    known_id = isinstance(contact_id, int) and 1 <= contact_id <= 2**31 - 1 and "contact_id" not in problems
    if known_id and session.get(Contact, contact_id) is None:
        problems.add("contact_id", f"No contact with id {contact_id}.")
    problems.raise_if_any()
    assert values is not None  # no problem, so parsed
    event = record_event(
        session,
        contact_id=values.contact_id,
        kind=RuleTrigger.INBOUND_EVENT.value,
        name=values.name,
        payload=values.payload,
        now=now,
    )
    session.flush()
    return event


def trigger_matches(rule: FollowUpRule, event: ContactEvent) -> bool:
    """Whether `event` is what `rule` waits for (kind and the trigger's settings)."""
    if rule.trigger != event.kind:
        return False
    config = rule.trigger_config or {}
    payload = event.payload or {}
    if rule.trigger == RuleTrigger.TAG_ADDED.value:
        return str(payload.get("tag", "")).lower() == str(config.get("tag", "")).lower()
    if rule.trigger == RuleTrigger.FIELD_CHANGED.value:
        if str(payload.get("field", "")).lower() != str(config.get("field", "")).lower():
            return False
        wanted = config.get("value")
        return wanted is None or _text(payload.get("value")) == _text(wanted)
    if rule.trigger == RuleTrigger.INBOUND_EVENT.value:
        return (event.name or "").casefold() == str(config.get("event", "")).casefold()
    if rule.trigger == RuleTrigger.FOLLOWUP_OVERDUE.value:
        return payload.get("days_overdue") == config.get("days_overdue")
    if rule.trigger == RuleTrigger.CAMPAIGN_COMPLETED.value:
        wanted_template = config.get("template_id")
        return wanted_template is None or payload.get("template_id") == wanted_template
    if rule.trigger == RuleTrigger.LINK_CLICKED.value:
        wanted_url = _text(config.get("url_contains"))
        return not wanted_url or wanted_url in _text(payload.get("url"))
    return True


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip().casefold()


def _field_value(contact: Contact, field: str) -> Any:
    if field in STANDARD_FIELDS:
        return getattr(contact, field)
    return (contact.custom_fields or {}).get(field)


def unmet_condition(rule: FollowUpRule, contact: Contact) -> str | None:
    """The first of the rule's conditions the contact does not meet, described; None when all hold."""
    tags = set(contact.tags)
    for condition in rule.conditions or []:
        kind = condition.get("kind")
        if kind == "tag" and condition.get("tag") not in tags:
            return f"contact has no tag {condition.get('tag')!r}"
        if kind == "field_equals" and _text(_field_value(contact, condition["field"])) != _text(condition.get("value")):
            return f"{condition['field']} is not {condition.get('value')!r}"
        if kind == "field_contains" and _text(condition.get("value")) not in _text(
            _field_value(contact, condition["field"])
        ):
            return f"{condition['field']} does not contain {condition.get('value')!r}"
        if kind == "opted_in":
            if condition.get("channel") == "email" and (contact.email_opt_out or not contact.email):
                return "contact is not opted in to email"
            if condition.get("channel") == "sms" and (contact.sms_opt_out or not contact.phone):
                return "contact is not opted in to SMS"
    return None


def conditions_to_text(conditions: list[dict[str, Any]]) -> str:
    """Conditions as lines a person edits: `tag: vip`, `opted in: email`,
    `plan = pro`, `company contains acme`."""
    lines = []
    for c in conditions or []:
        kind = c.get("kind")
        if kind == "tag":
            lines.append(f"tag: {c.get('tag')}")
        elif kind == "opted_in":
            lines.append(f"opted in: {c.get('channel')}")
        elif kind == "field_equals":
            lines.append(f"{c.get('field')} = {c.get('value')}")
        elif kind == "field_contains":
            lines.append(f"{c.get('field')} contains {c.get('value')}")
    return "\n".join(lines)


def conditions_from_text(text: str, field: str = "conditions") -> list[dict[str, Any]]:
    """The lines of `conditions_to_text` back as conditions; a line that fits no
    form is a `ValidationError` on `field` naming the line."""
    conditions: list[dict[str, Any]] = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        lower = line.lower()
        if lower.startswith("tag:"):
            conditions.append({"kind": "tag", "tag": line[4:].strip()})
        elif lower.startswith("opted in:"):
            conditions.append({"kind": "opted_in", "channel": line[9:].strip().lower()})
        elif " contains " in lower:
            at = lower.index(" contains ")
            conditions.append(
                {"kind": "field_contains", "field": line[:at].strip(), "value": line[at + len(" contains ") :].strip()}
            )
        elif "=" in line:
            name, _, value = line.partition("=")
            conditions.append({"kind": "field_equals", "field": name.strip(), "value": value.strip()})
        else:
            raise ValidationError.single(
                field,
                f"Line {number} ({line!r}): write `tag: x`, `opted in: email`, `field = value` "
                "or `field contains value`.",
            )
    return conditions


@dataclass(frozen=True)
class RuleView:
    """A rule as the dashboard lists it (plain values, safe to cache)."""

    id: int
    name: str
    is_active: bool
    description: str
    delay: str
    conditions: str
    reenrolment: str
    applied: int
    pending: int
    skipped: int
    settings: dict[str, Any]


def rule_views(session: Session, *, limit: int = 100, offset: int = 0) -> tuple[list[RuleView], int]:
    """`list_rules` as plain rows for the dashboard."""
    summaries, total = list_rules(session, limit=limit, offset=offset)
    return [
        RuleView(
            id=s.rule.id,
            name=s.rule.name,
            is_active=s.rule.is_active,
            description=describe_rule(s.rule),
            delay=humanize_delay(s.rule.delay_days, s.rule.delay_hours),
            conditions=conditions_to_text(s.rule.conditions).replace("\n", "; "),
            reenrolment=(
                "once per contact"
                if s.rule.reenroll_after_days is None
                else f"at most every {s.rule.reenroll_after_days} days"
            ),
            applied=s.applied,
            pending=s.pending,
            skipped=s.skipped,
            settings=rule_as_input(s.rule),
        )
        for s in summaries
    ], total


def describe_rule(rule: FollowUpRule) -> str:
    """One line a person reads: "When tag 'trial' is added: start the campaign
    'Customer Onboarding'"."""
    config = rule.trigger_config or {}
    when = {
        RuleTrigger.TAG_ADDED.value: f"tag '{config.get('tag')}' is added",
        RuleTrigger.FIELD_CHANGED.value: (
            f"{config.get('field')} changes to '{config.get('value')}'"
            if config.get("value") is not None
            else f"{config.get('field')} changes"
        ),
        RuleTrigger.INBOUND_EVENT.value: f"event '{config.get('event')}' arrives",
        RuleTrigger.FOLLOWUP_OVERDUE.value: f"a follow-up is {config.get('days_overdue')} days overdue",
        RuleTrigger.CAMPAIGN_COMPLETED.value: "a campaign completes",
        RuleTrigger.STEP_FAILED.value: "a step fails",
        RuleTrigger.CONTACT_CREATED.value: "a contact is created",
        RuleTrigger.EMAIL_OPENED.value: "an email is opened",
        RuleTrigger.LINK_CLICKED.value: (
            f"a link containing '{config.get('url_contains')}' is clicked"
            if config.get("url_contains")
            else "a link is clicked"
        ),
        RuleTrigger.REPLIED.value: "the contact replies",
        RuleTrigger.AUTO_REPLIED.value: "an out-of-office reply arrives",
        RuleTrigger.BOUNCED.value: "an email bounces",
        RuleTrigger.UNSUBSCRIBED.value: "the contact unsubscribes",
    }.get(rule.trigger, rule.trigger)
    return f"When {when}: {_describe_action(rule)}"


def _describe_action(rule: FollowUpRule) -> str:
    """What the rule does, naming the template it starts or the task it creates."""
    action = rule.action_config or {}
    if rule.action == RuleAction.START_CAMPAIGN.value:
        session, template_id = object_session(rule), action.get("template_id")
        template = (
            session.get(AutomationTemplate, template_id)
            if session is not None and isinstance(template_id, int)
            else None
        )
        if template is None:
            return "start a campaign (its template no longer exists)" if session is not None else "start a campaign"
        return f"start the campaign '{template.name}'"
    title = action.get("title")
    return f"create the follow-up task '{title}'" if title else "create a follow-up task"


__all__ = [
    "RuleInput",
    "ConditionInput",
    "InboundEventInput",
    "RuleSummary",
    "HistoryRow",
    "TRIGGER_LABELS",
    "ACTION_LABELS",
    "CONDITION_KINDS",
    "STANDARD_FIELDS",
    "CHANNELS",
    "get_rule",
    "rule_as_input",
    "create_rule",
    "update_rule",
    "set_rule_active",
    "delete_rule",
    "list_rules",
    "execution_counts",
    "rule_history",
    "post_inbound_event",
    "trigger_matches",
    "unmet_condition",
    "describe_rule",
    "conditions_to_text",
    "conditions_from_text",
    "RuleView",
    "rule_views",
]
