"""What a recipient's answer does (SPEC section 11): a reply stops the campaign and
creates a follow-up, an auto-reply holds it until the stated return date, a hard
bounce marks the address as bouncing. Each message is processed once.

`process_inbound` takes a raw RFC 5322 message (posted to the API, or polled from
a mailbox), classifies it (`engagement.inbound`), matches it to the step it
answers by `In-Reply-To` / `References` against the step's Message-ID (made of
its idempotency key) or by the reply token of a plus-address, applies the effect
and records an engagement event and a contact event the follow-up rules can
trigger on, all in the caller's transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from automations.domain.db import Database
from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    CampaignStatus,
    EngagementEvent,
    FollowUpStatus,
    InboundMessage,
    ScheduledFollowUp,
    StepStatus,
)
from automations.domain.timeutil import as_utc, utcnow
from automations.engagement.inbound import (
    AUTO_REPLY,
    BOUNCE,
    REPLY,
    Classification,
    classify,
    match_keys,
    parse_message,
)
from automations.engagement.tokens import get_tracking_key, read_reply_token
from automations.services.campaigns import cancel_campaign
from automations.services.events import record_event
from automations.services.planning import planner_for
from automations.services.scheduling import shift_pending_steps

UNMATCHED = "unmatched"
AUTO_REPLY_HOLD = timedelta(days=3)  # when an out-of-office reply states no return date
BACK_AT = time(9)  # the local time a returning contact is written to again (then fitted to the window)
EVENT_KINDS = {REPLY: "replied", AUTO_REPLY: "auto_replied", BOUNCE: "bounced"}


class ClaimLost(Exception):
    """The (mailbox, uid) row a poller claimed was taken over by another runner."""


@dataclass(frozen=True)
class InboundResult:
    classification: str  # reply, auto_reply, bounce, or unmatched (no step of ours)
    step_id: int | None
    campaign_id: int | None
    duplicate: bool = False  # processed before: nothing done again


def fingerprint(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def find_step(session: Session, keys: list[str], tokens: list[str]) -> AutomationStep | None:
    """The step a message answers: a Message-ID of ours among `keys` (its local part
    is the step's idempotency key), else a valid reply token."""
    for key in keys:
        local = key.split("@", 1)[0].strip("<> ")
        if local:
            step = session.scalar(select(AutomationStep).where(AutomationStep.idempotency_key == local))
            if step is not None:
                return step
    if tokens:
        secret = get_tracking_key(session)
        for token in tokens:
            step_id = read_reply_token(secret, token)
            if step_id is not None and (step := session.get(AutomationStep, step_id)) is not None:
                return step
    return None


T = TypeVar("T")


def applied_once(db: Database, apply: Callable[[Session], T]) -> T:
    """Run `apply` (a `process_inbound...` call) in a transaction of its own. When a
    copy of the same message is being applied at the same moment (a forwarder that
    retried after a timeout), the one that commits second breaks the fingerprint's
    unique index: it runs again, finds the first one's row and answers "duplicate",
    instead of failing."""
    try:
        with db.session() as session:
            return apply(session)
    except IntegrityError:
        with db.session() as session:
            return apply(session)


def process_inbound(
    session: Session,
    raw: bytes,
    *,
    source: str = "api",
    mailbox: str | None = None,
    uid: int | None = None,
    now: datetime | None = None,
    claim: str | None = None,
) -> InboundResult:
    """Classify `raw`, match it to its step and apply its effect, once: the same
    message again (by content, or by mailbox and UID) is answered as before.

    `claim` is for a poller that recorded (mailbox, uid) before fetching the
    message (`automations.runner.mailbox`): the placeholder fingerprint of that
    row, which is completed instead of a new one added; `ClaimLost` when the row
    is no longer that claim (another runner took it over)."""
    now = as_utc(now or utcnow())
    print_ = fingerprint(raw)
    claimed = None
    if mailbox is not None and uid is not None:
        claimed = session.scalar(
            select(InboundMessage).where(InboundMessage.mailbox == mailbox, InboundMessage.uid == uid).with_for_update()
        )
        if claimed is not None and (claim is None or claimed.processed_at is not None):
            return InboundResult(claimed.classification or UNMATCHED, claimed.step_id, claimed.campaign_id, True)
        if claimed is not None and claimed.fingerprint != claim:
            raise ClaimLost(f"{mailbox} UID {uid} is claimed by another runner")
    earlier = session.scalar(select(InboundMessage).where(InboundMessage.fingerprint == print_))
    if earlier is not None:
        if claimed is not None:  # the same message twice in the mailbox: this copy is done too
            claimed.processed_at = now
            claimed.classification = earlier.classification
            claimed.detail = {"duplicate_of": earlier.id}
        return InboundResult(earlier.classification or UNMATCHED, earlier.step_id, earlier.campaign_id, True)
    message = parse_message(raw)
    found = classify(message)
    step = find_step(session, match_keys(message), message.reply_tokens)
    row = claimed or InboundMessage(mailbox=mailbox, uid=uid, received_at=now)
    row.fingerprint = print_
    row.source = source
    row.message_id = (message.message_id or "")[:998] or None
    row.processed_at = now
    row.classification = found.kind if step is not None else UNMATCHED
    row.step_id = step.id if step is not None else None
    row.campaign_id = step.campaign_id if step is not None else None
    row.detail = _detail(found, message.subject)
    session.add(row)
    session.flush()  # the unique fingerprint: a concurrent copy fails here, before any effect
    if step is None:
        return InboundResult(UNMATCHED, None, None)
    apply_effect(session, step, found, now)
    return InboundResult(found.kind, step.id, step.campaign_id)


def _detail(found: Classification, subject: str) -> dict[str, object]:
    detail: dict[str, object] = {"subject": subject[:300]}
    if found.kind == BOUNCE:
        detail.update(hard=found.hard, status=found.status, recipients=found.recipients[:5])
    if found.return_on is not None:
        detail["return_on"] = found.return_on.isoformat()
    if found.first_lines:
        detail["first_lines"] = found.first_lines[:500]
    return detail


def apply_effect(session: Session, step: AutomationStep, found: Classification, now: datetime) -> None:
    """The effect of a matched reply, auto-reply or bounce on the step's campaign and contact."""
    campaign = step.campaign
    contact = campaign.contact
    session.add(
        EngagementEvent(
            kind=found.kind,
            step_id=step.id,
            campaign_id=campaign.id,
            contact_id=contact.id,
            occurred_at=now,
            detail=_detail(found, ""),
        )
    )
    payload: dict[str, object] = {"campaign_id": campaign.id, "step_id": step.id, "template_id": campaign.template_id}
    if found.kind == REPLY:
        step.replied_at = step.replied_at or now
        if campaign.stop_on_reply and campaign.status in (CampaignStatus.ACTIVE.value, CampaignStatus.PAUSED.value):
            cancel_campaign(session, campaign.id, now=now)
        session.add(
            ScheduledFollowUp(
                contact_id=contact.id,
                campaign_id=campaign.id,
                title=f"{contact.full_name} replied to '{step.name}'"[:300],
                notes=found.first_lines,
                due_at=now,
                status=FollowUpStatus.PENDING.value,
                created_at=now,
            )
        )
    elif found.kind == AUTO_REPLY:
        until = hold_until(campaign, found, now)
        payload["until"] = until.isoformat()
        hold_campaign(session, campaign, until)
    elif found.kind == BOUNCE:
        payload["hard"] = found.hard
        if found.hard:
            step.bounced_at = step.bounced_at or now
            contact.email_bouncing = True
            contact.email_bounced_at = now
    record_event(session, contact_id=contact.id, kind=EVENT_KINDS[found.kind], payload=payload, now=now)


def hold_until(campaign: AutomationCampaign, found: Classification, now: datetime) -> datetime:
    """When an out-of-office contact is back: 09:00 on the stated return date in the
    campaign's planning zone (not midnight: the window, if any, is fitted after),
    else three days from now."""
    if found.return_on is None:
        return now + AUTO_REPLY_HOLD
    planner = planner_for(campaign.schedule, campaign.contact.timezone, quiet_hours=False)
    back = planner.utc(datetime.combine(found.return_on, BACK_AT))
    return max(back, now)


def hold_campaign(session: Session, campaign: AutomationCampaign, until: datetime) -> int:
    """Move the campaign's pending steps so that the first is not before `until`,
    the gaps after it kept and every time fitted to the window again."""
    first = session.scalar(
        select(AutomationStep.scheduled_at)
        .where(AutomationStep.campaign_id == campaign.id, AutomationStep.status == StepStatus.PENDING.value)
        .order_by(AutomationStep.position)
        .limit(1)
    )
    if first is None or first >= until:
        return 0
    return shift_pending_steps(session, campaign.id, until - first)


__all__ = [
    "AUTO_REPLY_HOLD",
    "UNMATCHED",
    "ClaimLost",
    "InboundResult",
    "apply_effect",
    "find_step",
    "hold_campaign",
    "hold_until",
    "process_inbound",
]
