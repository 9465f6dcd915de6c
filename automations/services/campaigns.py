"""Campaigns: create (from a template, from scratch, or a template edited first),
edit pending steps, pause, resume, cancel, delete, duplicate, save as template,
and the paginated list with progress."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, case, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from automations.content.templating import render
from automations.domain.config import get_settings
from automations.domain.db import folding_for
from automations.domain.errors import Conflict, NotFound, Problems
from automations.domain.models import (
    FINAL_STEP_STATUSES,
    FINISHED_STEP_STATUSES,
    AutomationCampaign,
    AutomationStep,
    AutomationTemplate,
    CampaignStatus,
    Contact,
    StepStatus,
    TemplateCategory,
)
from automations.domain.schedule import Planned
from automations.domain.search import contact_matches, like_pattern
from automations.domain.timeutil import as_utc, utcnow
from automations.services.planning import plan_steps, planner_for, schedule_json
from automations.services.scheduling import (
    cancel_pending_steps,
    refresh_completion,
    shift_pending_steps,
)
from automations.services.schemas import CampaignInput, ScheduleInput, StepInput, parse, parse_steps
from automations.services.templates import (
    create_template,
    step_as_input,
    step_rows,
    template_steps_input,
)

OPEN_CAMPAIGN_STATUSES = (CampaignStatus.ACTIVE.value, CampaignStatus.PAUSED.value)

SelectT = TypeVar("SelectT", bound=Select)


def _allow_private(value: bool | None) -> bool:
    return get_settings().webhook_allow_private if value is None else value


def get_campaign(session: Session, campaign_id: int) -> AutomationCampaign:
    campaign = session.get(AutomationCampaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign", campaign_id)
    return campaign


@dataclass(frozen=True)
class _CampaignPlan:
    """A validated campaign, ready to be written for one or more contacts."""

    values: CampaignInput
    steps: list[StepInput]
    schedule: dict[str, Any]  # as stored: the input's, else the template's, else the defaults
    engagement: dict[str, bool]  # stop_on_reply and tracking, from the template


def _valid_id(values: CampaignInput | None, raw: dict[str, Any], field: str, problems: Problems) -> int | None:
    """The id in `field` when it passed validation (from `values`, else from the raw
    input, so that it is still checked while other fields are wrong)."""
    if field in problems:
        return None
    if values is not None:
        return getattr(values, field)
    value = raw.get(field)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _check_campaign(
    session: Session, data: CampaignInput | dict[str, Any], allow_private: bool, *, check_contact: bool = True
) -> tuple[_CampaignPlan | None, Problems]:
    """Every check of a new campaign (its fields, its steps and their templates, the
    contact and the template it names), each run whatever the others found."""
    raw = dict(data) if isinstance(data, dict) else data.model_dump()
    raw_steps = raw.pop("steps", None)
    problems = Problems()
    values: CampaignInput | None = None
    with problems.gather():
        values = parse(CampaignInput, {**raw, "steps": None}, allow_private=allow_private)
    template_id = _valid_id(values, raw, "template_id", problems)
    if template_id is not None and session.get(AutomationTemplate, template_id) is None:
        problems.add("template_id", f"No template with id {template_id}.")
        template_id = None
    steps: list[StepInput] = []
    with problems.gather():
        if raw_steps is not None:
            steps = parse_steps(raw_steps, allow_private=allow_private)
        elif template_id is not None:
            steps = template_steps_input(session, template_id)
    contact_id = _valid_id(values, raw, "contact_id", problems) if check_contact else None
    if contact_id is not None and session.get(Contact, contact_id) is None:
        problems.add("contact_id", f"No contact with id {contact_id}.")
    if not steps and "template_id" not in problems and not any(f.startswith("steps") for f in problems.errors):
        problems.add("steps", "Add at least one step, or choose a template.")
    if problems or values is None:
        return None, problems
    schedule = schedule_json(values.schedule)
    template = session.get(AutomationTemplate, template_id) if template_id is not None else None
    if values.schedule is None and template is not None:
        schedule = schedule_json(template.schedule)
    engagement = {
        "stop_on_reply": template.stop_on_reply if template is not None else True,
        "tracking": template.tracking if template is not None else True,
    }
    return _CampaignPlan(values, steps, schedule, engagement), problems


def _insert_campaign(
    session: Session, plan: _CampaignPlan, contact_id: int, contact_timezone: str | None, now: datetime
) -> AutomationCampaign:
    values, steps = plan.values, plan.steps
    start_at = values.start_at or now
    campaign = AutomationCampaign(
        name=values.name,
        contact_id=contact_id,
        template_id=values.template_id,
        status=CampaignStatus.ACTIVE.value,
        start_at=start_at,
        schedule=plan.schedule,
        **plan.engagement,
        created_at=now,
        updated_at=now,
    )
    rows = step_rows(steps, AutomationStep)
    planner = planner_for(plan.schedule, contact_timezone)
    for row, planned in zip(rows, plan_steps(planner, start_at, steps, now), strict=False):
        row.scheduled_at = planned.at
        row.due_at = planned.at
        row.schedule_note = planned.note
        row.status = StepStatus.PENDING.value
    campaign.steps = rows
    session.add(campaign)
    session.flush()
    return campaign


def create_campaign(
    session: Session,
    data: CampaignInput | dict[str, Any],
    *,
    now: datetime | None = None,
    allow_private: bool | None = None,
) -> AutomationCampaign:
    """Create an active campaign for one contact and schedule all its steps.

    The steps are `data["steps"]` when given (a template's steps edited before
    saving, or steps from scratch), otherwise the template's. Every problem of the
    input is reported at once, in one `ValidationError`.
    """
    now = as_utc(now or utcnow())
    plan, problems = _check_campaign(session, data, _allow_private(allow_private))
    problems.raise_if_any()
    assert plan is not None  # no problem, so checked
    contact = session.get(Contact, plan.values.contact_id)
    return _insert_campaign(session, plan, plan.values.contact_id, contact.timezone if contact else None, now)


def start_campaigns_for_contacts(
    session: Session,
    contact_ids: Sequence[int],
    *,
    template_id: int | None = None,
    steps: list[Any] | None = None,
    name: str,
    start_at: datetime | None = None,
    schedule: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> list[AutomationCampaign]:
    """One campaign per contact (all or nothing). The campaign is checked once, the
    contacts together: every problem comes back in one `ValidationError`."""
    now = as_utc(now or utcnow())
    ids = list(dict.fromkeys(contact_ids))
    data = {
        "name": name,
        "contact_id": ids[0] if ids else 1,
        "template_id": template_id,
        "start_at": start_at,
        "schedule": schedule,
    }
    plan, problems = _check_campaign(session, {**data, "steps": steps}, _allow_private(None), check_contact=False)
    found: dict[int, str] = {}
    if not ids:
        problems.add("contact_ids", "Choose at least one contact.")
    else:
        for start in range(0, len(ids), 500):  # SQLite bounds the parameters of one statement
            chunk = ids[start : start + 500]
            rows = session.execute(select(Contact.id, Contact.timezone).where(Contact.id.in_(chunk)))
            found.update({cid: zone for cid, zone in rows})
        missing = [cid for cid in ids if cid not in found]
        if missing:
            listed = ", ".join(str(cid) for cid in missing[:10]) + (" …" if len(missing) > 10 else "")
            problems.add("contact_id", f"No contact with id {listed}.")
    problems.raise_if_any()
    assert plan is not None  # no problem, so checked
    return [_insert_campaign(session, plan, cid, found[cid], now) for cid in ids]


def _anchor_for_new_steps(campaign: AutomationCampaign) -> tuple[datetime, int]:
    """Where re-planned pending steps count from: the last step that is not
    pending (its execution, or its time while it runs), else the campaign start."""
    anchor, position = campaign.start_at, -1
    for step in campaign.steps:
        if step.status == StepStatus.PENDING.value:
            continue
        position = max(position, step.position)
        anchor = step.executed_at or step.scheduled_at
    return anchor, position


def replace_pending_steps(
    session: Session,
    campaign_id: int,
    steps: list[Any],
    *,
    now: datetime | None = None,
    allow_private: bool | None = None,
) -> AutomationCampaign:
    """Replace the campaign's pending steps with `steps` and re-plan their times.
    Steps already executed, running or canceled are kept as they are."""
    now = as_utc(now or utcnow())
    campaign = get_campaign(session, campaign_id)
    _check_editable(campaign)
    new_steps = parse_steps(steps, allow_private=_allow_private(allow_private))
    return _replace_pending(session, campaign, new_steps, now)


def _check_editable(campaign: AutomationCampaign) -> None:
    if campaign.status not in OPEN_CAMPAIGN_STATUSES:
        raise Conflict(f"campaign is {campaign.status}; only active or paused campaigns can be edited")


def _replace_pending(
    session: Session, campaign: AutomationCampaign, new_steps: list[StepInput], now: datetime
) -> AutomationCampaign:
    anchor, last_position = _anchor_for_new_steps(campaign)
    session.execute(
        delete(AutomationStep).where(
            AutomationStep.campaign_id == campaign.id,
            AutomationStep.status == StepStatus.PENDING.value,
        )
    )
    session.expire(campaign, ["steps"])
    rows = step_rows(new_steps, AutomationStep)
    planner = planner_for(campaign.schedule, campaign.contact.timezone)
    for offset, (row, planned) in enumerate(zip(rows, plan_steps(planner, anchor, new_steps, now), strict=False)):
        row.position = last_position + 1 + offset
        row.scheduled_at = planned.at
        row.due_at = planned.at
        row.schedule_note = planned.note
        row.status = StepStatus.PENDING.value
        row.campaign_id = campaign.id
        session.add(row)
    campaign.updated_at = now
    session.flush()
    session.expire(campaign, ["steps"])
    refresh_completion(session, campaign, now)
    return campaign


def pause_campaign(session: Session, campaign_id: int, *, now: datetime | None = None) -> AutomationCampaign:
    """Nothing of a paused campaign runs until it is resumed."""
    now = as_utc(now or utcnow())
    campaign = get_campaign(session, campaign_id)
    if campaign.status == CampaignStatus.PAUSED.value:
        return campaign
    if campaign.status != CampaignStatus.ACTIVE.value:
        raise Conflict(f"a {campaign.status} campaign cannot be paused")
    campaign.status = CampaignStatus.PAUSED.value
    campaign.paused_at = now
    campaign.updated_at = now
    session.flush()
    return campaign


def resume_campaign(session: Session, campaign_id: int, *, now: datetime | None = None) -> AutomationCampaign:
    """Resume a paused campaign; its pending steps move by the length of the pause."""
    now = as_utc(now or utcnow())
    campaign = get_campaign(session, campaign_id)
    if campaign.status == CampaignStatus.ACTIVE.value:
        return campaign
    if campaign.status != CampaignStatus.PAUSED.value:
        raise Conflict(f"a {campaign.status} campaign cannot be resumed")
    paused_for = now - (campaign.paused_at or now)
    if paused_for.total_seconds() > 0:
        shift_pending_steps(session, campaign.id, paused_for)
    campaign.status = CampaignStatus.ACTIVE.value
    campaign.paused_at = None
    campaign.updated_at = now
    session.flush()
    refresh_completion(session, campaign, now)
    return campaign


def cancel_campaign(session: Session, campaign_id: int, *, now: datetime | None = None) -> AutomationCampaign:
    """Cancel: pending steps become `canceled` and nothing more runs."""
    now = as_utc(now or utcnow())
    campaign = get_campaign(session, campaign_id)
    if campaign.status == CampaignStatus.CANCELED.value:
        return campaign
    if campaign.status == CampaignStatus.COMPLETED.value:
        raise Conflict("a completed campaign cannot be canceled")
    cancel_pending_steps(session, campaign.id)
    campaign.status = CampaignStatus.CANCELED.value
    campaign.canceled_at = now
    campaign.paused_at = None
    campaign.updated_at = now
    session.flush()
    session.expire(campaign, ["steps"])
    return campaign


STATUS_CHANGES = {
    CampaignStatus.PAUSED.value: pause_campaign,
    CampaignStatus.ACTIVE.value: resume_campaign,
    CampaignStatus.CANCELED.value: cancel_campaign,
}


def update_campaign(
    session: Session,
    campaign_id: int,
    changes: dict[str, Any],
    *,
    now: datetime | None = None,
    allow_private: bool | None = None,
) -> AutomationCampaign:
    """Apply any of `name`, `schedule` (re-plans the pending steps), `steps`
    (replaces the pending steps), `status` (`paused`, `active` to resume, `canceled`)."""
    now = as_utc(now or utcnow())
    campaign = get_campaign(session, campaign_id)
    problems = Problems()
    for field in sorted(set(changes) - {"name", "steps", "status", "schedule"}):
        problems.add(field, "Unknown field.")
    status = changes.get("status")
    if status is not None and status not in STATUS_CHANGES:
        problems.add("status", f"Choose one of: {', '.join(STATUS_CHANGES)}.")
    name: str | None = None
    if "name" in changes:
        with problems.gather():
            name = _campaign_name(changes["name"])
    new_steps: list[StepInput] | None = None
    if changes.get("steps") is not None:
        with problems.gather():
            new_steps = parse_steps(changes["steps"], allow_private=_allow_private(allow_private))
    schedule: dict[str, Any] | None = None
    if changes.get("schedule") is not None:
        with problems.gather():
            schedule = schedule_json(parse(ScheduleInput, changes["schedule"], prefix="schedule"))
    problems.raise_if_any()
    if new_steps is not None or schedule is not None:
        _check_editable(campaign)
    if name is not None:
        campaign.name = name
        campaign.updated_at = now
    if schedule is not None:
        campaign.schedule = schedule
        if new_steps is None:  # the pending steps as they are, planned again
            pending = [s for s in campaign.steps if s.status == StepStatus.PENDING.value]
            new_steps = [parse(StepInput, step_as_input(s), allow_private=True) for s in pending]
    if new_steps is not None:
        _replace_pending(session, campaign, new_steps, now)
    if status is not None:
        STATUS_CHANGES[status](session, campaign.id, now=now)
    session.flush()
    return campaign


def _campaign_name(value: Any) -> str:
    """A new name for a campaign, checked as when it was created."""
    return parse(CampaignInput, {"name": value, "contact_id": 1}).name


def delete_campaign(session: Session, campaign_id: int) -> None:
    """Delete a campaign with its steps and attempts (never its contact)."""
    campaign = get_campaign(session, campaign_id)
    session.delete(campaign)
    session.flush()


def duplicate_campaign(
    session: Session,
    campaign_id: int,
    *,
    contact_id: int | None = None,
    name: str | None = None,
    now: datetime | None = None,
) -> AutomationCampaign:
    """A new active campaign with the same steps, starting now (for the same or another contact)."""
    source = get_campaign(session, campaign_id)
    return create_campaign(
        session,
        {
            "name": name or f"{source.name} (copy)",
            "contact_id": contact_id or source.contact_id,
            "template_id": source.template_id,
            "steps": [step_as_input(step) for step in source.steps],
            "schedule": source.schedule,
        },
        now=now,
        allow_private=True,
    )


def save_campaign_as_template(
    session: Session,
    campaign_id: int,
    *,
    name: str,
    description: str = "",
    category: str = TemplateCategory.CUSTOM.value,
) -> AutomationTemplate:
    """A custom template with the campaign's steps."""
    source = get_campaign(session, campaign_id)
    return create_template(
        session,
        {
            "name": name,
            "description": description,
            "category": category,
            "steps": [step_as_input(step) for step in source.steps],
            "schedule": source.schedule,
        },
        allow_private=True,
    )


