"""An SMS that comes back (SPEC section 11): STOP opts the number out of SMS, START
opts it back in, anything else is an inbound event the follow-up rules can
trigger on (`inbound_event` named `sms_reply`).

Keywords are the carriers' (CTIA / Twilio): STOP, STOPALL, UNSUBSCRIBE, CANCEL,
END, QUIT opt out; START, UNSTOP opt back in; a body that is only the keyword,
in any case, spaces trimmed. The sender is matched to contacts by phone number in
E.164 form; every contact with that number is affected, since it is the number
that asked. Each message is processed once (by its provider id, `MessageSid`),
as providers retry webhooks.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

import phonenumbers
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from automations.domain.models import AutomationCampaign, AutomationStep, Contact, EngagementEvent, InboundMessage
from automations.domain.timeutil import as_utc, utcnow
from automations.services.events import record_event

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})
STOP, START, REPLY, UNMATCHED = "stop", "start", "reply", "unmatched"
REPLY_EVENT = "sms_reply"
START_EVENT = "sms_start"
MAX_BODY = 1600  # an SMS concatenated from ten parts
SOURCE = "sms"


@dataclass(frozen=True)
class SmsResult:
    classification: str  # stop, start, reply, or unmatched (no contact has the number)
    contact_ids: list[int] = field(default_factory=list)
    duplicate: bool = False


def keyword_class(body: str) -> str:
    """`stop`, `start` or `reply` for a message body."""
    word = body.strip().upper()
    if word in STOP_WORDS:
        return STOP
    if word in START_WORDS:
        return START
    return REPLY


def contacts_with_phone(phone: str) -> Select[Contact]:
    """The contacts whose number is `phone` (E.164, as contacts keep it): an indexed lookup."""
    return select(Contact).where(Contact.phone == phone).order_by(Contact.id)


def normalize_phone(value: str) -> str | None:
    """`value` in E.164 (`+14155550123`), or None when it is not a phone number."""
    try:
        number = phonenumbers.parse(value.strip(), None)
    except phonenumbers.NumberParseException:
        digits = re.sub(r"[^\d]", "", value)
        return f"+{digits}" if value.strip().startswith("+") and 8 <= len(digits) <= 15 else None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _latest_sms_step(session: Session, contact_id: int) -> tuple[int, int] | None:
    """(step id, campaign id) of the last SMS sent to the contact: what a reply answers."""
    row = session.execute(
        select(AutomationStep.id, AutomationStep.campaign_id)
        .join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
        .where(
            AutomationCampaign.contact_id == contact_id,
            AutomationStep.message_type == "sms",
            AutomationStep.executed_at.is_not(None),
        )
        .order_by(AutomationStep.executed_at.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def process_inbound_sms(
    session: Session,
    *,
    sender: str,
    body: str,
    message_sid: str | None = None,
    to: str | None = None,
    now: datetime | None = None,
) -> SmsResult:
    """Apply an inbound SMS from `sender` in the caller's transaction, once per `message_sid`."""
    now = as_utc(now or utcnow())
    kind = keyword_class(body)
    key = message_sid or f"{sender}\n{to}\n{body}\n{now.isoformat()}"
    fingerprint = hashlib.sha256(f"{SOURCE}:{key}".encode()).hexdigest()
    earlier = session.scalar(select(InboundMessage).where(InboundMessage.fingerprint == fingerprint))
    if earlier is not None:
        ids = (earlier.detail or {}).get("contact_ids") or []
        return SmsResult(earlier.classification or UNMATCHED, [int(i) for i in ids], duplicate=True)

    phone = normalize_phone(sender)
    contacts = list(session.scalars(contacts_with_phone(phone))) if phone else []
    classification = kind if contacts else UNMATCHED
    session.add(
        InboundMessage(
            fingerprint=fingerprint,
            source=SOURCE,
            message_id=(message_sid or "")[:998] or None,
            classification=classification,
            received_at=now,
            processed_at=now,
            detail={"from": phone or sender[:40], "to": (to or "")[:40], "contact_ids": [c.id for c in contacts]},
        )
    )
    session.flush()  # the unique fingerprint: a concurrent retry fails here, before any effect
    text = body.strip()[:MAX_BODY]
    for contact in contacts:
        answered = _latest_sms_step(session, contact.id)
        where: dict[str, object] = {"channel": "sms"}
        if answered is not None:
            where.update(step_id=answered[0], campaign_id=answered[1])
        if kind == STOP:
            if contact.sms_opt_out:
                continue
            contact.sms_opt_out = True
            session.add(
                EngagementEvent(
                    kind="unsubscribe",
                    step_id=answered[0] if answered else None,
                    campaign_id=answered[1] if answered else None,
                    contact_id=contact.id,
                    occurred_at=now,
                    machine=False,
                    detail={"channel": "sms"},
                )
            )
            record_event(session, contact_id=contact.id, kind="unsubscribed", payload=where, now=now)
        elif kind == START:
            if not contact.sms_opt_out:
                continue
            contact.sms_opt_out = False
            record_event(session, contact_id=contact.id, kind="inbound_event", name=START_EVENT, payload=where, now=now)
        else:
            payload = {**where, "from": phone, "body": text, "message_sid": message_sid}
            record_event(
                session, contact_id=contact.id, kind="inbound_event", name=REPLY_EVENT, payload=payload, now=now
            )
    return SmsResult(classification, [c.id for c in contacts])


__all__ = [
    "REPLY_EVENT",
    "START_EVENT",
    "START_WORDS",
    "STOP_WORDS",
    "SmsResult",
    "keyword_class",
    "contacts_with_phone",
    "normalize_phone",
    "process_inbound_sms",
]
