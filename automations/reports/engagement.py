"""What recipients did with the emails (SPEC section 11), aggregated in SQL: the
funnel per template and per step of a template, the clicks per link, and each
engagement event in words for the timelines.

The funnel takes the emails *sent* in the range (email steps with status `sent`
whose `executed_at` is in it, with the statistics' template and message-type
filters) and counts what their recipients did, whenever they did it:

- sent: those steps; bounced: those with a hard bounce (`bounced_at`);
  delivered = sent - bounced;
- opened: steps opened by a person (`opened_at`, which machine opens never set:
  mail-privacy proxies and link scanners); with `machine_opens` also the steps
  that only a machine opened (an `open` event);
- clicked, replied: steps with `clicked_at`, `replied_at`;
- unsubscribed: steps with an `unsubscribe` event (the contact opted out from it).

Rates are over delivered emails, the bounce rate over sent ones, the
click-to-open rate over opened ones; each carries its numerator and denominator.

The steps are read by the (executed_at, message_type, status, ...) index and the
events by their (step_id, kind) index; nothing is loaded whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session

from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    AutomationTemplate,
    EngagementEvent,
    MessageType,
    StepStatus,
)
from automations.reports.calendar import as_list
from automations.reports.stats import StatsFilter

EMAIL = MessageType.EMAIL.value
OPEN, CLICK, REPLY, AUTO_REPLY, BOUNCE, UNSUBSCRIBE = "open", "click", "reply", "auto_reply", "bounce", "unsubscribe"
# An engagement as the timelines name it (also its `status` there).
KIND_LABELS = {
    OPEN: "opened",
    CLICK: "clicked",
    REPLY: "replied",
    AUTO_REPLY: "auto-replied",
    BOUNCE: "bounced",
    UNSUBSCRIBE: "unsubscribed",
}
LINK_ROWS = 500  # the busiest links of a range; a range has far fewer distinct links
FIRST_LINES_SHOWN = 200  # characters of a reply shown on a timeline


@dataclass(frozen=True)
class Rate:
    """`count` of `total` (`total` named by `of`: "delivered", "sent", "opened")."""

    count: int
    total: int
    of: str

    @property
    def value(self) -> float | None:
        return self.count / self.total if self.total else None

    @property
    def text(self) -> str:
        """ "12 of 40 delivered, 30%" (one decimal under 10 %: "1 of 300 delivered, 0.3%")."""
        value = self.value
        if value is None:
            return f"{self.count:,} of {self.total:,} {self.of}"
        shown = f"{value:.0%}" if value >= 0.1 or value == 0 else f"{value:.1%}"
        return f"{self.count:,} of {self.total:,} {self.of}, {shown}"


@dataclass(frozen=True)
class FunnelRow:
    """The funnel of one template (`position` None) or of one step of it."""

    template_id: int | None  # None: campaigns not made from a template
    template_name: str | None
    sent: int
    bounced: int
    opened: int
    clicked: int
    replied: int
    unsubscribed: int
    position: int | None = None  # per step: the step's position (from 0) and name
    step: str | None = None

    @property
    def delivered(self) -> int:
        return max(self.sent - self.bounced, 0)

    @property
    def number(self) -> int | None:
        """The step's number as the UI shows it (from 1)."""
        return None if self.position is None else self.position + 1

    def rates(self) -> dict[str, Rate]:
        delivered = self.delivered
        return {
            "opened": Rate(self.opened, delivered, "delivered"),
            "clicked": Rate(self.clicked, delivered, "delivered"),
            "click_to_open": Rate(self.clicked, self.opened, "opened"),
            "replied": Rate(self.replied, delivered, "delivered"),
            "bounced": Rate(self.bounced, self.sent, "sent"),
            "unsubscribed": Rate(self.unsubscribed, delivered, "delivered"),
        }

    def as_api(self) -> dict[str, Any]:
        """The stats API's `funnel` item (SPEC section 11)."""
        return {
            "template_id": self.template_id,
            "template_name": self.template_name,
            "sent": self.sent,
            "opened": self.opened,
            "clicked": self.clicked,
            "replied": self.replied,
            "bounced": self.bounced,
            "unsubscribed": self.unsubscribed,
        }


def _has_event(kind: str) -> ColumnElement[bool]:
    # Correlated on the step: one probe of the (step_id, kind) index per sent email.
    return exists().where(EngagementEvent.step_id == AutomationStep.id, EngagementEvent.kind == kind)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _sent_emails(filters: StatsFilter) -> list[ColumnElement[bool]] | None:
    """The conditions on the steps (joined to their campaigns) of the emails sent in
    the range; None when the message-type filter leaves emails out."""
    types = as_list(filters.message_type)
    if types and EMAIL not in types:
        return None
    conditions: list[ColumnElement[bool]] = [
        AutomationStep.executed_at.is_not(None),
        AutomationStep.message_type == EMAIL,
        # In a CASE, as in `stats.has_run`: else SQLite reads every sent step of all
        # time by the (status, due_at) index instead of the range by executed_at.
        case((AutomationStep.status == StepStatus.SENT.value, 1), else_=0) == 1,
    ]
    if filters.bounded:
        start, end = filters.range()
        conditions += [AutomationStep.executed_at >= start, AutomationStep.executed_at < end]
    if filters.template_id:
        conditions.append(AutomationCampaign.template_id == filters.template_id)
    return conditions


