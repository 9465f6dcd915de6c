"""Contact events: what happened to a contact, recorded in the same transaction as
the change that caused it. The runner evaluates them against the follow-up rules,
so a rule applies once even with several runners and after a crash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from automations.domain.models import ContactEvent
from automations.domain.timeutil import as_utc, utcnow

EVENT_KINDS = (
    "contact_created",
    "tag_added",
    "field_changed",
    "campaign_completed",
    "step_failed",
    "followup_overdue",
    "inbound_event",
    "email_opened",
    "link_clicked",
    "replied",
    "auto_replied",
    "bounced",
    "unsubscribed",
)


def record_event(
    session: Session,
    *,
    contact_id: int | None,
    kind: str,
    name: str | None = None,
    payload: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> ContactEvent:
    """Add an event to the session's transaction (it commits or rolls back with it)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    event = ContactEvent(
        contact_id=contact_id,
        kind=kind,
        name=name,
        payload=payload or {},
        occurred_at=as_utc(now) if now else utcnow(),
    )
    session.add(event)
    return event
