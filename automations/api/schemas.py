"""Shapes of the REST API: request bodies (types and documentation only) and responses.

The request models check the JSON shape and the types, so that the OpenAPI
document describes every field; the rules (lengths, required fields per message
type, Jinja2 sandbox, webhook URL guard, unique names) are the domain layer's,
applied by the services the endpoints call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)

from automations.domain.models import (
    CampaignStatus,
    MessageType,
    StepStatus,
    TemplateCategory,
)
from automations.domain.timeutil import as_utc

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
    webhook_payload: dict[str, Any] | None = Field(default=None, description="Extra JSON sent with a webhook step.")
    business_days: bool | None = Field(
        default=None,
        description="`true`: `delay_days` counts only days inside the send window (Monday to Friday "
        "without one) that are not holidays.",
    )
    send_at: str | None = Field(
        default=None,
        description='After the delay, the next such local time ("HH:MM"), e.g. `10:00` for "day 3 at 10:00".',
    )


class SendWindowIn(Body):
    """The days and local hours steps may go out in."""

    days: list[str] = Field(description="Days of the week: `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`.")
    start: str = Field(description='Local time the window opens, "HH:MM".')
    end: str = Field(description='Local time it closes, "HH:MM", after `start` (the same day).')


class ScheduleIn(Body):
    """Whose clock steps are planned in, when they may go out and which days are holidays."""

    timezone: str | None = Field(
        default=None,
        description="`contact` (the default: the contact's own zone, else AUTOMATIONS_TIMEZONE) or an IANA zone.",
    )
    send_window: SendWindowIn | None = Field(
        default=None, description="A step planned outside it moves to its next opening. `null`: any time."
    )
    holidays: str | None = Field(
        default=None,
        description="Public holidays to skip, from the `holidays` package: a country code (`US`) with an "
        "optional subdivision (`US-NY`). `null`: none.",
    )
    frequency_cap_exempt: bool | None = Field(
        default=None, description="`true`: not held back by AUTOMATIONS_FREQUENCY_CAP (transactional sequences)."
    )


SCHEDULE_DOC = (
    "Send window, time zone and holidays (SPEC section 10). Omitted: a campaign copies its template's; "
    "the defaults are the contact's zone, no window and no holidays."
)


class TemplateIn(Body):
    name: str = Field(description="Unique name (case-insensitive).")
    category: TemplateCategory = Field(default=TemplateCategory.CUSTOM, description="Category.")
    description: str | None = Field(default=None, description="Free text.")
    steps: list[StepIn] = Field(description="The steps, in order (1 to 50).")
    schedule: ScheduleIn | None = Field(default=None, description=SCHEDULE_DOC)
    stop_on_reply: bool = Field(default=True, description="A reply stops the campaigns made from it.")
    tracking: bool = Field(default=True, description="Opens and clicks of their emails are tracked.")


class TemplateUpdate(Body):
    """Any subset of a custom template's fields; `steps` replaces all its steps."""

    name: str | None = Field(default=None, description="New unique name.")
    category: TemplateCategory | None = Field(default=None, description="New category.")
    description: str | None = Field(default=None, description="New description.")
    steps: list[StepIn] | None = Field(default=None, description="New steps (replace the old ones).")
    schedule: ScheduleIn | None = Field(default=None, description="New schedule settings.")
    stop_on_reply: bool | None = Field(default=None, description="A reply stops the campaigns made from it.")
    tracking: bool | None = Field(default=None, description="Opens and clicks of their emails are tracked.")


class CloneIn(Body):
    name: str | None = Field(default=None, description="Name of the copy (default: `<name> (copy)`).")


class _CampaignContent(Body):
    name: str = Field(description="Campaign name.")
    template_id: Id | None = Field(
        default=None,
        description="Template the campaign is made from; its steps are used when `steps` is omitted.",
    )
    start_at: datetime | None = Field(
        default=None,
        description="When the first step's delay starts counting (ISO 8601; without an offset, "
        "UTC). Default: now. In the past, overdue steps run at once, in order.",
    )
    steps: list[StepIn] | None = Field(default=None, description="The steps (default: the template's steps).")
    schedule: ScheduleIn | None = Field(default=None, description=SCHEDULE_DOC)

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
        default=None,
        max_length=MAX_BULK_CONTACTS,
        description=f"The contacts (at most {MAX_BULK_CONTACTS}).",
    )
    tag: str | None = Field(default=None, description="Every contact with this tag.")


