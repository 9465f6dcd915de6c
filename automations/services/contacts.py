"""Contacts: create, update, search, tag, delete."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from automations.domain.errors import Conflict, NotFound, Problems
from automations.domain.models import (
    AutomationCampaign,
    CampaignStatus,
    Contact,
    ContactTag,
)
from automations.domain.search import contact_matches, email_in
from automations.domain.timeutil import utcnow
from automations.services.campaigns import cancel_campaign
from automations.services.events import record_event
from automations.services.schemas import ContactInput, normalized_email, parse

# Fields whose changes are recorded as `field_changed` events for the rules.
TRACKED_FIELDS = ("first_name", "last_name", "email", "phone", "company", "timezone")

SelectT = TypeVar("SelectT", bound=Select)


def get_contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound("contact", contact_id)
    return contact


def _email_taken(session: Session, email: str | None, own_id: int | None = None) -> str | None:
    """Why `email` cannot be used because another contact has it, or None."""
    if not email:
        return None
    query = select(Contact.id).where(email_in([email.lower()]))
    if own_id is not None:
        query = query.where(Contact.id != own_id)
    other = session.scalar(query.limit(1))
    if other is None:
        return None
    return f"Another contact (#{other}) already has this email."


def _validated(session: Session, data: ContactInput | dict[str, Any], own_id: int | None = None) -> ContactInput:
    """The contact's fields, their email free: every problem in one `ValidationError`."""
    problems = Problems()
    values: ContactInput | None = None
    with problems.gather():
        values = parse(ContactInput, data)
    if "email" not in problems:
        email = values.email if values is not None else _raw_email(data)
        taken = _email_taken(session, email, own_id)
        if taken:
            problems.add("email", taken)
    problems.raise_if_any()
    assert values is not None  # no problem, so parsed
    return values


def _raw_email(data: ContactInput | dict[str, Any]) -> str | None:
    """The email of input that failed validation elsewhere (its own check passed)."""
    value = data.get("email") if isinstance(data, dict) else data.email
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return normalized_email(value.strip())
    except ValueError:
        return None


def create_contact(session: Session, data: ContactInput | dict[str, Any], *, now: datetime | None = None) -> Contact:
    """Validate and add a contact; records `contact_created` and `tag_added` events."""
    now = now or utcnow()
    values = _validated(session, data)
    fields = values.model_dump(exclude={"tags"})
    contact = Contact(**fields, created_at=now, updated_at=now)
    contact.tag_rows = [ContactTag(tag=tag) for tag in values.tags]
    session.add(contact)
    session.flush()
    record_event(session, contact_id=contact.id, kind="contact_created", now=now)
    for tag in values.tags:
        record_event(session, contact_id=contact.id, kind="tag_added", payload={"tag": tag}, now=now)
    return contact


def contact_as_input(contact: Contact) -> dict[str, Any]:
    return {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "email": contact.email,
        "phone": contact.phone,
        "company": contact.company,
        "timezone": contact.timezone,
        "tags": contact.tags,
        "custom_fields": dict(contact.custom_fields or {}),
        "email_opt_out": contact.email_opt_out,
        "sms_opt_out": contact.sms_opt_out,
    }


def update_contact(
    session: Session, contact_id: int, changes: dict[str, Any], *, now: datetime | None = None
) -> Contact:
    """Apply `changes` (any subset of the contact's fields); records events for new
    tags and changed fields."""
    now = now or utcnow()
    contact = get_contact(session, contact_id)
    # An unknown field in `changes` is one more problem, reported with the others.
    values = _validated(session, {**contact_as_input(contact), **changes}, own_id=contact.id)
    old_tags = set(contact.tags)
    old_custom = dict(contact.custom_fields or {})
    if values.email != contact.email:  # a new address is mailed again after a hard bounce
        contact.email_bouncing = False
        contact.email_bounced_at = None
    for field in TRACKED_FIELDS:
        new = getattr(values, field)
        if getattr(contact, field) != new:
            setattr(contact, field, new)
            record_event(
                session,
                contact_id=contact.id,
                kind="field_changed",
                payload={"field": field, "value": new},
                now=now,
            )
    for key, value in values.custom_fields.items():
        if old_custom.get(key) != value:
            record_event(
                session,
                contact_id=contact.id,
                kind="field_changed",
                payload={"field": key, "value": value},
                now=now,
            )
    contact.custom_fields = dict(values.custom_fields)
    contact.email_opt_out = values.email_opt_out
    contact.sms_opt_out = values.sms_opt_out
    _set_tags(session, contact, values.tags, old_tags, now)
    contact.updated_at = now
    session.flush()
    return contact


