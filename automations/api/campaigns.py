"""/api/automation/campaigns/: list, create, read with steps, update (name, pending
steps, pause/resume/cancel), delete; and the dashboard's duplicate and save-as-template."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy.orm import Session

from automations.api.deps import NO_NUL, Context, Limit, Offset, reject_nul
from automations.api.schemas import (
    MAX_ID,
    AttemptOut,
    AttemptPage,
    BulkCampaignIn,
    BulkResult,
    CampaignDetail,
    CampaignIn,
    CampaignOut,
    CampaignPage,
    CampaignStepOut,
    CampaignUpdate,
    DuplicateIn,
    Problem,
    Responses,
    SaveAsTemplateIn,
    ScheduleOut,
    TemplateDetail,
)
from automations.api.templates import NAME_TAKEN, template_detail
from automations.domain.errors import NotFound, ValidationError
from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    CampaignStatus,
    MessageType,
)
from automations.services import campaigns, contacts
from automations.services.campaigns import CampaignFilter, CampaignRow
from automations.services.planning import schedule_json, zone_name

router = APIRouter(prefix="/api/automation/campaigns", tags=["campaigns"])

CampaignId = Annotated[int, Path(ge=1, le=MAX_ID, description="Campaign id.")]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "No campaign with this id."}}
CONFLICT: Responses = {
    409: {
        "model": Problem,
        "description": "A state change that is not allowed (e.g. resuming "
        "a canceled campaign, editing a completed one).",
    }
}


def row_out(row: CampaignRow) -> CampaignOut:
    return CampaignOut(
        id=row.id,
        name=row.name,
        status=row.status,
        contact_id=row.contact_id,
        contact_name=row.contact_name,
        template_id=row.template_id,
        template_name=row.template_name,
        progress=row.progress,
        steps_finished=row.steps_finished,
        steps_total=row.steps_total,
        next_step_name=row.next_step_name,
        next_step_type=row.next_step_type,
        next_step_at=row.next_step_at,
        start_at=row.start_at,
        created_at=row.created_at,
    )


def campaign_detail(session: Session, campaign: AutomationCampaign) -> CampaignDetail:
    """The campaign with its progress, next step and every step's execution state."""
    session.flush()
    session.expire(campaign, ["steps"])
    finished, total = campaigns.campaign_progress(session, [campaign.id]).get(campaign.id, (0, 0))
    upcoming = campaigns.next_steps(session, [campaign.id]).get(campaign.id)
    template = campaign.template
    return CampaignDetail(
        id=campaign.id,
        name=campaign.name,
        status=campaign.status,
        contact_id=campaign.contact_id,
        contact_name=campaign.contact.full_name,
        template_id=campaign.template_id,
        template_name=template.name if template else None,
        progress=finished / total if total else 0.0,
        steps_finished=finished,
        steps_total=total,
        next_step_name=upcoming[0] if upcoming else None,
        next_step_type=upcoming[1] if upcoming else None,
        next_step_at=upcoming[2] if upcoming else None,
        start_at=campaign.start_at,
        created_at=campaign.created_at,
        updated_at=campaign.updated_at,
        paused_at=campaign.paused_at,
        completed_at=campaign.completed_at,
        canceled_at=campaign.canceled_at,
        schedule=ScheduleOut.model_validate(schedule_json(campaign.schedule)),
        planning_timezone=zone_name(campaign.schedule, campaign.contact.timezone),
        stop_on_reply=campaign.stop_on_reply,
        tracking=campaign.tracking,
        steps=[CampaignStepOut.model_validate(step, from_attributes=True) for step in campaign.steps],
    )


@router.get("/", response_model=CampaignPage, summary="List campaigns")
def list_campaigns(
    context: Context,
    status_: Annotated[CampaignStatus | None, Query(alias="status", description="Only this status.")] = None,
    contact_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this contact's.")] = None,
    template_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only those made from this template.")
    ] = None,
    message_type: Annotated[MessageType | None, Query(description="Only those with a step of this type.")] = None,
    search: Annotated[
        str, Query(max_length=200, pattern=NO_NUL, description="Part of the campaign's or the contact's name or email.")
    ] = "",
    limit: Limit = 50,
    offset: Offset = 0,
) -> CampaignPage:
    """Newest first, with progress and next step."""
    filters = CampaignFilter(
        status=status_.value if status_ else None,
        contact_id=contact_id,
        template_id=template_id,
        message_type=message_type.value if message_type else None,
        search=search,
    )
    with context.db.read_session() as session:
        rows, total = campaigns.list_campaigns(session, filters, limit=limit, offset=offset)
    return CampaignPage(items=[row_out(row) for row in rows], total=total)


@router.post(
    "/",
    response_model=CampaignDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Create a campaign",
)
def create_campaign(context: Context, body: CampaignIn) -> CampaignDetail:
    """`{name, contact_id, template_id?, start_at?, steps?}`: the template's steps when
    `steps` is omitted. Every step's time is planned at once."""
    data = body.model_dump(exclude_unset=True)
    reject_nul(data)
    with context.db.session() as session:
        campaign = campaigns.create_campaign(session, data, now=context.now(), allow_private=context.allow_private)
        return campaign_detail(session, campaign)