class BulkResult(BaseModel):
    created: int = Field(description="Campaigns created (one per contact).")
    campaign_ids: list[int] = Field(description="Their ids, in the order of the contacts.")


class CampaignUpdate(Body):
    """Any of the fields; steps are applied before the status change."""

    schedule: ScheduleIn | None = Field(
        default=None, description="New schedule settings: the pending steps are planned again with them."
    )
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


# What a route's `responses=` takes: status code -> OpenAPI description.
Responses = dict[int | str, dict[str, Any]]


class Problem(BaseModel):
    detail: str = Field(description="What went wrong.")


class ValidationProblem(Problem):
    errors: dict[str, str] = Field(description="One message per invalid field (dotted path, e.g. `steps.0.subject`).")


def doc(text: str) -> Any:
    """A required response field with its description in the OpenAPI document."""
    return Field(description=text)


ITEMS_TOTAL = "Rows matching the filters, all pages together."


class TemplateStepOut(BaseModel):
    position: int = doc("0-based order in the template or campaign.")
    name: str = doc("What the step is.")
    message_type: MessageType = doc("Channel: email, sms, task or webhook.")
    delay_days: int = doc("Days after the previous step (the start, for the first).")
    delay_hours: int = doc("Hours added to delay_days.")
    subject: str = doc("Email subject or task title (a Jinja2 template).")
    body: str = doc("Email/SMS text or task notes (a Jinja2 template).")
    webhook_url: str | None = doc("Where a webhook step POSTs.")
    webhook_payload: dict[str, Any] | None = doc("Extra JSON sent with a webhook step.")
    business_days: bool = doc("delay_days counts only open days of the send window, not holidays.")
    send_at: str | None = doc('Local time ("HH:MM") the step goes out at after its delay.')


class SendWindowOut(BaseModel):
    days: list[str] = doc("Days of the week (mon ... sun).")
    start: str = doc('Opens at, "HH:MM" local time.')
    end: str = doc('Closes at, "HH:MM" local time.')


class ScheduleOut(BaseModel):
    timezone: str = doc("`contact` (the contact's own zone) or an IANA zone.")
    send_window: SendWindowOut | None = doc("When steps may go out; null: any time.")
    holidays: str | None = doc("Holiday calendar (country[-subdivision]); null: none.")
    frequency_cap_exempt: bool = doc("Not held back by the frequency caps.")


class CampaignStepOut(TemplateStepOut):
    id: int = doc("Step id (also the calendar event's id).")
    status: StepStatus = doc("pending, running, sent, done, failed, skipped or canceled.")
    scheduled_at: Timestamp = doc("Planned time (moves with late steps and pauses).")
    schedule_note: str | None = doc(
        "Why the planned time is not the plain delay: the send window, a holiday, SMS quiet hours "
        "or a frequency cap. null: it did not move."
    )
    opened_at: Timestamp | None = doc("When the recipient first opened it (null: not yet).")
    clicked_at: Timestamp | None = doc("When they first clicked a link in it.")
    replied_at: Timestamp | None = doc("When they replied to it.")
    bounced_at: Timestamp | None = doc("When it bounced (a hard bounce).")
    executed_at: Timestamp | None = doc("When the step finished.")
    attempts: int = doc("Attempts made so far.")
    last_error: str | None = doc("Error of the last failed attempt, or why it was skipped.")
    result: dict[str, Any] | None = doc("The channel's result (message id, HTTP status...).")


class AttemptOut(BaseModel):
    attempt_no: int = doc("1 for the first attempt.")
    runner_id: str | None = doc("The runner that made it.")
    started_at: Timestamp = doc("When the attempt began.")
    finished_at: Timestamp | None = doc("When it ended.")
    outcome: str = doc("sent, done, retry, failed or skipped.")
    detail: str | None = doc("Error or reason.")
    result: dict[str, Any] | None = doc("The channel's result.")


class AttemptPage(BaseModel):
    items: list[AttemptOut] = doc("The attempts, oldest first.")
    total: int = doc("How many attempts.")