def _set_tags(session: Session, contact: Contact, tags: list[str], old_tags: set[str], now: datetime) -> None:
    keep = [row for row in contact.tag_rows if row.tag in tags]
    added = [tag for tag in tags if tag not in old_tags]
    contact.tag_rows = keep + [ContactTag(tag=tag) for tag in added]
    for tag in added:
        record_event(session, contact_id=contact.id, kind="tag_added", payload={"tag": tag}, now=now)


def add_tags(session: Session, contact_id: int, tags: list[str], *, now: datetime | None = None) -> Contact:
    contact = get_contact(session, contact_id)
    return update_contact(session, contact_id, {"tags": contact.tags + list(tags)}, now=now)


def active_campaign_count(session: Session, contact_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(AutomationCampaign)
            .where(
                AutomationCampaign.contact_id == contact_id,
                AutomationCampaign.status.in_((CampaignStatus.ACTIVE.value, CampaignStatus.PAUSED.value)),
            )
        )
        or 0
    )


def delete_contact(
    session: Session, contact_id: int, *, cancel_campaigns: bool = False, now: datetime | None = None
) -> None:
    """Delete a contact with their campaigns and follow-ups.

    Refused (`Conflict`) while the contact has active or paused campaigns, unless
    `cancel_campaigns` is set, in which case they are canceled first.
    """

    contact = get_contact(session, contact_id)
    running = session.scalars(
        select(AutomationCampaign.id).where(
            AutomationCampaign.contact_id == contact_id,
            AutomationCampaign.status.in_((CampaignStatus.ACTIVE.value, CampaignStatus.PAUSED.value)),
        )
    ).all()
    if running and not cancel_campaigns:
        raise Conflict(
            f"{contact.full_name} has {len(running)} active or paused campaign(s); "
            "cancel them first (or choose to cancel them with the deletion)"
        )
    for campaign_id in running:
        cancel_campaign(session, campaign_id, now=now)
    session.delete(contact)
    session.flush()


@dataclass(frozen=True)
class ContactFilter:
    search: str = ""
    tag: str | None = None


def _filtered(query: SelectT, filters: ContactFilter) -> SelectT:
    text = filters.search.strip()
    if text:
        query = query.where(contact_matches(text))
    if filters.tag:
        query = query.where(Contact.id.in_(select(ContactTag.contact_id).where(ContactTag.tag == filters.tag.lower())))
    return query


def search_contacts(
    session: Session,
    filters: ContactFilter | None = None,
    *,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Contact], int]:
    """A page of contacts matching `filters`, ordered by name, and the total count."""
    filters = filters or ContactFilter()
    total = session.scalar(_filtered(select(func.count()).select_from(Contact), filters)) or 0
    rows = session.scalars(
        _filtered(select(Contact), filters)
        .order_by(Contact.last_name, Contact.first_name, Contact.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def contact_ids_with_tag(session: Session, tag: str) -> list[int]:
    return list(session.scalars(select(ContactTag.contact_id).where(ContactTag.tag == tag.strip().lower())).all())


def all_tags(session: Session) -> list[str]:
    return list(session.scalars(select(ContactTag.tag).distinct().order_by(ContactTag.tag)).all())
