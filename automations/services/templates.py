"""Automation templates: reusable step lists. System templates are read-only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from automations.domain.config import get_settings
from automations.domain.db import folded
from automations.domain.errors import Conflict, NotFound, Problems, ValidationError
from automations.domain.models import (
    AutomationCampaign,
    AutomationTemplate,
    TemplateStep,
)
from automations.services.planning import schedule_json
from automations.services.scheduling import total_duration
from automations.services.schemas import StepInput, TemplateInput, parse, parse_steps


def get_template(session: Session, template_id: int) -> AutomationTemplate:
    template = session.get(AutomationTemplate, template_id)
    if template is None:
        raise NotFound("template", template_id)
    return template


def step_rows(steps: list[StepInput], cls: type[Any]) -> list[Any]:
    """Model rows (TemplateStep or AutomationStep) for validated steps, numbered from 0."""
    return [
        cls(
            position=index,
            name=step.name,
            message_type=step.message_type.value,
            delay_days=step.delay_days,
            delay_hours=step.delay_hours,
            subject=step.subject,
            body=step.body,
            webhook_url=step.webhook_url,
            webhook_payload=step.webhook_payload,
            business_days=step.business_days,
            send_at=step.send_at,
        )
        for index, step in enumerate(steps)
    ]


def step_as_input(step: Any) -> dict[str, Any]:
    """A stored step (of a template or a campaign) as the input that would recreate it."""
    return {
        "name": step.name,
        "message_type": step.message_type,
        "delay_days": step.delay_days,
        "delay_hours": step.delay_hours,
        "subject": step.subject,
        "body": step.body,
        "webhook_url": step.webhook_url,
        "webhook_payload": step.webhook_payload,
        "business_days": bool(step.business_days),
        "send_at": step.send_at,
    }


def _name_taken(session: Session, name: Any, own_id: int | None = None) -> str | None:
    """Why `name` cannot be used because another template has it, or None."""
    if not isinstance(name, str) or not name.strip():
        return None
    name = name.strip()
    query = select(AutomationTemplate.id).where(folded(AutomationTemplate.name) == name.lower())
    if own_id is not None:
        query = query.where(AutomationTemplate.id != own_id)
    if session.scalar(query.limit(1)) is None:
        return None
    return f"A template named {name!r} already exists: choose another name."


def _validated(
    session: Session, data: TemplateInput | dict[str, Any], allow_private: bool, own_id: int | None = None
) -> TemplateInput:
    """The template's fields and steps (templates checked with them), its name
    free: every problem in one `ValidationError`."""
    problems = Problems()
    values: TemplateInput | None = None
    with problems.gather():
        values = parse(TemplateInput, data, allow_private=allow_private)
    if "name" not in problems:
        name = values.name if values is not None else (data.get("name") if isinstance(data, dict) else None)
        taken = _name_taken(session, name, own_id)
        if taken:
            problems.add("name", taken)
    problems.raise_if_any()
    assert values is not None  # no problem, so parsed
    return values


def create_template(
    session: Session, data: TemplateInput | dict[str, Any], *, allow_private: bool | None = None
) -> AutomationTemplate:
    """Validate and add a custom template."""
    if allow_private is None:
        allow_private = get_settings().webhook_allow_private
    values = _validated(session, data, allow_private)
    template = AutomationTemplate(
        name=values.name,
        description=values.description,
        category=values.category.value,
        is_system=False,
        schedule=schedule_json(values.schedule),
        stop_on_reply=values.stop_on_reply,
        tracking=values.tracking,
    )
    template.steps = step_rows(values.steps, TemplateStep)
    session.add(template)
    session.flush()
    return template


def update_template(
    session: Session, template_id: int, changes: dict[str, Any], *, allow_private: bool | None = None
) -> AutomationTemplate:
    """Change a custom template's name, description, category or steps (an unknown
    field is one more problem reported with the others)."""
    if allow_private is None:
        allow_private = get_settings().webhook_allow_private
    template = get_template(session, template_id)
    if template.is_system:
        raise Conflict(f"{template.name!r} is a system template; clone it to change it")
    merged: dict[str, Any] = {
        "name": template.name,
        "description": template.description,
        "category": template.category,
        "steps": [step_as_input(step) for step in template.steps],
        "schedule": template.schedule,
        "stop_on_reply": template.stop_on_reply,
        "tracking": template.tracking,
        **changes,
    }
    values = _validated(session, merged, allow_private, own_id=template.id)
    template.name = values.name
    template.description = values.description
    template.category = values.category.value
    template.schedule = schedule_json(values.schedule)
    template.stop_on_reply = values.stop_on_reply
    template.tracking = values.tracking
    if "steps" in changes:
        template.steps.clear()
        session.flush()
        template.steps.extend(step_rows(values.steps, TemplateStep))
    session.flush()
    return template


def delete_template(session: Session, template_id: int) -> None:
    """Delete a custom template; campaigns made from it keep their steps."""
    template = get_template(session, template_id)
    if template.is_system:
        raise Conflict(f"{template.name!r} is a system template and cannot be deleted")
    session.delete(template)
    session.flush()


def _free_copy_name(session: Session, base: str) -> str:
    candidate = f"{base} (copy)"
    number = 2
    while (
        session.scalar(select(AutomationTemplate.id).where(folded(AutomationTemplate.name) == candidate.lower()))
        is not None
    ):
        candidate = f"{base} (copy {number})"
        number += 1
    return candidate


def clone_template(session: Session, template_id: int, name: str | None = None) -> AutomationTemplate:
    """A custom, editable copy of any template."""
    source = get_template(session, template_id)
    return create_template(
        session,
        {
            "name": name or _free_copy_name(session, source.name),
            "description": source.description,
            "category": source.category,
            "steps": [step_as_input(step) for step in source.steps],
            "schedule": source.schedule,
            "stop_on_reply": source.stop_on_reply,
            "tracking": source.tracking,
        },
        allow_private=True,  # the source's URLs were accepted when it was saved
    )


@dataclass(frozen=True)
class TemplateSummary:
    id: int
    name: str
    category: str
    description: str
    is_system: bool
    step_count: int
    duration: timedelta
    message_types: tuple[str, ...]
    campaigns: int


def list_templates(session: Session) -> list[TemplateSummary]:
    """Every template with its step count, total duration and how many campaigns use it."""
    usage = dict(
        session.execute(
            select(AutomationCampaign.template_id, func.count())
            .where(AutomationCampaign.template_id.is_not(None))
            .group_by(AutomationCampaign.template_id)
        ).all()
    )
    templates = session.scalars(
        select(AutomationTemplate).order_by(AutomationTemplate.is_system.desc(), AutomationTemplate.name)
    ).all()
    return [
        TemplateSummary(
            id=t.id,
            name=t.name,
            category=t.category,
            description=t.description,
            is_system=t.is_system,
            step_count=len(t.steps),
            duration=total_duration(t.steps),
            message_types=tuple(dict.fromkeys(s.message_type for s in t.steps)),
            campaigns=int(usage.get(t.id, 0)),
        )
        for t in templates
    ]


def template_steps_input(session: Session, template_id: int, field: str = "template_id") -> list[StepInput]:
    """A template's steps, ready to start a campaign with; a missing template is a
    validation error on `field`."""
    template = session.get(AutomationTemplate, template_id)
    if template is None:
        raise ValidationError.single(field, f"No template with id {template_id}.")
    return parse_steps([step_as_input(s) for s in template.steps], allow_private=True)