def preview_schedule(
    steps: list[Any],
    *,
    start_at: datetime | None = None,
    schedule: dict[str, Any] | None = None,
    contact_timezone: str | None = None,
    now: datetime | None = None,
    allow_private: bool | None = None,
) -> list[Planned]:
    """The times (and why each moved) the steps would get if the campaign were saved
    now for a contact in `contact_timezone` (validates the steps and the schedule)."""
    now = as_utc(now or utcnow())
    problems = Problems()
    parsed: list[StepInput] = []
    values: ScheduleInput | None = None
    with problems.gather():
        parsed = parse_steps(steps, allow_private=_allow_private(allow_private))
    if schedule is not None:
        with problems.gather():
            values = parse(ScheduleInput, schedule, prefix="schedule")
    problems.raise_if_any()
    planner = planner_for(schedule_json(values), contact_timezone)
    return plan_steps(planner, as_utc(start_at) if start_at else now, parsed, now)


def render_step(step: Any, contact: Contact, campaign_name: str = "") -> tuple[str, str]:
    """A step's subject and body personalised for `contact`."""
    return (
        render(step.subject or "", contact, campaign_name=campaign_name, step_name=step.name),
        render(step.body or "", contact, campaign_name=campaign_name, step_name=step.name),
    )


# --- the campaign list -------------------------------------------------------


