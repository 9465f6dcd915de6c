"""Recording what happened to a batch of claimed steps, in one transaction.

Only results whose claim is still held are applied (`id` and `claim_token` both
match a running step, or the lease lapsed and nobody took the step since): a
runner whose lease lapsed cannot overwrite the result of the runner that took the
step over. Every attempt goes to the attempt log.

Final results follow `scheduling.finish_step` (the rules of SPEC section 3) but
batched, because one statement per table per batch is what lets a runner keep up
with thousands of steps a second: a late step moves the pending steps after it
(re-fitted to the campaign's send window), a failed step records a `step_failed`
event, a sent email or SMS is counted for the frequency caps (a row of
`contact_deliveries`), and a campaign with no open step left is completed (with
its `campaign_completed` event).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.orm import Session

from automations.channels.base import DONE, FAILED, RETRY, SENT, SKIPPED, Delivery, Job
from automations.channels.task import followup_row
from automations.domain.config import get_settings
from automations.domain.db import id_in, insert_rows, table_of
from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    CampaignStatus,
    ContactDelivery,
    ContactEvent,
    ScheduledFollowUp,
    StepAttempt,
    StepStatus,
)
from automations.domain.schedule import QuietHours
from automations.domain.timeutil import as_utc
from automations.runner.replanning import PendingStep, campaign_planner, pending_steps, shift, status_among, write_times
from automations.services.scheduling import LATE_GRACE

S = AutomationStep
OPEN = (StepStatus.PENDING.value, StepStatus.RUNNING.value)
FINAL_OUTCOMES = {SENT: StepStatus.SENT, DONE: StepStatus.DONE, FAILED: StepStatus.FAILED, SKIPPED: StepStatus.SKIPPED}
# What the frequency caps count (`contact_deliveries`): messages that reached a contact.
CAPPED_CHANNELS = ("email", "sms")

BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
RETRY_AFTER_CAP = timedelta(days=1)


@dataclass
class Result:
    """A job and what its channel reported, with when the attempt ran."""

    job: Job
    delivery: Delivery
    started_at: datetime
    finished_at: datetime


@dataclass
class Recorded:
    """What `record_results` applied: the step ids by final status, the retries,
    and the results dropped because the claim was lost."""

    final: dict[int, str]
    retried: dict[int, datetime]
    lost: list[int]


def backoff_delay(
    attempt_no: int, retry_after: float | None, rng: random.Random, base: timedelta = BACKOFF_BASE
) -> timedelta:
    """Exponential backoff with jitter (x0.5 to x1.5), capped; a receiver's
    `Retry-After` wins when it asks for longer."""
    exponential = min(base * (2 ** max(0, attempt_no - 1)), BACKOFF_CAP)
    delay = exponential * rng.uniform(0.5, 1.5)
    if retry_after is not None:
        delay = max(delay, min(timedelta(seconds=retry_after), RETRY_AFTER_CAP))
    return delay


def record_results(
    session: Session,
    results: Sequence[Result],
    now: datetime,
    *,
    runner_id: str,
    max_attempts: int,
    rng: random.Random,
    backoff_base: timedelta = BACKOFF_BASE,
    quiet_hours: QuietHours | None | bool = True,
) -> Recorded:
    """Apply `results` (call inside `db.session()`). See the module docstring.
    `quiet_hours` (True: AUTOMATIONS_SMS_QUIET_HOURS) re-fits the SMS steps a late
    step moves."""
    recorded = Recorded(final={}, retried={}, lost=[])
    if not results:
        return recorded
    ids = [r.job.step_id for r in results]
    tokens = {r.job.step_id: r.job.token for r in results}
    numbers = {r.job.step_id: r.job.attempt_no for r in results}
    query = select(S.id, S.claim_token, S.status, S.attempts).where(id_in(session, S.id, ids), S.status.in_(OPEN))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=S)
    # A claim still held by this attempt, or one whose lease lapsed while the
    # result was on its way (the runner could not reach the database) and that no
    # runner has taken since: the step is pending with this attempt's number, and
    # recording the result now is what keeps it from being sent a second time.
    held = {
        row.id
        for row in session.execute(query)
        if (row.status == StepStatus.RUNNING.value and row.claim_token == tokens[row.id])
        or (row.status == StepStatus.PENDING.value and row.claim_token is None and row.attempts == numbers[row.id])
    }

    # A result already recorded (the commit went through but its answer was lost
    # with the connection, and the recording was retried) is not logged twice:
    # its attempt row is there, with this runner's name and start time.
    unheld = [r for r in results if r.job.step_id not in held]
    already = set()
    if unheld:
        already = {
            (row.step_id, row.attempt_no, as_utc(row.started_at))
            for row in session.execute(
                select(StepAttempt.step_id, StepAttempt.attempt_no, StepAttempt.started_at).where(
                    id_in(session, StepAttempt.step_id, [r.job.step_id for r in unheld]),
                    StepAttempt.runner_id == runner_id,
                )
            )
        }

    attempts, finals, retries, followups, deliveries = [], [], [], [], []
    late: list[Job] = []
    failed: list[tuple[Job, str]] = []
    for r in results:
        job, delivery = r.job, r.delivery
        outcome = delivery.outcome
        if outcome == RETRY and job.attempt_no >= max_attempts:
            outcome = FAILED
            delivery.detail = f"{delivery.detail} (no attempts left after {job.attempt_no})"
        valid = job.step_id in held
        if not valid and (job.step_id, job.attempt_no, as_utc(r.started_at)) in already:
            continue
        detail = (
            delivery.detail
            if valid
            else (f"{delivery.detail} [not recorded: the claim had expired and another runner took the step]")
        )
        attempts.append(
            {
                "step_id": job.step_id,
                "attempt_no": job.attempt_no,
                "runner_id": runner_id,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "outcome": outcome,
                "detail": detail[:2000],
                "result": delivery.result or None,
            }
        )
        if not valid:
            recorded.lost.append(job.step_id)
            continue
        if outcome == RETRY:
            due = now + backoff_delay(job.attempt_no, delivery.retry_after, rng, backoff_base)
            retries.append({"_id": job.step_id, "due_at": due, "last_error": delivery.detail[:2000]})
            recorded.retried[job.step_id] = due
            continue
        status = FINAL_OUTCOMES[outcome]
        error = delivery.detail[:2000] if status in (StepStatus.FAILED, StepStatus.SKIPPED) else None
        finals.append(
            {
                "_id": job.step_id,
                "status": status.value,
                "executed_at": now,
                "result": delivery.result or None,
                "_error": error,
            }
        )
        recorded.final[job.step_id] = status.value
        if status is StepStatus.DONE and job.message_type == "task":
            followups.append(followup_row(job, now))
        if status is StepStatus.SENT and job.message_type in CAPPED_CHANNELS:
            deliveries.append(
                {"contact_id": job.contact_id, "channel": job.message_type, "sent_at": now, "step_id": job.step_id}
            )
        if status is StepStatus.FAILED:
            failed.append((job, error or ""))
        if now - job.scheduled_at > LATE_GRACE:
            late.append(job)

    insert_rows(session, table_of(StepAttempt), attempts)
    table = table_of(S)
    if retries:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values(
                status=StepStatus.PENDING.value,
                due_at=bindparam("due_at"),
                last_error=bindparam("last_error"),
                claim_token=None,
                claimed_by=None,
                lease_expires_at=None,
            ),
            retries,
        )
    _update_finals(session, finals)
    insert_rows(session, table_of(ScheduledFollowUp), followups)
    insert_rows(session, table_of(ContactDelivery), deliveries)
    _keep_gaps(session, late, now, get_settings().quiet_hours if quiet_hours is True else (quiet_hours or None))
    # The rows `record_event` adds, in one statement with those of the completed
    # campaigns below (a failing endpoint fails a whole batch).
    events = [
        _event_row(
            job.contact_id, "step_failed", {"campaign_id": job.campaign_id, "step_id": job.step_id, "error": error}, now
        )
        for job, error in failed
    ]
    finished_campaigns = {r.job.campaign_id for r in results if r.job.step_id in recorded.final}
    complete_campaigns(session, finished_campaigns, now, events=events)
    return recorded


def _event_row(contact_id: int, kind: str, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"contact_id": contact_id, "kind": kind, "name": None, "payload": payload, "occurred_at": now}


def _update_finals(session: Session, finals: list[dict[str, Any]]) -> None:
    """Write the final statuses: one `UPDATE ... WHERE id IN` per group of steps
    with identical values (a batch of tasks is one statement), one executemany for
    steps with their own channel result (a message id)."""
    table = table_of(S)
    cleared = dict(claim_token=None, claimed_by=None, lease_expires_at=None)
    groups: dict[tuple[str, str | None, datetime], list[int]] = {}
    individual: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for f in finals:
        if f["result"] is None:
            groups.setdefault((f["status"], f["_error"], f["executed_at"]), []).append(f["_id"])
        else:
            individual[f["_error"] is not None].append(f)
    for (status, error, executed_at), ids in groups.items():
        values: dict[str, Any] = dict(status=status, executed_at=executed_at, **cleared)
        if error is not None:
            values["last_error"] = error
        session.execute(update(table).where(id_in(session, table.c.id, ids)).values(**values))
    for has_error, rows in individual.items():
        if not rows:
            continue
        values = dict(
            status=bindparam("status"), executed_at=bindparam("executed_at"), result=bindparam("result"), **cleared
        )
        if has_error:
            values["last_error"] = bindparam("_error")
        session.execute(
            update(table).where(table.c.id == bindparam("_id")).values(**values),
            [f if has_error else {k: v for k, v in f.items() if k != "_error"} for f in rows],
        )


def _keep_gaps(session: Session, late: Sequence[Job], now: datetime, quiet_hours: QuietHours | None) -> None:
    """A step that finished late moves the pending steps after it by its lateness,
    re-fitted to the campaign's send window with the gaps kept
    (`scheduling.shift_pending_steps`, batched: after an outage every step of a
    batch is late, so one read and one executemany for the whole batch)."""
    if not late:
        return
    shifts: dict[int, list[tuple[int, timedelta]]] = {}
    for job in late:
        shifts.setdefault(job.campaign_id, []).append((job.position, now - job.scheduled_at))
    moved: list[PendingStep] = []
    for campaign_id, steps in pending_steps(session, shifts).items():
        planner = campaign_planner(steps[0], quiet_hours)
        for position, delta in sorted(shifts[campaign_id]):
            shift(planner, [s for s in steps if s.position > position], delta)
        moved += steps
    write_times(session, moved)


def complete_campaigns(
    session: Session, campaign_ids: set[int], now: datetime, *, events: list[dict[str, Any]] | None = None
) -> list[int]:
    """Complete the campaigns among `campaign_ids` that have no open step left, with
    their `campaign_completed` events (inserted after `events`, rows of
    `contact_events` the caller adds in the same statement). Returns their ids."""
    events = list(events or [])
    completed: list[Any] = []
    if campaign_ids:
        C = table_of(AutomationCampaign)
        still_open = exists().where(S.campaign_id == C.c.id, status_among(*OPEN))
        # One statement: the check and the update together, restricted to the batch's
        # campaigns (the (campaign_id, position) index answers the NOT EXISTS).
        completed = sorted(
            session.execute(
                update(C)
                .where(
                    id_in(session, C.c.id, sorted(campaign_ids)),
                    C.c.status.in_((CampaignStatus.ACTIVE.value, CampaignStatus.PAUSED.value)),
                    ~still_open,
                )
                .values(status=CampaignStatus.COMPLETED.value, completed_at=now, paused_at=None, updated_at=now)
                .returning(C.c.id, C.c.contact_id, C.c.template_id)
            ).all()
        )
        events += [
            _event_row(r.contact_id, "campaign_completed", {"campaign_id": r.id, "template_id": r.template_id}, now)
            for r in completed
        ]
    insert_rows(session, table_of(ContactEvent), events)
    return [r.id for r in completed]