@router.post(
    "/bulk/",
    response_model=BulkResult,
    status_code=status.HTTP_201_CREATED,
    summary="Start a campaign for many contacts",
)
def create_campaigns_in_bulk(context: Context, body: BulkCampaignIn) -> BulkResult:
    """One campaign per contact, for `contact_ids` or every contact with `tag`; all or
    nothing."""
    data = body.model_dump(exclude_unset=True)
    reject_nul(data)
    contact_ids = data.pop("contact_ids", None)
    tag = data.pop("tag", None)
    if (contact_ids is None) == (tag is None):
        raise ValidationError.single("contact_ids", "give either contact_ids or a tag")
    with context.db.session() as session:
        if tag is not None:
            contact_ids = contacts.contact_ids_with_tag(session, tag)
            if not contact_ids:
                raise ValidationError.single("tag", f"no contact has the tag {tag!r}")
        created = campaigns.start_campaigns_for_contacts(
            session,
            contact_ids or [],
            template_id=data.get("template_id"),
            steps=data.get("steps"),
            name=data.get("name", ""),
            start_at=data.get("start_at"),
            schedule=data.get("schedule"),
            now=context.now(),
        )
        return BulkResult(created=len(created), campaign_ids=[c.id for c in created])


@router.get("/{campaign_id}/", response_model=CampaignDetail, responses=NOT_FOUND, summary="Get a campaign")
def get_campaign(context: Context, campaign_id: CampaignId) -> CampaignDetail:
    with context.db.read_session() as session:
        return campaign_detail(session, campaigns.get_campaign(session, campaign_id))


@router.put(
    "/{campaign_id}/",
    response_model=CampaignDetail,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Update a campaign",
)
def update_campaign(context: Context, campaign_id: CampaignId, body: CampaignUpdate) -> CampaignDetail:
    """Any of `name`, `schedule` (re-plans the pending steps), `steps` (replaces the
    pending steps), `status` (`paused`, `active` to resume, `canceled`). All or nothing."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    reject_nul(changes)
    with context.db.session() as session:
        campaign = campaigns.update_campaign(
            session, campaign_id, changes, now=context.now(), allow_private=context.allow_private
        )
        return campaign_detail(session, campaign)


@router.delete(
    "/{campaign_id}/",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NOT_FOUND,
    summary="Delete a campaign",
)
def delete_campaign(context: Context, campaign_id: CampaignId) -> Response:
    """Deletes the campaign with its steps and attempts, never its contact."""
    with context.db.session() as session:
        campaigns.delete_campaign(session, campaign_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{campaign_id}/duplicate/",
    response_model=CampaignDetail,
    status_code=status.HTTP_201_CREATED,
    responses=NOT_FOUND,
    summary="Duplicate a campaign",
)
def duplicate_campaign(context: Context, campaign_id: CampaignId, body: DuplicateIn | None = None) -> CampaignDetail:
    """A new active campaign with the same steps, starting now, for the same or another contact."""
    data = body.model_dump(exclude_unset=True) if body else {}
    reject_nul(data)
    with context.db.session() as session:
        campaign = campaigns.duplicate_campaign(
            session,
            campaign_id,
            contact_id=data.get("contact_id"),
            name=data.get("name"),
            now=context.now(),
        )
        return campaign_detail(session, campaign)


@router.post(
    "/{campaign_id}/save-as-template/",
    response_model=TemplateDetail,
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, **NAME_TAKEN},
    summary="Save a campaign as a template",
)
def save_as_template(context: Context, campaign_id: CampaignId, body: SaveAsTemplateIn) -> TemplateDetail:
    """A custom template with the campaign's steps."""
    data = body.model_dump(exclude_unset=True)
    reject_nul(data)
    with context.db.session() as session:
        template = campaigns.save_campaign_as_template(
            session,
            campaign_id,
            name=data["name"],
            description=data.get("description") or "",
            category=body.category.value,
        )
        return template_detail(session, template)


StepId = Annotated[int, Path(ge=1, le=MAX_ID, description="Step id.")]


@router.get(
    "/{campaign_id}/steps/{step_id}/attempts/",
    response_model=AttemptPage,
    responses={404: {"model": Problem, "description": "No such campaign or step."}},
    summary="A step's attempt log",
)
def step_attempts(context: Context, campaign_id: CampaignId, step_id: StepId) -> AttemptPage:
    """Every attempt the runners made at the step, oldest first, with its outcome."""
    with context.db.read_session() as session:
        campaign = campaigns.get_campaign(session, campaign_id)
        step = session.get(AutomationStep, step_id)
        if step is None or step.campaign_id != campaign.id:
            raise NotFound("step", step_id)
        items = [AttemptOut.model_validate(a, from_attributes=True) for a in step.attempt_log]
    return AttemptPage(items=items, total=len(items))