MEASURES = ("sent", "bounced", "opened", "clicked", "replied", "unsubscribed")  # in `_measures` order


def _measures(machine_opens: bool) -> list[ColumnElement[int]]:
    opened: ColumnElement[bool] = AutomationStep.opened_at.is_not(None)
    if machine_opens:
        opened = or_(opened, _has_event(OPEN))
    return [
        func.count(),
        _count(AutomationStep.bounced_at.is_not(None)),
        _count(opened),
        _count(AutomationStep.clicked_at.is_not(None)),
        _count(AutomationStep.replied_at.is_not(None)),
        _count(_has_event(UNSUBSCRIBE)),
    ]


def _by_name(row: FunnelRow) -> tuple[bool, str, int]:
    # Templates by name, the campaigns without one last; steps in order.
    return (row.template_name is None, (row.template_name or "").casefold(), row.position or 0)


def email_funnel(
    session: Session, filters: StatsFilter | None = None, *, machine_opens: bool = False
) -> list[FunnelRow]:
    """Per template, what the recipients of the emails sent in the range did (see the
    module's docstring); campaigns not made from a template are one row with
    `template_id` None. Machine opens count only with `machine_opens`."""
    filters = filters or StatsFilter()
    conditions = _sent_emails(filters)
    if conditions is None:
        return []
    query = (
        select(AutomationCampaign.template_id, AutomationTemplate.name, *_measures(machine_opens))
        .select_from(AutomationStep)
        .join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
        .outerjoin(AutomationTemplate, AutomationTemplate.id == AutomationCampaign.template_id)
        .where(*conditions)
        .group_by(AutomationCampaign.template_id, AutomationTemplate.name)
    )
    return sorted((_row(tid, name, counts) for tid, name, *counts in session.execute(query)), key=_by_name)


def email_funnel_by_step(
    session: Session, filters: StatsFilter | None = None, *, machine_opens: bool = False
) -> list[FunnelRow]:
    """`email_funnel` per step of each template: one row per (template, position),
    the step named as in its campaigns (the first name in order, should they differ)."""
    filters = filters or StatsFilter()
    conditions = _sent_emails(filters)
    if conditions is None:
        return []
    query = (
        select(
            AutomationCampaign.template_id,
            AutomationTemplate.name,
            AutomationStep.position,
            func.min(AutomationStep.name),
            *_measures(machine_opens),
        )
        .select_from(AutomationStep)
        .join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
        .outerjoin(AutomationTemplate, AutomationTemplate.id == AutomationCampaign.template_id)
        .where(*conditions)
        .group_by(AutomationCampaign.template_id, AutomationTemplate.name, AutomationStep.position)
    )
    return sorted(
        (
            _row(tid, name, counts, position=position, step=step)
            for tid, name, position, step, *counts in session.execute(query)
        ),
        key=_by_name,
    )


def _row(
    template_id: int | None,
    name: str | None,
    counts: Sequence[Any],
    position: int | None = None,
    step: str | None = None,
) -> FunnelRow:
    sent, bounced, opened, clicked, replied, unsubscribed = (int(n or 0) for n in counts)
    return FunnelRow(
        template_id,
        name,
        sent=sent,
        bounced=bounced,
        opened=opened,
        clicked=clicked,
        replied=replied,
        unsubscribed=unsubscribed,
        position=position,
        step=step,
    )


def funnel_total(rows: Sequence[FunnelRow]) -> FunnelRow:
    """Every template's funnel summed (for the page's chart)."""
    return _row(None, None, [sum(getattr(r, key) for r in rows) for key in MEASURES])


@dataclass(frozen=True)
class LinkClicks:
    template_id: int | None
    template_name: str | None
    url: str
    clicks: int  # every person's click (link scanners' left out), a recipient clicking twice counting twice
    recipients: int  # distinct contacts who clicked it


def link_clicks(session: Session, filters: StatsFilter | None = None, *, limit: int = LINK_ROWS) -> list[LinkClicks]:
    """The clicks on each link of the emails sent in the range, per template, the most
    clicked first (at most `limit` rows)."""
    filters = filters or StatsFilter()
    conditions = _sent_emails(filters)
    if conditions is None:
        return []
    clicks = func.count()
    query = (
        select(
            AutomationCampaign.template_id,
            AutomationTemplate.name,
            EngagementEvent.url,
            clicks,
            func.count(EngagementEvent.contact_id.distinct()),
        )
        .select_from(AutomationStep)
        .join(AutomationCampaign, AutomationCampaign.id == AutomationStep.campaign_id)
        .outerjoin(AutomationTemplate, AutomationTemplate.id == AutomationCampaign.template_id)
        .join(EngagementEvent, and_(EngagementEvent.step_id == AutomationStep.id, EngagementEvent.kind == CLICK))
        .where(*conditions, EngagementEvent.url.is_not(None), EngagementEvent.machine.is_(False))
        .group_by(AutomationCampaign.template_id, AutomationTemplate.name, EngagementEvent.url)
        .order_by(clicks.desc(), AutomationTemplate.name, EngagementEvent.url)
        .limit(limit)
    )
    return [
        LinkClicks(tid, name, str(url), int(n), int(people)) for tid, name, url, n, people in session.execute(query)
    ]