@dataclass(frozen=True)
class CampaignFilter:
    status: str | None = None
    contact_id: int | None = None
    template_id: int | None = None
    message_type: str | None = None
    search: str = ""


@dataclass(frozen=True)
class CampaignRow:
    id: int
    name: str
    status: str
    contact_id: int
    contact_name: str
    template_id: int | None
    template_name: str | None
    steps_finished: int
    steps_total: int
    next_step_name: str | None
    next_step_type: str | None
    next_step_at: datetime | None
    start_at: datetime
    created_at: datetime

    @property
    def progress(self) -> float:
        return self.steps_finished / self.steps_total if self.steps_total else 0.0


def _filtered(query: SelectT, filters: CampaignFilter) -> SelectT:
    if filters.status:
        query = query.where(AutomationCampaign.status == filters.status)
    if filters.contact_id:
        query = query.where(AutomationCampaign.contact_id == filters.contact_id)
    if filters.template_id:
        query = query.where(AutomationCampaign.template_id == filters.template_id)
    if filters.message_type:
        query = query.where(
            exists().where(
                and_(
                    AutomationStep.campaign_id == AutomationCampaign.id,
                    AutomationStep.message_type == filters.message_type,
                )
            )
        )
    text = filters.search.strip()
    if text:
        query = query.where(
            or_(
                folding_for(text)(AutomationCampaign.name).like(like_pattern(text), escape="\\"),
                AutomationCampaign.contact_id.in_(select(Contact.id).where(contact_matches(text, company=False))),
            )
        )
    return query


