"""Shapes of the REST API: request bodies (types and documentation only) and responses.

The request models check the JSON shape and the types, so that the OpenAPI
document describes every field; the rules (lengths, required fields per message
type, Jinja2 sandbox, webhook URL guard, unique names) are the domain layer's,
applied by the services the endpoints call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema, field_validator

from automations.models import CampaignStatus, MessageType, StepStatus, TemplateCategory
from automations.timeutil import as_utc

# Ids are 32-bit integers in PostgreSQL: a larger one names nothing, and the
# database would refuse to compare with it.
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]

# Start times beyond these years are typing mistakes, and a step planned from
# them could leave the range of a datetime.
EARLIEST_YEAR = 1970
LATEST_YEAR = 2999


def _iso(value: datetime) -> str:
    return as_utc(value).isoformat()


# Always written with an explicit offset (`+00:00`), never a bare `Z`.
Timestamp = Annotated[
    datetime,
    PlainSerializer(_iso, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests ----------------------------------------------------------------


class StepIn(Body):
    """One step of a template or a campaign."""

    name: str = Field(description="What the step is, e.g. `Welcome email`.")
    message_type: MessageType = Field(description="Channel: `email`, `sms`, `task` or `webhook`.")
    delay_days: int = Field(
        default=0,
        description="Days after the previous step (after the start for the first step); 0 to 3650.",
    )
    delay_hours: int = Field(default=0, description="Hours added to `delay_days`; 0 to 2160.")
    subject: str | None = Field(
        default=None,
        description="An email's subject, or a task's title (required for both). "
        "A sandboxed Jinja2 template, e.g. `Hi {{ contact.first_name }}`.",
    )
    body: str | None = Field(
        default=None,
        description="The email or SMS text (required for both; SMS at most 1600 characters), "
        "or a task's notes. A sandboxed Jinja2 template.",
    )
    webhook_url: str | None = Field(
        default=None,
        description="http(s) URL a webhook step POSTs to (required for a webhook). Private, "
        "loopback, link-local and CGNAT targets are refused unless "
        "AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE=1.",
    )
    webhook_payload: dict[str, Any] | None = Field(
        default=None, description="Extra JSON sent with a webhook step."
    )


class TemplateIn(Body):
    name: str = Field(description="Unique name (case-insensitive).")
    category: TemplateCategory = Field(default=TemplateCategory.CUSTOM, description="Category.")
    description: str | None = Field(default=None, description="Free text.")
    steps: list[StepIn] = Field(description="The steps, in order (1 to 50).")


class TemplateUpdate(Body):
    """Any subset of a custom template's fields; `steps` replaces all its steps."""

    name: str | None = Field(default=None, description="New unique name.")
    category: TemplateCategory | None = Field(default=None, description="New category.")
    description: str | None = Field(default=None, description="New description.")
    steps: list[StepIn] | None = Field(default=None, description="New steps (replace the old ones).")


class CloneIn(Body):
    name: str | None = Field(default=None, description="Name of the copy (default: `<name> (copy)`).")


class _CampaignContent(Body):
    name: str = Field(description="Campaign name.")
    template_id: Id | None = Field(
        default=None, description="Template the campaign is made from; its steps are used when "
        "`steps` is omitted.",
    )
    start_at: datetime | None = Field(
        default=None,
        description="When the first step's delay starts counting (ISO 8601; without an offset, "
        "UTC). Default: now. In the past, overdue steps run at once, in order.",
    )
    steps: list[StepIn] | None = Field(
        default=None, description="The steps (default: the template's steps)."
    )

    @field_validator("start_at")
    @classmethod
    def _plausible_start(cls, value: datetime | None) -> datetime | None:
        if value is not None and not EARLIEST_YEAR <= as_utc(value).year <= LATEST_YEAR:
            raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
        return value


class CampaignIn(_CampaignContent):
    contact_id: Id = Field(description="The contact the campaign is applied to.")


MAX_BULK_CONTACTS = 10_000


class BulkCampaignIn(_CampaignContent):
    """The same campaign for many contacts: give `contact_ids` or a `tag`."""

    contact_ids: list[Id] | None = Field(
        default=None, max_length=MAX_BULK_CONTACTS,
        description=f"The contacts (at most {MAX_BULK_CONTACTS}).",
    )
    tag: str | None = Field(default=None, description="Every contact with this tag.")


class BulkResult(BaseModel):
    created: int = Field(description="Campaigns created (one per contact).")
    campaign_ids: list[int] = Field(description="Their ids, in the order of the contacts.")


class CampaignUpdate(Body):
    """Any of the fields; steps are applied before the status change."""

    name: str | None = Field(default=None, description="New name.")
    steps: list[StepIn] | None = Field(
        default=None,
        description="Replaces the campaign's pending steps (steps already executed are kept); "
        "their times are planned again from the last executed step.",
    )
    status: Literal["paused", "active", "canceled"] | None = Field(
        default=None,
        description="`paused` to pause, `active` to resume (pending steps move by the length "
        "of the pause), `canceled` to cancel (pending steps become canceled). Resuming a "
        "canceled or completed campaign is a conflict (409).",
    )