# --- engagement in words (timelines) ------------------------------------------------


@dataclass(frozen=True)
class EngagementEntry:
    """One engagement event, described for a timeline."""

    when: datetime
    kind: str  # open, click, reply, auto_reply, bounce, unsubscribe
    label: str  # "opened", "clicked", ... (KIND_LABELS)
    what: str  # "Clicked https://example.com/offer in “Welcome”"
    step_id: int | None
    step_name: str | None
    campaign_id: int | None
    campaign_name: str | None
    url: str | None = None
    machine: bool = False
    channel: str = EMAIL  # "sms" for an SMS "STOP"


def describe(kind: str, step_name: str | None, url: str | None, machine: bool, detail: Any) -> str:
    """An engagement in one line: what the recipient did, and what it said."""
    detail = detail if isinstance(detail, dict) else {}
    email = f"“{step_name}”" if step_name else "an email"
    if kind == OPEN:
        return f"Opened {email}" + (" (by a mail-privacy proxy or link scanner)" if machine else "")
    if kind == CLICK:
        return f"Clicked {url or 'a link'} in {email}" + (" (by a link scanner)" if machine else "")
    if kind == REPLY:
        said = " ".join(str(detail.get("first_lines") or "").split())
        if len(said) > FIRST_LINES_SHOWN:
            said = said[: FIRST_LINES_SHOWN - 1].rstrip() + "…"
        return f"Replied to {email}" + (f": {said}" if said else "")
    if kind == AUTO_REPLY:
        back = detail.get("return_on")
        return f"Auto-replied to {email}: " + (f"back on {back}" if back else "no return date given")
    if kind == BOUNCE:
        hard = detail.get("hard")
        how = "hard" if hard else "soft" if hard is not None else "hard or soft not known"
        status = detail.get("status")
        return f"Bounced ({how}{f', {status}' if status else ''}): {email}"
    if kind == UNSUBSCRIBE:
        if detail.get("channel") == "sms":  # an SMS "STOP"
            return "Unsubscribed from SMS" + (f" (answering “{step_name}”)" if step_name else "")
        return f"Unsubscribed from email (from {email})"
    return f"{kind} on {email}"


def _entries(session: Session, *conditions: ColumnElement[bool], limit: int) -> list[EngagementEntry]:
    query = (
        select(
            EngagementEvent.occurred_at,
            EngagementEvent.kind,
            EngagementEvent.url,
            EngagementEvent.machine,
            EngagementEvent.detail,
            EngagementEvent.step_id,
            AutomationStep.name,
            EngagementEvent.campaign_id,
            AutomationCampaign.name,
        )
        .outerjoin(AutomationStep, AutomationStep.id == EngagementEvent.step_id)
        .outerjoin(AutomationCampaign, AutomationCampaign.id == EngagementEvent.campaign_id)
        .where(*conditions)
        .order_by(EngagementEvent.occurred_at.desc(), EngagementEvent.id.desc())
        .limit(limit)
    )
    return [
        EngagementEntry(
            when=when,
            kind=kind,
            label=KIND_LABELS.get(kind, kind),
            what=describe(kind, step_name, url, bool(machine), detail),
            step_id=step_id,
            step_name=step_name,
            campaign_id=campaign_id,
            campaign_name=campaign_name,
            url=url,
            machine=bool(machine),
            channel=str(detail.get("channel") or EMAIL) if isinstance(detail, dict) else EMAIL,
        )
        for when, kind, url, machine, detail, step_id, step_name, campaign_id, campaign_name in session.execute(query)
    ]


def contact_engagement(session: Session, contact_id: int, limit: int = 200) -> list[EngagementEntry]:
    """A contact's engagement, the latest first (by the (contact_id, occurred_at) index)."""
    return _entries(session, EngagementEvent.contact_id == contact_id, limit=limit)


def campaign_engagement(session: Session, campaign_id: int, limit: int = 500) -> list[EngagementEntry]:
    """The engagement with a campaign's emails, the latest first (the events of each of
    its steps, by the (step_id, kind) index)."""
    steps = select(AutomationStep.id).where(AutomationStep.campaign_id == campaign_id)
    return _entries(session, EngagementEvent.step_id.in_(steps), limit=limit)


__all__ = [
    "KIND_LABELS",
    "EngagementEntry",
    "FunnelRow",
    "LinkClicks",
    "Rate",
    "campaign_engagement",
    "contact_engagement",
    "describe",
    "email_funnel",
    "email_funnel_by_step",
    "funnel_total",
    "link_clicks",
]
