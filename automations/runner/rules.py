"""The runner's evaluation of follow-up rules, one bounded batch per tick.

1. Follow-ups overdue by a rule's number of days get one `followup_overdue`
   event each (per follow-up and number of days).
2. Unprocessed contact events are claimed (`FOR UPDATE SKIP LOCKED` on
   PostgreSQL, the write lock taken by `BEGIN IMMEDIATE` on SQLite), matched
   against the active rules, and each match becomes a `RuleExecution` due after
   the rule's delay; the events are marked processed in the same transaction.
   The unique (rule, event) pair and the single transaction mean a rule is
   applied once per event even with several runners and after a crash.
3. Due executions are claimed the same way and applied, each in a savepoint so
   that one failure (a deleted template, say) is recorded and the rest go on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import String, cast, exists, literal, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from automations.content.templating import render
from automations.domain.db import Database
from automations.domain.errors import DomainError
from automations.domain.models import (
    AutomationCampaign,
    AutomationTemplate,
    Contact,
    ContactEvent,
    FollowUpRule,
    FollowUpStatus,
    RuleAction,
    RuleExecution,
    RuleTrigger,
    ScheduledFollowUp,
)
from automations.domain.timeutil import as_utc, step_delay
from automations.services.campaigns import (
    OPEN_CAMPAIGN_STATUSES,
    cancel_campaign,
    create_campaign,
)
from automations.services.events import record_event
from automations.services.followups import create_followup
from automations.services.rules import trigger_matches, unmet_condition

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500
PENDING, APPLIED, SKIPPED = "pending", "applied", "skipped"


def process_rules(db: Database, *, now: datetime, runner_id: str, batch: int = DEFAULT_BATCH) -> int:
    """Evaluate the rules once, a batch of each: detect overdue follow-ups, turn new
    events into executions, apply the executions that are due. Returns how many
    items were handled (events recorded or processed, executions finished);
    0 means there is nothing left to do at `now`."""
    now = as_utc(now)
    with db.session() as session:
        recorded = detect_overdue_followups(session, now=now, batch=batch)
    with db.session() as session:
        processed = evaluate_events(session, now=now, runner_id=runner_id, batch=batch)
    with db.session() as session:
        finished = apply_due_executions(session, now=now, runner_id=runner_id, batch=batch)
    return recorded + processed + finished


def process_all_rules(
    db: Database, *, now: datetime, runner_id: str, batch: int = DEFAULT_BATCH, max_rounds: int = 20
) -> int:
    """`process_rules` until nothing is left (at most `max_rounds` batches, so that a
    backlog never holds up the runner's tick for long). Returns the items handled."""
    total = 0
    for _ in range(max_rounds):
        handled = process_rules(db, now=now, runner_id=runner_id, batch=batch)
        total += handled
        if handled == 0:
            break
    if total:
        log.info("rules: %d item(s) handled", total)
    return total


def _overdue_key(followup_id: object, days: object) -> str:
    return f"followup:{followup_id}:{days}"


def detect_overdue_followups(session: Session, *, now: datetime, batch: int = DEFAULT_BATCH) -> int:
    """Record one `followup_overdue` event per pending follow-up and distinct number
    of days an active rule waits for. Returns how many events were recorded."""
    # Locking the rules serialises detection between PostgreSQL runners, so two of
    # them never record the same event (SQLite's write lock already does).
    rules = session.scalars(
        select(FollowUpRule)
        .where(FollowUpRule.trigger == RuleTrigger.FOLLOWUP_OVERDUE.value, FollowUpRule.is_active.is_(True))
        .order_by(FollowUpRule.id)
        .with_for_update()
    ).all()
    # For each number of days: the oldest rule waiting for it. Like every rule, an
    # overdue rule does not reach back: follow-ups that were already that overdue
    # when it was made do not count (and the scan stays small on a large backlog).
    since: dict[int, datetime] = {}
    for rule in rules:
        days = int(rule.trigger_config.get("days_overdue") or 0)
        since[days] = min(since.get(days, rule.created_at), rule.created_at)
    # Follow-ups that overdue rules created do not count, or each would breed another.
    overdue_rule_ids = (
        select(FollowUpRule.id).where(FollowUpRule.trigger == RuleTrigger.FOLLOWUP_OVERDUE.value).scalar_subquery()
    )
    recorded = 0
    for days, first_rule_at in sorted(since.items()):
        key = literal("followup:") + cast(ScheduledFollowUp.id, String) + literal(f":{days}")
        already = exists().where(
            ContactEvent.contact_id == ScheduledFollowUp.contact_id,  # uses the contact index
            ContactEvent.kind == RuleTrigger.FOLLOWUP_OVERDUE.value,
            ContactEvent.name == key,
        )
        overdue = session.execute(
            select(ScheduledFollowUp.id, ScheduledFollowUp.contact_id)
            .where(
                ScheduledFollowUp.status == FollowUpStatus.PENDING.value,
                ScheduledFollowUp.due_at <= now - timedelta(days=days),
                ScheduledFollowUp.due_at > as_utc(first_rule_at) - timedelta(days=days),
                ScheduledFollowUp.rule_id.is_(None) | ScheduledFollowUp.rule_id.not_in(overdue_rule_ids),
                ~already,
            )
            .order_by(ScheduledFollowUp.due_at, ScheduledFollowUp.id)
            .limit(batch - recorded)
        ).all()
        for followup_id, contact_id in overdue:
            record_event(
                session,
                contact_id=contact_id,
                kind=RuleTrigger.FOLLOWUP_OVERDUE.value,
                name=_overdue_key(followup_id, days),
                payload={"followup_id": followup_id, "days_overdue": days},
                now=now,
            )
        recorded += len(overdue)
        if recorded >= batch:
            break
    session.flush()
    return recorded


def _enrolment_blocked(session: Session, rule: FollowUpRule, contact_id: int, due_at: datetime) -> str | None:
    """Why the rule may not act for this contact again yet (re-enrolment limit), or None."""
    previous = select(RuleExecution.due_at).where(
        RuleExecution.rule_id == rule.id,
        RuleExecution.contact_id == contact_id,
        RuleExecution.status.in_((PENDING, APPLIED)),
    )
    if rule.reenroll_after_days is not None:
        previous = previous.where(RuleExecution.due_at > due_at - timedelta(days=rule.reenroll_after_days))
    last = session.scalar(previous.order_by(RuleExecution.due_at.desc()).limit(1))
    if last is None:
        return None
    if rule.reenroll_after_days is None:
        return "already applied to this contact once (the rule applies once per contact)"
    return f"already applied within {rule.reenroll_after_days} days"


def _stop_other_campaigns(session: Session, rule: FollowUpRule, contact_id: int, now: datetime) -> int:
    """Cancel the contact's open campaigns, except one from the template this rule starts."""
    query = select(AutomationCampaign.id).where(
        AutomationCampaign.contact_id == contact_id,
        AutomationCampaign.status.in_(OPEN_CAMPAIGN_STATUSES),
    )
    if rule.action == RuleAction.START_CAMPAIGN.value:
        keep = rule.action_config.get("template_id")
        query = query.where((AutomationCampaign.template_id.is_(None)) | (AutomationCampaign.template_id != keep))
    ids = list(session.scalars(query.order_by(AutomationCampaign.id)))
    for campaign_id in ids:
        cancel_campaign(session, campaign_id, now=now)
    return len(ids)


def _lock_contacts(session: Session, contact_ids: set[int]) -> dict[int, Contact]:
    """Load the contacts and, on PostgreSQL, lock them against the other runners until
    commit: the re-enrolment limit and the "not twice from the same template" check
    read what another runner may be writing for the same contact. Locks are taken in
    id order (no deadlock between runners); FOR NO KEY UPDATE still lets others insert
    rows that point at the contact."""
    if not contact_ids:
        return {}
    return {
        c.id: c
        for c in session.scalars(
            select(Contact)
            .where(Contact.id.in_(sorted(contact_ids)))
            .order_by(Contact.id)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE
        )
    }


def evaluate_events(session: Session, *, now: datetime, runner_id: str, batch: int = DEFAULT_BATCH) -> int:
    """Claim a batch of unprocessed events, create the executions of the rules they
    match and mark them processed. Returns how many events were processed."""
    events = list(
        session.scalars(
            select(ContactEvent)
            .where(ContactEvent.processed_at.is_(None))
            .order_by(ContactEvent.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    )
    if not events:
        return 0
    rules_by_trigger: dict[str, list[FollowUpRule]] = defaultdict(list)
    for rule in session.scalars(select(FollowUpRule).where(FollowUpRule.is_active.is_(True)).order_by(FollowUpRule.id)):
        rules_by_trigger[rule.trigger].append(rule)
    contact_ids = {e.contact_id for e in events if e.contact_id is not None and rules_by_trigger.get(e.kind)}
    contacts = _lock_contacts(session, contact_ids)

    created = 0
    for event in events:
        contact = contacts.get(event.contact_id) if event.contact_id is not None else None
        if contact is None:
            continue
        for rule in rules_by_trigger.get(event.kind, []):
            # A rule made after the event (while events waited) does not reach back.
            if rule.created_at > event.occurred_at or not trigger_matches(rule, event):
                continue
            if unmet_condition(rule, contact) is not None:
                continue
            due_at = as_utc(event.occurred_at) + step_delay(rule.delay_days, rule.delay_hours)
            execution = RuleExecution(
                rule_id=rule.id,
                contact_id=contact.id,
                event_id=event.id,
                status=PENDING,
                due_at=due_at,
                created_at=now,
            )
            notes = []
            if rule.stop_other_campaigns:
                stopped = _stop_other_campaigns(session, rule, contact.id, now)
                notes.append(f"stopped {stopped} other campaign(s)")
            blocked = _enrolment_blocked(session, rule, contact.id, due_at)
            if blocked:
                execution.status = SKIPPED
                execution.applied_at = now
                notes.append(blocked)
            execution.detail = "; ".join(notes) or None
            session.add(execution)
            session.flush()  # the next event of this contact sees this execution
            created += 1
    session.execute(
        update(ContactEvent)
        .where(ContactEvent.id.in_([e.id for e in events]))
        .values(processed_at=now, claim_token=runner_id[:64], lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    if created:
        log.debug("rules: %d execution(s) from %d event(s)", created, len(events))
    return len(events)


def _finish(execution: RuleExecution, status: str, now: datetime, detail: str | None) -> None:
    execution.status = status
    execution.applied_at = now
    earlier = execution.detail
    execution.detail = "; ".join(part for part in (earlier, detail) if part) or None


def _apply(session: Session, execution: RuleExecution, rule: FollowUpRule, contact: Contact, now: datetime) -> None:
    """Do the rule's action for the contact, or record why it was skipped."""
    if not rule.is_active:
        _finish(execution, SKIPPED, now, "rule is disabled")
        return
    unmet = unmet_condition(rule, contact)
    if unmet:
        _finish(execution, SKIPPED, now, f"condition no longer met: {unmet}")
        return
    config = rule.action_config or {}
    if rule.action == RuleAction.CREATE_FOLLOWUP.value:
        event = session.get(ContactEvent, execution.event_id) if execution.event_id else None
        payload = event.payload if event is not None else {}
        campaign_id = payload.get("campaign_id")
        if campaign_id is not None and session.get(AutomationCampaign, campaign_id) is None:
            campaign_id = None
        followup = create_followup(
            session,
            {
                "contact_id": contact.id,
                "title": render(config.get("title", ""), contact)[:300] or rule.name,
                "notes": render(config.get("notes", ""), contact),
                "due_at": execution.due_at,
                "campaign_id": campaign_id,
            },
            rule_id=rule.id,
            now=now,
        )
        execution.followup_id = followup.id
        _finish(execution, APPLIED, now, f"follow-up created: {followup.title}")
        return
    template_id = config.get("template_id")
    template = session.get(AutomationTemplate, template_id) if template_id else None
    if template is None:
        _finish(execution, SKIPPED, now, f"template {template_id} no longer exists")
        return
    running = session.scalar(
        select(AutomationCampaign.id)
        .where(
            AutomationCampaign.contact_id == contact.id,
            AutomationCampaign.template_id == template.id,
            AutomationCampaign.status.in_(OPEN_CAMPAIGN_STATUSES),
        )
        .limit(1)
    )
    if running is not None:
        _finish(execution, SKIPPED, now, f"already in an active campaign from {template.name} (#{running})")
        return
    campaign = create_campaign(
        session, {"name": template.name, "contact_id": contact.id, "template_id": template.id}, now=now
    )
    execution.campaign_id = campaign.id
    _finish(execution, APPLIED, now, f"campaign started: {campaign.name}")


def apply_due_executions(session: Session, *, now: datetime, runner_id: str, batch: int = DEFAULT_BATCH) -> int:
    """Claim the pending executions whose time has come and apply them. Returns how many finished."""
    executions = list(
        session.scalars(
            select(RuleExecution)
            .where(RuleExecution.status == PENDING, RuleExecution.due_at <= now)
            .order_by(RuleExecution.due_at, RuleExecution.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    )
    contacts = _lock_contacts(session, {e.contact_id for e in executions})
    # Load the batch's rules, events and templates at once, and keep them referenced
    # until the batch is done: the session's identity map holds objects weakly, so
    # without `loaded` each `session.get` below would read its row again (it did:
    # two to four queries per execution).
    rules = {
        r.id: r
        for r in session.scalars(select(FollowUpRule).where(FollowUpRule.id.in_({e.rule_id for e in executions})))
    }
    loaded: list[object] = []
    event_ids = {e.event_id for e in executions if e.event_id is not None}
    if event_ids:
        loaded += session.scalars(select(ContactEvent).where(ContactEvent.id.in_(event_ids)))
    template_ids = {
        r.action_config.get("template_id")
        for r in rules.values()
        if r.action == RuleAction.START_CAMPAIGN.value and r.action_config
    } - {None}
    if template_ids:
        # (with their steps: the relationship loads "selectin")
        loaded += session.scalars(select(AutomationTemplate).where(AutomationTemplate.id.in_(template_ids)))
    for execution in executions:
        rule = rules.get(execution.rule_id)
        contact = contacts.get(execution.contact_id)
        if rule is None or contact is None:  # deleted meanwhile (cascades normally remove the row)
            _finish(execution, SKIPPED, now, "rule or contact no longer exists")
            continue
        try:
            with session.begin_nested():
                _apply(session, execution, rule, contact, now)
                # Set here, so that it goes out in the same UPDATE as the result.
                execution.claim_token = runner_id[:64]
        except SQLAlchemyError:
            raise  # the database's trouble: the whole batch is retried on the next tick
        except Exception as exc:  # noqa: BLE001 - e.g. a title that cannot render for this contact
            # The savepoint undid the half-done action. Recording the reason (rather
            # than failing the batch) keeps one bad execution from blocking the others.
            log.warning("rule %s for contact %s skipped: %s: %s", rule.id, contact.id, type(exc).__name__, exc)
            reason = str(exc) if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
            _finish(execution, SKIPPED, now, f"could not apply: {reason}")
            execution.claim_token = runner_id[:64]  # the savepoint's rollback undid it
    session.flush()
    return len(executions)


__all__ = [
    "DEFAULT_BATCH",
    "process_rules",
    "process_all_rules",
    "detect_overdue_followups",
    "evaluate_events",
    "apply_due_executions",
]