class TemplateOut(BaseModel):
    id: int = doc("Template id.")
    name: str = doc("Unique name.")
    category: TemplateCategory = doc("nurture, onboarding, engagement, re-engagement, launch or custom.")
    description: str = doc("Free text.")
    is_system: bool = doc("System templates are read-only; clone them to change them.")
    step_count: int = doc("Number of steps.")
    duration_hours: float = doc("Sum of the steps' delays, in hours.")
    message_types: list[MessageType] = doc("Channels used, in order of first use.")
    campaigns: int = doc("Campaigns made from this template.")


class TemplateDetail(TemplateOut):
    steps: list[TemplateStepOut] = doc("The steps, in order.")
    schedule: ScheduleOut = doc("Send window, time zone and holidays, copied to campaigns made from it.")
    stop_on_reply: bool = doc("A reply stops the campaigns made from it.")
    tracking: bool = doc("Opens and clicks of their emails are tracked.")


class TemplatePage(BaseModel):
    items: list[TemplateOut] = doc("System templates first, then by name.")
    total: int = doc(ITEMS_TOTAL)


class CampaignOut(BaseModel):
    id: int = doc("Campaign id.")
    name: str = doc("Campaign name.")
    status: CampaignStatus = doc("active, paused, completed or canceled.")
    contact_id: int = doc("The contact it is applied to.")
    contact_name: str = doc("That contact's full name.")
    template_id: int | None = doc("The template it was made from.")
    template_name: str | None = doc("That template's name.")
    progress: float = doc("Finished steps / all steps, from 0 to 1.")
    steps_finished: int = doc("Steps sent, done, failed or skipped.")
    steps_total: int = doc("All steps.")
    next_step_name: str | None = doc("The next step to run (pending or running).")
    next_step_type: MessageType | None = doc("Its channel.")
    next_step_at: Timestamp | None = doc("Its planned time.")
    start_at: Timestamp = doc("When the first step's delay started counting.")
    created_at: Timestamp = doc("When the campaign was created.")


class CampaignDetail(CampaignOut):
    updated_at: Timestamp = doc("Last change.")
    paused_at: Timestamp | None = doc("When it was paused (while paused).")
    completed_at: Timestamp | None = doc("When its last step finished.")
    canceled_at: Timestamp | None = doc("When it was canceled.")
    schedule: ScheduleOut = doc("Send window, time zone and holidays its steps are planned with.")
    planning_timezone: str = doc("The IANA zone its steps are planned in (the contact's, or the schedule's).")
    stop_on_reply: bool = doc("A reply stops it (from its template).")
    tracking: bool = doc("Opens and clicks of its emails are tracked (from its template).")
    steps: list[CampaignStepOut] = doc("Every step, in order, with its execution state.")


class CampaignPage(BaseModel):
    items: list[CampaignOut] = doc("Newest first.")
    total: int = doc(ITEMS_TOTAL)


class ContactOut(BaseModel):
    id: int = doc("Contact id.")
    first_name: str = doc("First name.")
    last_name: str = doc("Last name.")
    full_name: str = doc("First and last name.")
    email: str | None = doc("Email address (normalised).")
    phone: str | None = doc("Phone number, E.164.")
    company: str = doc("Company.")
    timezone: str = doc("IANA timezone.")
    tags: list[str] = doc("Tags, lower-case, sorted.")
    custom_fields: dict[str, Any] = doc("Free-form fields.")
    email_opt_out: bool = doc("Gets no email.")
    sms_opt_out: bool = doc("Gets no SMS.")
    created_at: Timestamp = doc("When the contact was created.")
    updated_at: Timestamp = doc("Last change.")


class ContactPage(BaseModel):
    items: list[ContactOut] = doc("By last name, first name.")
    total: int = doc(ITEMS_TOTAL)


class ImportRowProblem(BaseModel):
    line: int = Field(description="Line in the file (the header is line 1).")
    errors: dict[str, str] = Field(description="Each problem of the row, by field.")


class ImportSummary(BaseModel):
    encoding: str = Field(description="The encoding the file was read in.")
    delimiter: str = Field(description="The delimiter the file was read with.")
    rows: int = Field(description="Data rows read (blank lines left out).")
    created: int = Field(description="Contacts created (with dry_run: that would be).")
    rejected: int = Field(description="Rows not imported.")
    dry_run: bool = Field(description="Whether nothing was written (dry_run=true).")
    errors: list[ImportRowProblem] = Field(description="The rejected rows (the first 1,000).")
