"""/api/automation/calendar/: one event per step scheduled or executed in a time range."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from automations.api.deps import INSTANT_DOC, Context, Limit, Offset, instant
from automations.api.schemas import MAX_ID, Timestamp
from automations.domain.errors import ValidationError
from automations.domain.models import MessageType, StepStatus
from automations.reports import calendar as calendar_events
from automations.reports.calendar import CalendarEvent, CalendarFilter

router = APIRouter(prefix="/api/automation/calendar", tags=["calendar"])

MAX_RANGE = timedelta(days=400)


class CalendarEventOut(BaseModel):
    id: int = Field(description="The step's id.")
    campaign_id: int = Field(description="The step's campaign.")
    campaign_name: str = Field(description="Its name.")
    contact_id: int = Field(description="The campaign's contact.")
    contact_name: str = Field(description="Their full name.")
    message_type: MessageType = Field(description="email, sms, task or webhook.")
    title: str = Field(description="The step's name.")
    status: StepStatus = Field(description="The step's status.")
    start: Timestamp = Field(description="When the step ran, or its planned time while it has not.")
    schedule_note: str | None = Field(
        default=None,
        description="Why the step was moved from its plain delay (a send window, a holiday, quiet hours, "
        "a frequency cap, an out-of-office hold); null when it was not.",
    )


class CalendarPage(BaseModel):
    items: list[CalendarEventOut] = Field(description="Events in time order.")
    total: int = Field(description="Events in the range (all pages).")


def event_out(event: CalendarEvent) -> CalendarEventOut:
    return CalendarEventOut(
        id=event.id,
        campaign_id=event.campaign_id,
        campaign_name=event.campaign_name,
        contact_id=event.contact_id,
        contact_name=event.contact_name,
        message_type=event.message_type,
        title=event.title,
        status=event.status,
        start=event.start,
        schedule_note=event.schedule_note,
    )


@router.get("/", response_model=CalendarPage, summary="Calendar events in a range")
def calendar(
    context: Context,
    start: Annotated[datetime, Query(description=f"Start of the range (included). {INSTANT_DOC}")],
    end: Annotated[
        datetime, Query(description=f"End of the range (excluded), at most 400 days after start. {INSTANT_DOC}")
    ],
    campaign_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this campaign's steps.")] = None,
    template_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only campaigns made from this template.")
    ] = None,
    contact_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this contact's campaigns.")] = None,
    message_type: Annotated[
        list[MessageType] | None, Query(description="Only these channels (repeat the parameter for several).")
    ] = None,
    status: Annotated[
        list[StepStatus] | None, Query(description="Only steps in these statuses (repeat for several).")
    ] = None,
    limit: Limit = 500,
    offset: Offset = 0,
) -> CalendarPage:
    """In time order. `total` counts every event of the range; page with `limit`/`offset`."""
    first, after = instant(start, "start", context), instant(end, "end", context)
    if after <= first:
        raise ValidationError.single("end", "must be after start")
    if after - first > MAX_RANGE:
        raise ValidationError.single("end", "the range is at most 400 days")
    filters = CalendarFilter(
        campaign_id=campaign_id,
        template_id=template_id,
        contact_id=contact_id,
        message_type=[m.value for m in message_type] if message_type else None,
        status=[s.value for s in status] if status else None,
    )
    with context.db.read_session() as session:
        total = calendar_events.count_events(session, first, after, filters)
        events = calendar_events.calendar_events(session, first, after, filters, limit=limit, offset=offset)
    return CalendarPage(items=[event_out(e) for e in events], total=total)
