"""/api/automation/templates/: list, create, and (as in the dashboard) read, edit,
clone and delete custom templates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from sqlalchemy.orm import Session

from automations.api.deps import Context, Limit, Offset, reject_nul
from automations.api.schemas import (
    MAX_ID,
    CloneIn,
    Problem,
    Responses,
    ScheduleOut,
    TemplateDetail,
    TemplateIn,
    TemplateOut,
    TemplatePage,
    TemplateStepOut,
    TemplateUpdate,
)
from automations.domain.models import AutomationTemplate
from automations.services import templates
from automations.services.planning import schedule_json
from automations.services.templates import TemplateSummary

router = APIRouter(prefix="/api/automation/templates", tags=["templates"])

TemplateId = Annotated[int, Path(ge=1, le=MAX_ID, description="Template id.")]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "No template with this id."}}
READ_ONLY: Responses = {409: {"model": Problem, "description": "A system template cannot be changed."}}
NAME_TAKEN: Responses = {
    409: {"model": Problem, "description": "Another template with this name was saved at the same time."}
}


def summary_out(summary: TemplateSummary) -> TemplateOut:
    return TemplateOut(
        id=summary.id,
        name=summary.name,
        category=summary.category,
        description=summary.description,
        is_system=summary.is_system,
        step_count=summary.step_count,
        duration_hours=summary.duration.total_seconds() / 3600,
        message_types=list(summary.message_types),
        campaigns=summary.campaigns,
    )


def template_detail(session: Session, template: AutomationTemplate) -> TemplateDetail:
    """The template with its steps and usage (the list's figures for this one)."""
    session.flush()
    summary = next(t for t in templates.list_templates(session) if t.id == template.id)
    return TemplateDetail(
        **summary_out(summary).model_dump(),
        steps=[TemplateStepOut.model_validate(step, from_attributes=True) for step in template.steps],
        schedule=ScheduleOut.model_validate(schedule_json(template.schedule)),
        stop_on_reply=template.stop_on_reply,
        tracking=template.tracking,
    )


@router.get("/", response_model=TemplatePage, summary="List templates")
def list_templates(context: Context, limit: Limit = 100, offset: Offset = 0) -> TemplatePage:
    """System templates first, then custom ones, by name; with step count, total
    duration and how many campaigns use each."""
    with context.db.read_session() as session:
        # Templates are a short, hand-made list: their summaries are counted in SQL
        # in one go, and the page is cut from that list.
        summaries = templates.list_templates(session)
    return TemplatePage(items=[summary_out(s) for s in summaries[offset : offset + limit]], total=len(summaries))


@router.post(
    "/",
    response_model=TemplateDetail,
    status_code=status.HTTP_201_CREATED,
    responses=NAME_TAKEN,
    summary="Create a custom template",
)
def create_template(context: Context, body: TemplateIn) -> TemplateDetail:
    """A custom (editable) template: `{name, category, description, steps: [step...]}`."""
    data = body.model_dump(exclude_unset=True)
    reject_nul(data)
    with context.db.session() as session:
        template = templates.create_template(session, data, allow_private=context.allow_private)
        return template_detail(session, template)


@router.get("/{template_id}/", response_model=TemplateDetail, responses=NOT_FOUND, summary="Get a template")
def get_template(context: Context, template_id: TemplateId) -> TemplateDetail:
    with context.db.read_session() as session:
        return template_detail(session, templates.get_template(session, template_id))


@router.put(
    "/{template_id}/",
    response_model=TemplateDetail,
    responses={**NOT_FOUND, **READ_ONLY},
    summary="Edit a custom template",
)
def update_template(context: Context, template_id: TemplateId, body: TemplateUpdate) -> TemplateDetail:
    """Any of `name`, `category`, `description`, `steps` (replaces all the steps).
    Campaigns already made from the template keep their own steps."""
    changes = body.model_dump(exclude_unset=True)
    reject_nul(changes)
    with context.db.session() as session:
        template = templates.update_template(session, template_id, changes, allow_private=context.allow_private)
        return template_detail(session, template)


@router.delete(
    "/{template_id}/",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **READ_ONLY},
    summary="Delete a custom template",
)
def delete_template(context: Context, template_id: TemplateId) -> Response:
    """Campaigns made from it keep their steps."""
    with context.db.session() as session:
        templates.delete_template(session, template_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{template_id}/clone/",
    response_model=TemplateDetail,
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, **NAME_TAKEN},
    summary="Clone a template",
)
def clone_template(context: Context, template_id: TemplateId, body: CloneIn | None = None) -> TemplateDetail:
    """A custom, editable copy of any template (the way to change a system template)."""
    name = body.name if body else None
    reject_nul(name, "name")
    with context.db.session() as session:
        return template_detail(session, templates.clone_template(session, template_id, name=name))
