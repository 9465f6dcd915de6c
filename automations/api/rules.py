"""/api/automation/rules/ (follow-up rules: CRUD and history) and
/api/automation/events/ (inbound events posted for a contact)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, Field

from automations.api.deps import Context, Limit, Offset, reject_nul
from automations.api.schemas import MAX_ID, Body, Id, Problem, Responses, Timestamp
from automations.domain.models import (
    ContactEvent,
    FollowUpRule,
    RuleAction,
    RuleTrigger,
)
from automations.services import rules

router = APIRouter(prefix="/api/automation", tags=["rules"])

RuleId = Annotated[int, Path(ge=1, le=MAX_ID, description="Rule id.")]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "No rule with this id."}}


class ConditionIn(Body):
    """A condition on the contact: `tag` (has the tag), `field_equals` / `field_contains`
    (a standard or custom field, compared without case), `opted_in` (to `email` or `sms`)."""

    kind: Literal["tag", "field_equals", "field_contains", "opted_in"]
    tag: str | None = None
    field: str | None = None
    value: str | None = None
    channel: Literal["email", "sms"] | None = None


class _RuleFields(Body):
    trigger_config: dict[str, Any] | None = Field(
        default=None,
        description="Per trigger: `tag_added` {tag}; `field_changed` {field, value (optional: any change)}; "
        "`inbound_event` {event}; `followup_overdue` {days_overdue}; "
        "`campaign_completed` {template_id (optional)}; others none.",
    )
    conditions: list[ConditionIn] | None = Field(default=None, description="All must hold.")
    delay_days: int | None = Field(default=None, description="Days after the trigger; 0 to 3650.")
    delay_hours: int | None = Field(default=None, description="Hours added to the delay; 0 to 2160.")
    action_config: dict[str, Any] | None = Field(
        default=None,
        description="`create_followup`: {title, notes} (personalised like step content); "
        "`start_campaign`: {template_id}.",
    )
    stop_other_campaigns: bool | None = Field(
        default=None, description="Inbound events only: cancel the contact's other active campaigns."
    )
    reenroll_after_days: int | None = Field(
        default=None, description="Absent or null: once per contact ever; N: at most once per N days."
    )


class RuleIn(_RuleFields):
    name: str = Field(description="What the rule is for.")
    is_active: bool = True
    trigger: RuleTrigger
    action: RuleAction


class RuleUpdate(_RuleFields):
    """Only the fields given change."""

    name: str | None = None
    is_active: bool | None = None
    trigger: RuleTrigger | None = None
    action: RuleAction | None = None


class RuleOut(BaseModel):
    id: int
    name: str
    is_active: bool
    trigger: str
    trigger_config: dict[str, Any]
    conditions: list[dict[str, Any]]
    delay_days: int
    delay_hours: int
    action: str
    action_config: dict[str, Any]
    stop_other_campaigns: bool
    reenroll_after_days: int | None
    description: str = Field(description="The rule in one sentence.")
    applied: int = Field(description="Times the rule acted.")
    pending: int = Field(description="Actions waiting for their time.")
    skipped: int = Field(description="Times it did not act (re-enrolment limit, conditions, disabled).")
    created_at: Timestamp
    updated_at: Timestamp


class RulePage(BaseModel):
    items: list[RuleOut]
    total: int


class HistoryOut(BaseModel):
    id: int
    rule_id: int
    rule_name: str
    contact_id: int
    contact_name: str
    event_kind: str | None
    status: str = Field(description="`pending`, `applied` or `skipped`.")
    due_at: Timestamp
    applied_at: Timestamp | None
    detail: str
    followup_id: int | None
    campaign_id: int | None


class HistoryPage(BaseModel):
    items: list[HistoryOut]
    total: int


class EventIn(Body):
    contact_id: Id
    name: str = Field(description="The event's name, e.g. `replied` or `form_submitted` (letters, digits, `_.:-`).")
    payload: dict[str, Any] = Field(default_factory=dict, description="Any JSON object.")


class EventOut(BaseModel):
    id: int
    contact_id: int
    name: str
    payload: dict[str, Any]
    occurred_at: Timestamp


def rule_out(rule: FollowUpRule, counts: dict[str, int]) -> RuleOut:
    return RuleOut(
        **rules.rule_as_input(rule),
        id=rule.id,
        description=rules.describe_rule(rule),
        applied=counts.get("applied", 0),
        pending=counts.get("pending", 0),
        skipped=counts.get("skipped", 0),
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def _body(model: BaseModel) -> dict[str, Any]:
    data = model.model_dump(exclude_unset=True, mode="json")
    reject_nul(data)
    return data


@router.get("/rules/", response_model=RulePage, summary="List follow-up rules")
def list_rules(context: Context, limit: Limit = 50, offset: Offset = 0) -> RulePage:
    """Rules by name, with how often each acted."""
    with context.db.read_session() as session:
        rows, total = rules.list_rules(session, limit=limit, offset=offset)
        return RulePage(
            items=[rule_out(r.rule, {"applied": r.applied, "pending": r.pending, "skipped": r.skipped}) for r in rows],
            total=total,
        )


@router.post("/rules/", response_model=RuleOut, status_code=status.HTTP_201_CREATED, summary="Create a follow-up rule")
def create_rule(context: Context, body: RuleIn) -> RuleOut:
    data = {k: v for k, v in _body(body).items() if v is not None or k == "reenroll_after_days"}
    with context.db.session() as session:
        rule = rules.create_rule(session, data, now=context.now())
        return rule_out(rule, {})


@router.get("/rules/{rule_id}/", response_model=RuleOut, responses=NOT_FOUND, summary="Get a rule")
def get_rule(context: Context, rule_id: RuleId) -> RuleOut:
    with context.db.read_session() as session:
        rule = rules.get_rule(session, rule_id)
        return rule_out(rule, rules.execution_counts(session, [rule.id])[rule.id])


@router.put("/rules/{rule_id}/", response_model=RuleOut, responses=NOT_FOUND, summary="Update a rule")
def update_rule(context: Context, rule_id: RuleId, body: RuleUpdate) -> RuleOut:
    """Changes only the fields given (`is_active: false` disables the rule)."""
    with context.db.session() as session:
        rule = rules.update_rule(session, rule_id, _body(body), now=context.now())
        return rule_out(rule, rules.execution_counts(session, [rule.id])[rule.id])


@router.delete(
    "/rules/{rule_id}/",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=NOT_FOUND,
    summary="Delete a rule",
)
def delete_rule(context: Context, rule_id: RuleId) -> Response:
    """Deletes the rule and its history; the follow-ups and campaigns it created stay."""
    with context.db.session() as session:
        rules.delete_rule(session, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/rules/{rule_id}/history/", response_model=HistoryPage, responses=NOT_FOUND, summary="What a rule did for whom"
)
def rule_history(context: Context, rule_id: RuleId, limit: Limit = 50, offset: Offset = 0) -> HistoryPage:
    """The rule's executions, newest first: pending, applied (with the follow-up or
    campaign it created) or skipped (with the reason)."""
    with context.db.read_session() as session:
        rules.get_rule(session, rule_id)
        rows, total = rules.rule_history(session, rule_id=rule_id, limit=limit, offset=offset)
        return HistoryPage(items=[HistoryOut(**row.__dict__) for row in rows], total=total)


@router.post(
    "/events/",
    response_model=EventOut,
    status_code=status.HTTP_201_CREATED,
    summary="Post an inbound event for a contact",
)
def post_event(context: Context, body: EventIn) -> EventOut:
    """Records the event; the runner matches it against the `inbound_event` rules on its next tick."""
    data = _body(body)
    with context.db.session() as session:
        event: ContactEvent = rules.post_inbound_event(
            session, data["contact_id"], data["name"], data.get("payload") or {}, now=context.now()
        )
        return EventOut(
            id=event.id,
            contact_id=event.contact_id or 0,
            name=event.name or "",
            payload=event.payload,
            occurred_at=event.occurred_at,
        )