class DuplicateIn(Body):
    contact_id: Id | None = Field(default=None, description="Contact of the copy (default: the same).")
    name: str | None = Field(default=None, description="Name of the copy (default: `<name> (copy)`).")


class SaveAsTemplateIn(Body):
    name: str = Field(description="Name of the new custom template.")
    description: str | None = Field(default=None, description="Its description.")
    category: TemplateCategory = Field(default=TemplateCategory.CUSTOM, description="Its category.")


CustomValue = str | int | float | bool | None


class ContactIn(Body):
    first_name: str = Field(description="First name (required).")
    last_name: str | None = Field(default=None, description="Last name.")
    email: str | None = Field(default=None, description="Email address (unique among contacts).")
    phone: str | None = Field(
        default=None, description="Phone in international form, e.g. `+14155550123` (stored E.164)."
    )
    company: str | None = Field(default=None, description="Company.")
    timezone: str | None = Field(default=None, description="IANA timezone (default `UTC`).")
    tags: list[str] | None = Field(default=None, description="Tags (stored lower-case, at most 50).")
    custom_fields: dict[str, CustomValue] | None = Field(
        default=None, description="Free-form fields: names of letters, digits and `_`."
    )
    email_opt_out: bool | None = Field(default=None, description="No email to this contact.")
    sms_opt_out: bool | None = Field(default=None, description="No SMS to this contact.")


class ContactUpdate(ContactIn):
    """Any subset of the contact's fields; `null` clears an optional one."""

    first_name: str | None = Field(default=None, description="First name.")  # type: ignore[assignment]


# --- responses ---------------------------------------------------------------


class Problem(BaseModel):
    detail: str = Field(description="What went wrong.")


class ValidationProblem(Problem):
    errors: dict[str, str] = Field(
        description="One message per invalid field (dotted path, e.g. `steps.0.subject`)."
    )


class TemplateStepOut(BaseModel):
    position: int = Field(description="0-based order.")
    name: str
    message_type: MessageType
    delay_days: int
    delay_hours: int
    subject: str = Field(description="Email subject or task title.")
    body: str = Field(description="Email/SMS text or task notes.")
    webhook_url: str | None
    webhook_payload: dict[str, Any] | None


class CampaignStepOut(TemplateStepOut):
    id: int
    status: StepStatus = Field(description="pending, running, sent, done, failed, skipped or canceled.")
    scheduled_at: Timestamp = Field(description="Planned time (moves with late steps and pauses).")
    executed_at: Timestamp | None = Field(description="When the step finished.")
    attempts: int = Field(description="Attempts made so far.")
    last_error: str | None = Field(description="Error of the last failed attempt, or why it was skipped.")
    result: dict[str, Any] | None = Field(description="The channel's result (message id, HTTP status...).")


class AttemptOut(BaseModel):
    attempt_no: int = Field(description="1 for the first attempt.")
    runner_id: str | None = Field(description="The runner that made it.")
    started_at: Timestamp
    finished_at: Timestamp | None
    outcome: str = Field(description="sent, done, retry, failed or skipped.")
    detail: str | None = Field(description="Error or reason.")
    result: dict[str, Any] | None = Field(description="The channel's result.")


class AttemptPage(BaseModel):
    items: list[AttemptOut]
    total: int


class TemplateOut(BaseModel):
    id: int
    name: str
    category: TemplateCategory
    description: str
    is_system: bool = Field(description="System templates are read-only; clone them to change them.")
    step_count: int
    duration_hours: float = Field(description="Sum of the steps' delays, in hours.")
    message_types: list[MessageType] = Field(description="Channels used, in order of first use.")
    campaigns: int = Field(description="Campaigns made from this template.")


class TemplateDetail(TemplateOut):
    steps: list[TemplateStepOut]


class TemplatePage(BaseModel):
    items: list[TemplateOut]
    total: int


class CampaignOut(BaseModel):
    id: int
    name: str
    status: CampaignStatus
    contact_id: int
    contact_name: str
    template_id: int | None
    template_name: str | None
    progress: float = Field(description="Finished steps / all steps, from 0 to 1.")
    steps_finished: int = Field(description="Steps sent, done, failed or skipped.")
    steps_total: int
    next_step_name: str | None
    next_step_type: MessageType | None
    next_step_at: Timestamp | None
    start_at: Timestamp
    created_at: Timestamp


class CampaignDetail(CampaignOut):
    updated_at: Timestamp
    paused_at: Timestamp | None
    completed_at: Timestamp | None
    canceled_at: Timestamp | None
    steps: list[CampaignStepOut]


class CampaignPage(BaseModel):
    items: list[CampaignOut]
    total: int


class ContactOut(BaseModel):
    id: int
    first_name: str
    last_name: str
    full_name: str
    email: str | None
    phone: str | None
    company: str
    timezone: str
    tags: list[str]
    custom_fields: dict[str, Any]
    email_opt_out: bool
    sms_opt_out: bool
    created_at: Timestamp
    updated_at: Timestamp


class ContactPage(BaseModel):
    items: list[ContactOut]
    total: int