def list_campaigns(
    session: Session,
    filters: CampaignFilter | None = None,
    *,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[CampaignRow], int]:
    """A page of campaigns (newest first) with progress and next step, and the total."""
    filters = filters or CampaignFilter()
    total = session.scalar(_filtered(select(func.count()).select_from(AutomationCampaign), filters)) or 0
    page = session.execute(
        _filtered(
            select(
                AutomationCampaign.id,
                AutomationCampaign.name,
                AutomationCampaign.status,
                AutomationCampaign.contact_id,
                Contact.first_name,
                Contact.last_name,
                AutomationCampaign.template_id,
                AutomationTemplate.name,
                AutomationCampaign.start_at,
                AutomationCampaign.created_at,
            )
            .join(Contact, Contact.id == AutomationCampaign.contact_id)
            .outerjoin(AutomationTemplate, AutomationTemplate.id == AutomationCampaign.template_id),
            filters,
        )
        .order_by(AutomationCampaign.created_at.desc(), AutomationCampaign.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    ids = [row[0] for row in page]
    progress = campaign_progress(session, ids)
    upcoming = next_steps(session, ids)
    rows = []
    for cid, name, status, contact_id, first, last, template_id, template_name, start_at, created_at in page:
        finished, total_steps = progress.get(cid, (0, 0))
        nxt = upcoming.get(cid)
        rows.append(
            CampaignRow(
                id=cid,
                name=name,
                status=status,
                contact_id=contact_id,
                contact_name=f"{first} {last}".strip(),
                template_id=template_id,
                template_name=template_name,
                steps_finished=finished,
                steps_total=total_steps,
                next_step_name=nxt[0] if nxt else None,
                next_step_type=nxt[1] if nxt else None,
                next_step_at=nxt[2] if nxt else None,
                start_at=start_at,
                created_at=created_at,
            )
        )
    return rows, total


def campaign_progress(session: Session, campaign_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(finished steps, all steps) per campaign, counted in the database."""
    if not campaign_ids:
        return {}
    finished = func.sum(case((AutomationStep.status.in_([s.value for s in FINISHED_STEP_STATUSES]), 1), else_=0))
    result = session.execute(
        select(AutomationStep.campaign_id, finished, func.count())
        .where(AutomationStep.campaign_id.in_(list(campaign_ids)))
        .group_by(AutomationStep.campaign_id)
    ).all()
    return {cid: (int(done or 0), int(count)) for cid, done, count in result}


def next_steps(session: Session, campaign_ids: Sequence[int]) -> dict[int, tuple[str, str, datetime]]:
    """The next step (name, type, time) of each campaign that has one."""
    if not campaign_ids:
        return {}
    first_open = (
        select(AutomationStep.campaign_id, func.min(AutomationStep.position).label("position"))
        .where(
            AutomationStep.campaign_id.in_(list(campaign_ids)),
            # In a CASE, so that SQLite seeks the page's campaigns in the (campaign_id,
            # position, status) index rather than reading every pending step of the
            # (status, due_at) index: 0.1 ms instead of 0.2 s with 150,000 pending steps.
            case((AutomationStep.status.in_((StepStatus.PENDING.value, StepStatus.RUNNING.value)), 1), else_=0) == 1,
        )
        .group_by(AutomationStep.campaign_id)
        .subquery()
    )
    result = session.execute(
        select(
            AutomationStep.campaign_id,
            AutomationStep.name,
            AutomationStep.message_type,
            AutomationStep.scheduled_at,
        ).join(
            first_open,
            and_(
                AutomationStep.campaign_id == first_open.c.campaign_id,
                AutomationStep.position == first_open.c.position,
            ),
        )
    ).all()
    return {cid: (name, kind, when) for cid, name, kind, when in result}


def is_final(status: str) -> bool:
    return status in {s.value for s in FINAL_STEP_STATUSES}
